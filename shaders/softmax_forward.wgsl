// Softmax over the last dim: out[r, c] = exp(x[r, c] − m_r) / Σ_c exp(x[r, c] − m_r), m_r = max_c x[r, c].
//
// Row layout (all row kernels): a workgroup of W × R threads handles R rows with W lanes per row; W is the
// smallest power of two ≥ C up to WG, so short rows share a workgroup and wide rows are strided over W lanes.
// Each lane keeps an online (max, sum) over its columns; after one barrier every lane of the row merges the
// W partials from workgroup memory itself, in the same order (one barrier instead of a log₂ W tree; the
// reads are broadcasts). Workgroups are spread over a 2-D grid; lanes of rows past the end take part in
// the barrier but neither read nor write.
const NEG_BIG = -3.4028234e38;

var<workgroup> redM: array<f32, {{WG}}>;
var<workgroup> redS: array<f32, {{WG}}>;

@compute @workgroup_size({{W}}, {{R}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = (wid.x + wid.y * nwg.x) * {{R}}u + lid.y;
  let valid = row < params.rows;
  let C = params.C;
  let base = row * C;
  let slot = lid.y * {{W}}u;

  var m = NEG_BIG;
  var s = 0.0;
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      let v = x[base + c];
      if (v > m) {
        s = s * exp(m - v) + 1.0;
        m = v;
      } else {
        s += exp(v - m);
      }
    }
  }
  redM[slot + lid.x] = m;
  redS[slot + lid.x] = s;
  workgroupBarrier();
  var rowMax = NEG_BIG;
  for (var k = 0u; k < {{W}}u; k++) {
    rowMax = max(rowMax, redM[slot + k]);
  }
  var sum = 0.0;
  for (var k = 0u; k < {{W}}u; k++) {
    sum += redS[slot + k] * exp(redM[slot + k] - rowMax);
  }
  let inv = 1.0 / sum;
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      out[base + c] = exp(x[base + c] - rowMax) * inv;
    }
  }
}
