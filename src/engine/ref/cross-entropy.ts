// Float64 reference for cross-entropy over logits [T, V] with integer targets [T] (ignore_index −100).

export const IGNORE_INDEX = -100;

/** log Σ_v exp(logits[t, v]), with the row max taken out first. */
export function logSumExpRef(logits: Float64Array, T: number, V: number): Float64Array {
  const lse = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[t * V + v]!);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[t * V + v]! - max);
    lse[t] = max + Math.log(sum);
  }
  return lse;
}

/** losses[t] = logsumexp_t − logits[t, targets[t]], or 0 where targets[t] == −100. */
export function crossEntropyForwardRef(logits: Float64Array, targets: Float64Array, T: number, V: number): Float64Array {
  const lse = logSumExpRef(logits, T, V);
  const losses = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    const y = targets[t]!;
    losses[t] = y === IGNORE_INDEX ? 0 : lse[t]! - logits[t * V + y]!;
  }
  return losses;
}

/** dLogits[t, v] = dLoss[t] · (softmax(logits)[t, v] − [v == targets[t]]), 0 on rows with target −100. */
export function crossEntropyBackwardRef(
  dLoss: Float64Array,
  logits: Float64Array,
  targets: Float64Array,
  T: number,
  V: number,
): Float64Array {
  const lse = logSumExpRef(logits, T, V);
  const dLogits = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    const y = targets[t]!;
    if (y === IGNORE_INDEX) continue;
    for (let v = 0; v < V; v++) {
      const p = Math.exp(logits[t * V + v]! - lse[t]!);
      dLogits[t * V + v] = dLoss[t]! * (p - (v === y ? 1 : 0));
    }
  }
  return dLogits;
}
