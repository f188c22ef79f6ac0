// Softmax over the last dim: out[r, c] = exp(x[r, c] − m_r) / Σ_c exp(x[r, c] − m_r), m_r = max_c x[r, c].
// Row layout and the online (max, sum): lib/row_layout.wgsl, lib/online_softmax.wgsl; every lane merges the
// row's partials itself, then writes its columns.
{{include:online_softmax}}

fn rowValue(i: u32) -> f32 {
  return x[i];
}

fn rowKernel(row: u32, valid: bool, lid: vec3u) {
  laneMaxSum(row, valid, lid);
  let ms = rowMaxSum(lid);
  let rowMax = ms.x;
  let inv = 1.0 / ms.y;
  if (valid) {
    let C = params.C;
    let base = row * C;
    for (var c = lid.x; c < C; c += {{W}}u) {
      out[base + c] = exp(x[base + c] - rowMax) * inv;
    }
  }
}
