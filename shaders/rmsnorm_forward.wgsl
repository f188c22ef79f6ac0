// RMSNorm over the last dim (Llama, Qwen): out[r, c] = x[r, c] · rstd[r] · weight[c],
// rstd[r] = 1 / sqrt(mean_c x[r, c]² + eps). rstd is saved for the backward.
// Row layout as in softmax_forward: R rows per workgroup, W lanes per row, one barrier for the row's sum of
// squares (every lane adds the row's W partials in the same order); rows past the end only join the barrier.
var<workgroup> red: array<f32, {{WG}}>;

@compute @workgroup_size({{W}}, {{R}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = (wid.x + wid.y * nwg.x) * {{R}}u + lid.y;
  let valid = row < params.rows;
  let C = params.C;
  let base = row * C;
  let slot = lid.y * {{W}}u;

  var acc = 0.0;
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      let v = x[base + c];
      acc += v * v;
    }
  }
  red[slot + lid.x] = acc;
  workgroupBarrier();
  var sumSq = 0.0;
  for (var k = 0u; k < {{W}}u; k++) {
    sumSq += red[slot + k];
  }
  let r = 1.0 / sqrt(sumSq / f32(C) + params.eps);
  if (valid) {
    if (lid.x == 0u) {
      rstd[row] = r;
    }
    for (var c = lid.x; c < C; c += {{W}}u) {
      out[base + c] = x[base + c] * r * weight[c];
    }
  }
}
