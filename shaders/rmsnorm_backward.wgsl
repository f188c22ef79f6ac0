// RMSNorm backward for x, accumulating. With g = dOut ⊙ weight and rstd from the forward:
//   dx[r, c] += rstd · (g[c] − x[r, c] · rstd² · mean_c'(g[c'] · x[r, c']))
// Row layout as in rmsnorm_forward. dWeight is reduced over rows by rmsnorm_dweight_partial/_reduce.
var<workgroup> red: array<f32, {{WG}}>;

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
      acc += dOut[base + c] * weight[c] * x[base + c];
    }
  }
  red[slot + lid.x] = acc;
  workgroupBarrier();
  var dot = 0.0;
  for (var k = 0u; k < {{W}}u; k++) {
    dot += red[slot + k];
  }
  if (valid) {
    let r = rstd[row];
    let coef = r * r * dot / f32(C);
    for (var c = lid.x; c < C; c += {{W}}u) {
      let i = base + c;
      dx[i] += r * (dOut[i] * weight[c] - x[i] * coef);
    }
  }
}
