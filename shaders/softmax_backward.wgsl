// Softmax backward, accumulating: dx[r, c] += out[r, c] · (dOut[r, c] − Σ_c' dOut[r, c'] · out[r, c']).
// Row layout and the row's dot: lib/row_layout.wgsl, lib/row_sum.wgsl.
{{include:row_sum}}

fn rowTerm(i: u32, c: u32) -> f32 {
  return dOut[i] * out[i];
}

fn rowKernel(row: u32, valid: bool, lid: vec3u) {
  let dot = rowSum(row, valid, lid);
  if (valid) {
    let C = params.C;
    for (var c = lid.x; c < C; c += {{W}}u) {
      let i = row * C + c;
      dx[i] += out[i] * (dOut[i] - dot);
    }
  }
}
