// Softmax backward, accumulating: dx[r, c] += out[r, c] · (dOut[r, c] − Σ_c' dOut[r, c'] · out[r, c']).
// Row layout as in softmax_forward: R rows per workgroup, W lanes per row, one barrier for the row's dot.
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
      acc += dOut[base + c] * out[base + c];
    }
  }
  red[slot + lid.x] = acc;
  workgroupBarrier();
  var dot = 0.0;
  for (var k = 0u; k < {{W}}u; k++) {
    dot += red[slot + k];
  }
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      let i = base + c;
      dx[i] += out[i] * (dOut[i] - dot);
    }
  }
}
