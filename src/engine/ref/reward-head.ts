// Float64 references for the reward head (ops/reward-head.ts): out[b] = w · hidden[rows[b], :] and its
// gradients.

/** out[b] = Σ_k w[k] · hidden[rows[b]·H + k], H = w.length. */
export function rewardForwardRef(hidden: Float64Array, rows: ArrayLike<number>, w: Float64Array): Float64Array {
  const H = w.length;
  return Float64Array.from({ length: rows.length }, (_, b) => {
    let s = 0;
    for (let k = 0; k < H; k++) s += w[k]! * hidden[rows[b]! * H + k]!;
    return s;
  });
}

/** dW[k] = Σ_b dOut[b] · hidden[rows[b], k]; dHidden[rows[b], k] = dOut[b] · w[k] (0 in other rows). */
export function rewardBackwardRef(
  dOut: Float64Array,
  hidden: Float64Array,
  rows: ArrayLike<number>,
  w: Float64Array,
): { dW: Float64Array; dHidden: Float64Array } {
  const H = w.length;
  const dW = new Float64Array(H);
  const dHidden = new Float64Array(hidden.length);
  for (let b = 0; b < rows.length; b++) {
    for (let k = 0; k < H; k++) {
      dW[k]! += dOut[b]! * hidden[rows[b]! * H + k]!;
      dHidden[rows[b]! * H + k]! += dOut[b]! * w[k]!;
    }
  }
  return { dW, dHidden };
}
