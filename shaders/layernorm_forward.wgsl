// LayerNorm over the last dim (GPT-2): out[r, c] = (x[r, c] − mean[r]) · rstd[r] · weight[c] + bias[c],
// mean[r] = mean_c x[r, c], rstd[r] = 1 / sqrt(mean_c (x[r, c] − mean[r])² + eps). mean and rstd are saved
// for the backward. Corrected two-pass algorithm (Chan, Golub & LeVeque): a first pass gives m₁ = Σ x / C;
// the second sums d = x − m₁ and d², which refines the mean, mean = m₁ + Σ d / C, and gives the variance
// about it, Σ d² / C − (Σ d / C)², without the cancellation of E[x²] − mean² when |mean| ≫ std.
// Row layout as in rmsnorm_forward; each row sum takes one barrier (rowSum and rowSum2 have an array each, so
// the second sum need not wait for every lane to have read the first).
{{include:row_sum}}
{{include:row_sum2}}

fn rowTerm(i: u32, c: u32) -> f32 {
  return x[i];
}

// arg.x = m₁
fn rowTerm2(i: u32, c: u32, arg: vec2<f32>) -> vec2<f32> {
  let d = x[i] - arg.x;
  return vec2<f32>(d, d * d);
}

fn rowKernel(row: u32, valid: bool, lid: vec3u) {
  let C = params.C;
  let m1 = rowSum(row, valid, lid) / f32(C);
  let sums = rowSum2(row, valid, lid, vec2<f32>(m1, 0.0));
  let delta = sums.x / f32(C);
  let m = m1 + delta;
  let r = 1.0 / sqrt(max(sums.y / f32(C) - delta * delta, 0.0) + params.eps);
  if (valid) {
    if (lid.x == 0u) {
      mean[row] = m;
      rstd[row] = r;
    }
    let base = row * C;
    for (var c = lid.x; c < C; c += {{W}}u) {
      out[base + c] = (x[base + c] - m) * r * weight[c] + bias[c];
    }
  }
}
