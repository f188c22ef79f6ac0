// ReLU: out = max(x, 0). Element-wise over n values.
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  if (i >= params.n) { return; }
  out[i] = max(x[i], 0.0);
}
