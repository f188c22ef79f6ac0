// Float64 reference for causal self-attention with grouped-query heads and a key padding mask (the formulas:
// docs/kernels.md, "Attention").
import type { Dims } from '../ops/attention-checks';
import { EMPTY_ROW_LSE } from '../ops/flash-attention';

/** The sizes the attention ops check and use (ops/attention-checks.ts). */
export type AttentionShape = Dims;

/** The visible keys of query t in batch row b (with a sliding window > 0: only the last `window` positions). */
function visible(b: number, t: number, s: AttentionShape, keyMask: ArrayLike<number> | null, window = 0): number[] {
  const keys: number[] = [];
  const last = t + (s.S - s.T);
  for (let j = window > 0 ? Math.max(0, last - window + 1) : 0; j <= last && j < s.S; j++) {
    if (keyMask === null || keyMask[b * s.S + j] !== 0) keys.push(j);
  }
  return keys;
}

const qIndex = (s: AttentionShape, b: number, t: number, h: number): number => ((b * s.T + t) * s.H + h) * s.D;
const kIndex = (s: AttentionShape, b: number, j: number, kh: number): number => ((b * s.S + j) * s.Hkv + kh) * s.D;

/** The probabilities of query (b, h, t) over its visible keys, and the log-sum-exp of the scores. */
function softmaxRow(
  q: Float64Array,
  k: Float64Array,
  s: AttentionShape,
  b: number,
  h: number,
  t: number,
  keys: number[],
  scale: number,
): { p: number[]; lse: number } {
  const kh = Math.floor(h / (s.H / s.Hkv));
  const qi = qIndex(s, b, t, h);
  const scores = keys.map((j) => {
    const ki = kIndex(s, b, j, kh);
    let dot = 0;
    for (let d = 0; d < s.D; d++) dot += q[qi + d]! * k[ki + d]!;
    return scale * dot;
  });
  if (scores.length === 0) return { p: [], lse: EMPTY_ROW_LSE };
  const m = Math.max(...scores);
  let sum = 0;
  for (const x of scores) sum += Math.exp(x - m);
  const lse = m + Math.log(sum);
  return { p: scores.map((x) => Math.exp(x - lse)), lse };
}

export function attentionForwardRef(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  keyMask: ArrayLike<number> | null,
  s: AttentionShape,
  scale: number,
  window = 0,
): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(s.B * s.T * s.H * s.D);
  const lse = new Float64Array(s.B * s.H * s.T);
  for (let b = 0; b < s.B; b++) {
    for (let h = 0; h < s.H; h++) {
      const kh = Math.floor(h / (s.H / s.Hkv));
      for (let t = 0; t < s.T; t++) {
        const keys = visible(b, t, s, keyMask, window);
        const row = softmaxRow(q, k, s, b, h, t, keys, scale);
        lse[(b * s.H + h) * s.T + t] = row.lse;
        const oi = qIndex(s, b, t, h);
        for (let d = 0; d < s.D; d++) {
          let sum = 0;
          keys.forEach((j, n) => (sum += row.p[n]! * v[kIndex(s, b, j, kh) + d]!));
          out[oi + d] = sum;
        }
      }
    }
  }
  return { out, lse };
}

export function attentionBackwardRef(
  dOut: Float64Array,
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  keyMask: ArrayLike<number> | null,
  s: AttentionShape,
  scale: number,
  window = 0,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  for (let b = 0; b < s.B; b++) {
    for (let h = 0; h < s.H; h++) {
      const kh = Math.floor(h / (s.H / s.Hkv));
      for (let t = 0; t < s.T; t++) {
        const keys = visible(b, t, s, keyMask, window);
        const { p } = softmaxRow(q, k, s, b, h, t, keys, scale);
        const qi = qIndex(s, b, t, h);
        // dp[n] = dOut_t · v_{keys[n]}
        const dp = keys.map((j) => {
          const vi = kIndex(s, b, j, kh);
          let dot = 0;
          for (let d = 0; d < s.D; d++) dot += dOut[qi + d]! * v[vi + d]!;
          return dot;
        });
        let rowTerm = 0;
        keys.forEach((_, n) => (rowTerm += p[n]! * dp[n]!));
        keys.forEach((j, n) => {
          const ds = p[n]! * (dp[n]! - rowTerm);
          const ki = kIndex(s, b, j, kh);
          for (let d = 0; d < s.D; d++) {
            dq[qi + d] = dq[qi + d]! + scale * ds * k[ki + d]!;
            dk[ki + d] = dk[ki + d]! + scale * ds * q[qi + d]!;
            dv[ki + d] = dv[ki + d]! + p[n]! * dOut[qi + d]!;
          }
        });
      }
    }
  }
  return { dq, dk, dv };
}
