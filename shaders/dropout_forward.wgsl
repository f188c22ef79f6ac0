// Dropout forward: out = x / (1 − p) where kept, 0 where dropped; the mask is recomputed from
// (seed, offset + i), never stored.
{{include:philox}}

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  if (i >= params.n) { return; }
  out[i] = select(0.0, x[i] * params.keepScale, dropoutKeep(i));
}
