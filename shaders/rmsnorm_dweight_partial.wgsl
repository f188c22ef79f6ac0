// RMSNorm dWeight, first pass: partial[b, c] = Σ over rows r of block b of dOut[r, c] · x[r, c] · rstd[r].
// One thread per column; the grid is (column tiles of WG, blocks of rowsPerBlock rows). No float atomics:
// rmsnorm_dweight_reduce adds the partials of each column in a fixed order.
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let b = gid.y;
  let C = params.C;
  if (c >= C) { return; }
  let r0 = b * params.rowsPerBlock;
  let r1 = min(r0 + params.rowsPerBlock, params.rows);
  var acc = 0.0;
  for (var r = r0; r < r1; r++) {
    let i = r * C + c;
    acc += dOut[i] * x[i] * rstd[r];
  }
  partial[b * C + c] = acc;
}
