// out[row·T + t] = coef[row]: each row's value at every position of the row (rowSums' backward, written, not
// accumulated). The per-token weights that crossEntropyChunkBackward takes from per-sequence coefficients.
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  if (i >= params.n) {
    return;
  }
  out[i] = coef[i / params.T];
}
