// LayerNorm dWeight and dBias, first pass, over blocks of rowsPerBlock rows:
//   partial[b, c]     = Σ over rows r of block b of dOut[r, c] · (x[r, c] − mean[r]) · rstd[r]   (dWeight)
//   partial[b, C + c] = Σ over rows r of block b of dOut[r, c]                                  (dBias)
// One thread per column; the grid is (column tiles of WG, blocks). No float atomics: the partials of each
// column are added in a fixed order by rmsnorm_dweight_reduce.
{{include:column_blocks}}

fn columnBlock(c: u32, b: u32, r0: u32, r1: u32) {
  let C = params.C;
  var dw = 0.0;
  var db = 0.0;
  for (var r = r0; r < r1; r++) {
    let i = r * C + c;
    let d = dOut[i];
    dw += d * (x[i] - mean[r]) * rstd[r];
    db += d;
  }
  partial[2u * b * C + c] = dw;
  partial[2u * b * C + C + c] = db;
}
