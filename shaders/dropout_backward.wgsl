// Dropout backward, accumulating: dx += mask · dOut / (1 − p), with the forward's mask regenerated from
// (seed, offset + i).
{{include:philox}}

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  if (i >= params.n) { return; }
  if (dropoutKeep(i)) {
    dx[i] += dOut[i] * params.keepScale;
  }
}
