// out[row·T + t] = coef[row]: each row's value at every position of the row (rowSums' backward, written, not
// accumulated). The per-token weights that crossEntropyChunkBackward takes from per-sequence coefficients.
{{include:elementwise}}

fn element(i: u32) {
  out[i] = coef[i / params.T];
}
