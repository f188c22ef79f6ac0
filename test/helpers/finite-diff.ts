// Gradient checks against central finite differences of a float64 reference loss, as the model tests use them:
// for each index i of the float64 parameter p (the same numbers the GPU holds as f32),
//   fd = (loss(p + h·e_i) − loss(p − h·e_i)) / 2h,  h = 1e-4,
// and the GPU gradient must satisfy |got[i] − fd| ≤ 2e-4 · max|got| + 1e-3 · |fd| (f32 rounding of the GPU
// forward/backward against the float64 loss; the max|got| term absorbs it where the gradient is near zero).
// p is perturbed in place and restored exactly.
import { expect } from 'vitest';

const H = 1e-4;

/** Checks got[i] against the finite difference of `loss` in param[i] for each of `indices`; `what` names the tensor. */
export function expectFiniteDifferences(what: string, got: Float32Array, param: Float64Array, loss: () => number, indices: readonly number[]): void {
  const scale = Math.max(...got.map(Math.abs));
  for (const i of indices) {
    const orig = param[i]!;
    param[i] = orig + H;
    const lp = loss();
    param[i] = orig - H;
    const lm = loss();
    param[i] = orig;
    const fd = (lp - lm) / (2 * H);
    expect(Math.abs(got[i]! - fd), `${what}[${i}]: ${got[i]} vs ${fd}`).toBeLessThanOrEqual(2e-4 * scale + 1e-3 * Math.abs(fd));
  }
}

/** The index of the largest |v| in got (the first one on ties): the entry a gradient check should not miss. */
export function argMaxAbs(got: Float32Array): number {
  return got.reduce((best, v, j) => (Math.abs(v) > Math.abs(got[best]!) ? j : best), 0);
}
