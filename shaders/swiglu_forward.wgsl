// SwiGLU: out = silu(gate) · up, silu(g) = g · sigmoid(g). Element-wise over n values.
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  if (i >= params.n) { return; }
  let g = gate[i];
  let s = 1.0 / (1.0 + exp(-g));
  out[i] = g * s * up[i];
}
