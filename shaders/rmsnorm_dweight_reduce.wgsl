// RMSNorm dWeight, second pass, accumulating: dWeight[c] += Σ_b partial[b, c] (column c of n values).
// Also used for LayerNorm's dWeight and dBias, whose partials are laid out as [blocks, 2·C].
{{include:elementwise}}

fn element(c: u32) {
  var acc = 0.0;
  for (var b = 0u; b < params.blocks; b++) {
    acc += partial[b * params.stride + params.offset + c];
  }
  dWeight[c] += acc;
}
