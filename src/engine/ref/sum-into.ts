// Float64 references for the stats-buffer sums (ops/sum-into.ts).

/** acc with acc[slot] += Σ x. */
export function sumIntoRef(acc: Float64Array, slot: number, x: Float64Array): Float64Array {
  const out = Float64Array.from(acc);
  for (const v of x) out[slot]! += v;
  return out;
}

/** acc with acc[base + k] += Σ_{i : seg[i] = k} x[i] for k in [0, segments); other segment ids count nowhere. */
export function segmentSumIntoRef(acc: Float64Array, base: number, x: Float64Array, seg: ArrayLike<number>, segments: number): Float64Array {
  const out = Float64Array.from(acc);
  x.forEach((v, i) => {
    const k = seg[i]!;
    if (k >= 0 && k < segments) out[base + k]! += v;
  });
  return out;
}
