// LayerNorm over the last dim (GPT-2): out[r, c] = (x[r, c] − mean[r]) · rstd[r] · weight[c] + bias[c],
// mean[r] = mean_c x[r, c], rstd[r] = 1 / sqrt(mean_c (x[r, c] − mean[r])² + eps). mean and rstd are saved
// for the backward. Corrected two-pass algorithm (Chan, Golub & LeVeque): a first pass gives m₁ = Σ x / C;
// the second sums d = x − m₁ and d², which refines the mean, mean = m₁ + Σ d / C, and gives the variance
// about it, Σ d² / C − (Σ d / C)², without the cancellation of E[x²] − mean² when |mean| ≫ std.
// Row layout as in rmsnorm_forward: R rows per workgroup, W lanes per row; each row sum takes one barrier
// (two workgroup arrays, so the second sum need not wait for every lane to have read the first).
var<workgroup> redMean: array<f32, {{WG}}>;
var<workgroup> redVar: array<vec2<f32>, {{WG}}>;

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
  let m1 = sum / f32(C);

  var acc2 = vec2<f32>(0.0, 0.0);
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      let d = x[base + c] - m1;
      acc2 += vec2<f32>(d, d * d);
    }
  }
  redVar[slot + lid.x] = acc2;
  workgroupBarrier();
  var sums = vec2<f32>(0.0, 0.0);
  for (var k = 0u; k < {{W}}u; k++) {
    sums += redVar[slot + k];
  }
  let delta = sums.x / f32(C);
  let m = m1 + delta;
  let r = 1.0 / sqrt(max(sums.y / f32(C) - delta * delta, 0.0) + params.eps);
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
