// Float64 references for the global gradient norm and the clipping coefficient
// (torch.nn.utils.clip_grad_norm_ with norm_type 2).

export function gradNormRef(grads: readonly Float64Array[]): number {
  let s = 0;
  for (const g of grads) for (const x of g) s += x * x;
  return Math.sqrt(s);
}

/** clip_coef = max_norm / (total_norm + 1e-6), clamped to ≤ 1; 1 when clipping is off (maxNorm ≤ 0). */
export function clipCoefficientRef(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || maxNorm === Infinity) return 1;
  const c = maxNorm / (norm + 1e-6);
  return Number.isNaN(c) ? NaN : Math.min(1, c);
}
