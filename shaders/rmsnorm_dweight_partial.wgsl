// RMSNorm dWeight, first pass: partial[b, c] = Σ over rows r of block b of dOut[r, c] · x[r, c] · rstd[r].
// One thread per column; the grid is (column tiles of WG, blocks of rowsPerBlock rows). No float atomics:
// rmsnorm_dweight_reduce adds the partials of each column in a fixed order.
{{include:column_blocks}}

fn columnBlock(c: u32, b: u32, r0: u32, r1: u32) {
  let C = params.C;
  var acc = 0.0;
  for (var r = r0; r < r1; r++) {
    let i = r * C + c;
    acc += dOut[i] * x[i] * rstd[r];
  }
  partial[b * C + c] = acc;
}
