// LayerNorm over the last dim (GPT-2): out[r, c] = (x[r, c] − mean[r]) · rstd[r] · weight[c] + bias[c],
// mean[r] = mean_c x[r, c], rstd[r] = 1 / sqrt(mean_c (x[r, c] − mean[r])² + eps). mean and rstd are saved
// for the backward. The variance is taken about the mean (a second pass over the row), not as
// E[x²] − mean², which cancels badly when |mean| ≫ std.
// Row layout as in rmsnorm_forward: R rows per workgroup, W lanes per row; each row sum takes one barrier
// (two workgroup arrays, so the second sum need not wait for every lane to have read the first).
var<workgroup> redMean: array<f32, {{WG}}>;
var<workgroup> redVar: array<f32, {{WG}}>;

@compute @workgroup_size({{W}}, {{R}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = (wid.x + wid.y * nwg.x) * {{R}}u + lid.y;
  let valid = row < params.rows;
  let C = params.C;
  let base = row * C;
  let slot = lid.y * {{W}}u;

  var acc = 0.0;
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      acc += x[base + c];
    }
  }
  redMean[slot + lid.x] = acc;
  workgroupBarrier();
  var sum = 0.0;
  for (var k = 0u; k < {{W}}u; k++) {
    sum += redMean[slot + k];
  }
  let m = sum / f32(C);

  var acc2 = 0.0;
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      let d = x[base + c] - m;
      acc2 += d * d;
    }
  }
  redVar[slot + lid.x] = acc2;
  workgroupBarrier();
  var sumSq = 0.0;
  for (var k = 0u; k < {{W}}u; k++) {
    sumSq += redVar[slot + k];
  }
  let r = 1.0 / sqrt(sumSq / f32(C) + params.eps);
  if (valid) {
    if (lid.x == 0u) {
      mean[row] = m;
      rstd[row] = r;
    }
    for (var c = lid.x; c < C; c += {{W}}u) {
      out[base + c] = (x[base + c] - m) * r * weight[c] + bias[c];
    }
  }
}
