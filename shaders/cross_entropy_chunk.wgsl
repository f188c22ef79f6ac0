// Cross-entropy over one chunk of the vocabulary, columns [vocabStart, vocabStart + C) of logits [T, C]:
// folds the chunk into each token's running log-sum-exp state stats[t] = (m, s), s = Σ exp(logit − m):
//   m' = max(m, m_chunk),  s' = s · exp(m − m') + s_chunk · exp(m_chunk − m'),
// and stores targetLogit[t] when targets[t] falls in the chunk. Rows with target −100 are folded too
// (harmless; the finish and the backward ignore them).
//
// Row layout as in softmax_forward: R rows per workgroup, W lanes per row, each lane an online (max, sum),
// one barrier, then every lane merges the row's W partials in the same order; lane 0 updates the state.
const NEG_BIG = -3.4028234e38;

var<workgroup> redM: array<f32, {{WG}}>;
var<workgroup> redS: array<f32, {{WG}}>;

@compute @workgroup_size({{W}}, {{R}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = (wid.x + wid.y * nwg.x) * {{R}}u + lid.y;
  let valid = row < params.T;
  let C = params.C;
  let base = row * C;
  let slot = lid.y * {{W}}u;

  var m = NEG_BIG;
  var s = 0.0;
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      let v = logits[base + c];
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
  if (valid && lid.x == 0u) {
    var chunkMax = NEG_BIG;
    for (var k = 0u; k < {{W}}u; k++) {
      chunkMax = max(chunkMax, redM[slot + k]);
    }
    var chunkSum = 0.0;
    for (var k = 0u; k < {{W}}u; k++) {
      chunkSum += redS[slot + k] * exp(redM[slot + k] - chunkMax);
    }
    let oldMax = stats[2u * row];
    let oldSum = stats[2u * row + 1u];
    let newMax = max(oldMax, chunkMax);
    stats[2u * row] = newMax;
    stats[2u * row + 1u] = oldSum * exp(oldMax - newMax) + chunkSum * exp(chunkMax - newMax);

    let col = targets[row] - i32(params.vocabStart);
    if (col >= 0 && col < i32(C)) {
      targetLogit[row] = logits[base + u32(col)];
    }
  }
}
