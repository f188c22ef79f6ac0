// Cross-entropy backward over one vocabulary chunk, accumulating, element-wise over logits [T, C]:
//   dLogits[t, c] += dLoss[t] · (exp(logits[t, c] − m_t) / s_t − [vocabStart + c == targets[t]])
// with stats[t] = (m_t, s_t) from the forward; nothing is added where targets[t] == −100.
{{include:elementwise}}

fn element(i: u32) {
  let t = i / params.C;
  let c = i - t * params.C;
  let tgt = targets[t];
  if (tgt == -100) { return; }
  let p = exp(logits[i] - stats[2u * t]) / stats[2u * t + 1u];
  let hit = select(0.0, 1.0, i32(params.vocabStart + c) == tgt);
  dLogits[i] += dLoss[t] * (p - hit);
}
