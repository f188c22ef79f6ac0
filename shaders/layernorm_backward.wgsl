// LayerNorm backward for x, accumulating. With g = dOut ⊙ weight and x̂ = (x − mean) · rstd:
//   dx[r, c] += rstd · (g[c] − mean_c' g[c'] − x̂[c] · mean_c'(g[c'] · x̂[c']))
// Row layout as in layernorm_forward; the two row sums share one barrier (a vec2 per lane).
// dWeight and dBias are reduced over rows by layernorm_dparams_partial and rmsnorm_dweight_reduce.
var<workgroup> red: array<vec2<f32>, {{WG}}>;

@compute @workgroup_size({{W}}, {{R}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = (wid.x + wid.y * nwg.x) * {{R}}u + lid.y;
  let valid = row < params.rows;
  let C = params.C;
  let base = row * C;
  let slot = lid.y * {{W}}u;

  var m = 0.0;
  var r = 0.0;
  var acc = vec2<f32>(0.0, 0.0);
  if (valid) {
    m = mean[row];
    r = rstd[row];
    for (var c = lid.x; c < C; c += {{W}}u) {
      let g = dOut[base + c] * weight[c];
      let xh = (x[base + c] - m) * r;
      acc += vec2<f32>(g, g * xh);
    }
  }
  red[slot + lid.x] = acc;
  workgroupBarrier();
  var sums = vec2<f32>(0.0, 0.0);
  for (var k = 0u; k < {{W}}u; k++) {
    sums += red[slot + k];
  }
  sums /= f32(C);
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      let i = base + c;
      let g = dOut[i] * weight[c];
      let xh = (x[i] - m) * r;
      dx[i] += r * (g - sums.x - xh * sums.y);
    }
  }
}
