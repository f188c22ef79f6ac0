// LayerNorm backward for x, accumulating. With g = dOut ⊙ weight and x̂ = (x − mean) · rstd:
//   dx[r, c] += rstd · (g[c] − mean_c' g[c'] − x̂[c] · mean_c'(g[c'] · x̂[c']))
// Row layout as in layernorm_forward; the two row sums share one barrier (rowSum2: a vec2 per lane).
// dWeight and dBias are reduced over rows by layernorm_dparams_partial and rmsnorm_dweight_reduce.
{{include:row_sum2}}

// arg = (mean, rstd) of the row
fn rowTerm2(i: u32, c: u32, arg: vec2<f32>) -> vec2<f32> {
  let g = dOut[i] * weight[c];
  let xh = (x[i] - arg.x) * arg.y;
  return vec2<f32>(g, g * xh);
}

fn rowKernel(row: u32, valid: bool, lid: vec3u) {
  var m = 0.0;
  var r = 0.0;
  if (valid) {
    m = mean[row];
    r = rstd[row];
  }
  let C = params.C;
  let sums = rowSum2(row, valid, lid, vec2<f32>(m, r)) / f32(C);
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      let i = row * C + c;
      let g = dOut[i] * weight[c];
      let xh = (x[i] - m) * r;
      dx[i] += r * (g - sums.x - xh * sums.y);
    }
  }
}
