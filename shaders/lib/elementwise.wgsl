// The entry point of a kernel with one invocation per element: a 1-D range of params.n elements spread over
// an x·y grid of {{WG}}-wide workgroups (grid1d), so that more than 65535 workgroups fit. The kernel defines
//   fn element(i: u32)
// which runs once for each i < params.n.
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  if (i < params.n) {
    element(i);
  }
}
