// Cross-entropy over one chunk of the vocabulary, columns [vocabStart, vocabStart + C) of logits [rows, C]:
// folds the chunk into each token's running log-sum-exp state stats[t] = (m, s), s = Σ exp(logit − m):
//   m' = max(m, m_chunk),  s' = s · exp(m − m') + s_chunk · exp(m_chunk − m'),
// and stores targetLogit[t] when targets[t] falls in the chunk. Rows with target −100 are folded too
// (harmless; the finish and the backward ignore them).
// Row layout and the chunk's online (max, sum) as in softmax_forward; lane 0 merges and updates the state.
{{include:online_softmax}}

fn rowValue(i: u32) -> f32 {
  return logits[i];
}

fn rowKernel(row: u32, valid: bool, lid: vec3u) {
  laneMaxSum(row, valid, lid);
  if (valid && lid.x == 0u) {
    let chunk = rowMaxSum(lid);
    let chunkMax = chunk.x;
    let oldMax = stats[2u * row];
    let oldSum = stats[2u * row + 1u];
    let newMax = max(oldMax, chunkMax);
    stats[2u * row] = newMax;
    stats[2u * row + 1u] = oldSum * exp(oldMax - newMax) + chunk.y * exp(chunkMax - newMax);

    let C = params.C;
    let col = targets[row] - i32(params.vocabStart);
    if (col >= 0 && col < i32(C)) {
      targetLogit[row] = logits[row * C + u32(col)];
    }
  }
}
