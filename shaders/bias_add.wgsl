// In-place bias: out[row, c] += bias[c] for every row of out [rows, N]. Element-wise over n = rows·N values.
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  if (i >= params.n) { return; }
  out[i] += bias[i % params.N];
}
