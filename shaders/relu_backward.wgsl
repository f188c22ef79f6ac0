// ReLU backward, accumulating: dx += dOut where x > 0 (PyTorch's threshold_backward: the gradient at 0 is 0).
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  if (i >= params.n) { return; }
  dx[i] += select(0.0, dOut[i], x[i] > 0.0);
}
