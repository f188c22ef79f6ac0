// RMSNorm over the last dim (Llama, Qwen): out[r, c] = x[r, c] · rstd[r] · gain(c),
// rstd[r] = 1 / sqrt(mean_c x[r, c]² + eps). rstd is saved for the backward. gain(c) is weight[c], or with
// PLUS_ONE = " + 1.0" Gemma's 1 + weight[c] (rounded to f32 first, as transformers computes it).
// Row layout and the row's sum of squares: lib/row_layout.wgsl, lib/row_sum.wgsl.
{{include:row_sum}}

fn gain(c: u32) -> f32 { return weight[c]{{PLUS_ONE}}; }

fn rowTerm(i: u32, c: u32) -> f32 {
  let v = x[i];
  return v * v;
}

fn rowKernel(row: u32, valid: bool, lid: vec3u) {
  let C = params.C;
  let sumSq = rowSum(row, valid, lid);
  let r = 1.0 / sqrt(sumSq / f32(C) + params.eps);
  if (valid) {
    if (lid.x == 0u) {
      rstd[row] = r;
    }
    let base = row * C;
    for (var c = lid.x; c < C; c += {{W}}u) {
      out[base + c] = x[base + c] * r * gain(c);
    }
  }
}
