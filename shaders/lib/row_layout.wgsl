// The entry point of the row kernels (softmax, RMSNorm, LayerNorm, cross-entropy): a workgroup of {{W}} × {{R}}
// invocations handles R rows with W lanes per row; W is the smallest power of two ≥ C up to WG, so short rows
// share a workgroup and wide rows are strided over W lanes (lane lid.x takes the columns c ≡ lid.x mod W).
// Workgroups are spread over a 2-D grid. The kernel defines
//   fn rowKernel(row: u32, valid: bool, lid: vec3u)
// which every invocation runs; lanes of rows past the end (valid = false) take part in the barriers of the row
// sums (row_sum.wgsl, online_softmax.wgsl) but neither read nor write.
@compute @workgroup_size({{W}}, {{R}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = (wid.x + wid.y * nwg.x) * {{R}}u + lid.y;
  rowKernel(row, row < params.rows, lid);
}
