// Strided block copy: for r < rows, c < cols,
//   dst[dstOffset + r·dstStride + c] (+)= src[srcOffset + r·srcStride + c]
// (accumulate ≠ 0 adds). Element-wise over n = rows·cols values.
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  if (i >= params.rows * params.cols) { return; }
  let r = i / params.cols;
  let c = i - r * params.cols;
  let v = src[params.srcOffset + r * params.srcStride + c];
  let d = params.dstOffset + r * params.dstStride + c;
  if (params.accumulate != 0u) {
    dst[d] += v;
  } else {
    dst[d] = v;
  }
}
