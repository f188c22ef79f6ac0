// The entry point of the first pass of a column sum over blocks of rows (RMSNorm's dWeight, LayerNorm's dWeight
// and dBias): one invocation per column c < params.C (grid x, {{WG}} wide) and block b of params.rowsPerBlock
// rows (grid y). The kernel defines
//   fn columnBlock(c: u32, b: u32, r0: u32, r1: u32)
// which handles rows r0 .. r1 of column c (r1 stops at params.rows). No float atomics: a second pass
// (rmsnorm_dweight_reduce.wgsl) adds the blocks' partial sums of each column in a fixed order.
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x < params.C) {
    let r0 = gid.y * params.rowsPerBlock;
    columnBlock(gid.x, gid.y, r0, min(r0 + params.rowsPerBlock, params.rows));
  }
}
