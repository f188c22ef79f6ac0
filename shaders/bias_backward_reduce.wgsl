// Second pass of dBias = Σ_rows dOut: dBias[c] += Σ_s partial[s, c] over the chunks' column sums [S, n].
{{include:elementwise}}

fn element(c: u32) {
  var s = 0.0;
  for (var i = 0u; i < params.S; i++) {
    s += partial[i * params.n + c];
  }
  dBias[c] += s;
}
