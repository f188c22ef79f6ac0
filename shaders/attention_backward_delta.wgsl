// Attention backward, step 1 (flash and row kernels alike): per query row (b, h, t), row = (b·H + h)·T + t, the
// two numbers the later steps read per row, gathered into one buffer (they stay within 8 storage bindings):
//   stats[2·row] = lse[row],  stats[2·row + 1] = Δ = Σ_d dOut[b, t, h, d] · out[b, t, h, d]
// (Δ = Σ_s p·dp, the row term of the softmax backward). One invocation per row.
{{include:elementwise}}

fn element(row: u32) {
  let T = params.T;
  let H = params.H;
  let D = params.D;
  let t = row % T;
  let h = (row / T) % H;
  let b = row / (T * H);
  let off = ((b * T + t) * H + h) * D;
  var delta = 0.0;
  for (var d = 0u; d < D; d++) { delta += dOut[off + d] * out[off + d]; }
  stats[2u * row] = lse[row];
  stats[2u * row + 1u] = delta;
}
