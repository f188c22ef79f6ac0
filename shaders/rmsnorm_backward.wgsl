// RMSNorm backward for x, accumulating. With g = dOut ⊙ gain (weight, or Gemma's 1 + weight: see the forward)
// and rstd from the forward:
//   dx[r, c] += rstd · (g[c] − x[r, c] · rstd² · mean_c'(g[c'] · x[r, c']))
// Row layout as in rmsnorm_forward. dWeight is reduced over rows by rmsnorm_dweight_partial/_reduce.
{{include:row_sum}}

fn gain(c: u32) -> f32 { return weight[c]{{PLUS_ONE}}; }

fn rowTerm(i: u32, c: u32) -> f32 {
  return dOut[i] * gain(c) * x[i];
}

fn rowKernel(row: u32, valid: bool, lid: vec3u) {
  let dot = rowSum(row, valid, lid);
  if (valid) {
    let C = params.C;
    let r = rstd[row];
    let coef = r * r * dot / f32(C);
    for (var c = lid.x; c < C; c += {{W}}u) {
      let i = row * C + c;
      dx[i] += r * (dOut[i] * gain(c) - x[i] * coef);
    }
  }
}
