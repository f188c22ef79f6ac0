// Choosing the next token from a row of logits, on the CPU, with the semantics of transformers' `generate`
// (repetition penalty, then temperature, top-k, top-p; float64 sums): docs/model.md ("Sampling").

/** The settings that shape the next-token distribution; see GenerateOptions for the defaults. */
export interface SamplingSettings {
  /** Take the argmax instead of sampling. */
  greedy: boolean;
  /** > 0. Logits are divided by it. 1 leaves them unchanged. */
  temperature: number;
  /** Keep the k highest logits (ties with the k-th kept too). 0 disables. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (at least one). 1 disables. */
  topP: number;
  /** > 0. 1 disables. Applied to every id already in the prompt or generated. */
  repetitionPenalty: number;
}

/**
 * HF RepetitionPenaltyLogitsProcessor, in place: for every distinct id in `previous`, a positive logit is divided
 * by the penalty and a negative one multiplied by it (so a penalty > 1 always makes the token less likely).
 */
export function applyRepetitionPenalty(logits: Float32Array, previous: readonly number[], penalty: number): Float32Array {
  if (penalty === 1) return logits;
  if (!(penalty > 0)) throw new RangeError(`repetitionPenalty must be > 0, got ${penalty}`);
  const seen = new Set<number>();
  for (const id of previous) {
    if (seen.has(id) || id < 0 || id >= logits.length) continue;
    seen.add(id);
    const s = logits[id]!;
    logits[id] = s < 0 ? s * penalty : s / penalty;
  }
  return logits;
}

/** HF TemperatureLogitsWarper, in place: logits / temperature. */
export function applyTemperature(logits: Float32Array, temperature: number): Float32Array {
  if (temperature === 1) return logits;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new RangeError(`temperature must be a positive number, got ${temperature}`);
  for (let i = 0; i < logits.length; i++) logits[i] = logits[i]! / temperature;
  return logits;
}

/**
 * HF TopKLogitsWarper, in place: every logit below the k-th largest becomes -Infinity. Logits equal to the k-th
 * largest stay (transformers compares with `<`), so ties can keep more than k tokens. k <= 0 disables; k larger
 * than the vocabulary keeps everything.
 */
export function applyTopK(logits: Float32Array, k: number): Float32Array {
  if (!(k > 0) || k >= logits.length) return logits;
  const kth = kthLargest(logits, Math.floor(k));
  for (let i = 0; i < logits.length; i++) if (logits[i]! < kth) logits[i] = -Infinity;
  return logits;
}

function kthLargest(values: Float32Array, k: number): number {
  // A sorted copy is O(V log V): for a 150k vocabulary about 10 ms, once per token. Plenty for a browser demo.
  const sorted = Float32Array.from(values).sort();
  return sorted[sorted.length - k]!;
}

/**
 * HF TopPLogitsWarper (nucleus), in place. Sort the tokens by logit ascending, take the cumulative softmax
 * probability, and remove every token whose cumulative probability is <= 1 - p; the most likely token always
 * stays. Equivalently: keep the smallest set of most likely tokens whose probabilities sum to at least p.
 * Ties sort by id, the lower id counting as the more likely one. p >= 1 disables.
 */
export function applyTopP(logits: Float32Array, p: number): Float32Array {
  if (p >= 1) return logits;
  if (!(p > 0)) throw new RangeError(`topP must be in (0, 1], got ${p}`);
  const probs = softmax(logits);
  // Ascending by logit; among equal logits the higher id first (it is "less likely" in the order above).
  const order = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logits[a]! - logits[b]! || b - a);
  let cum = 0;
  const threshold = 1 - p;
  for (let j = 0; j < order.length - 1; j++) {
    const id = order[j]!;
    cum += probs[id]!;
    if (cum <= threshold) logits[id] = -Infinity;
    else break;
  }
  return logits;
}

/** Softmax in float64. -Infinity logits get probability 0. All -Infinity (or NaN) is an error. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  if (!Number.isFinite(max)) throw new RangeError(`softmax: no finite logit (max is ${max}); the model produced NaN or Infinity`);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(logits[i]! - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / sum;
  return out;
}

/** The index of the largest value; ties go to the lowest index and a NaN wins, as with torch.argmax. */
export function argmax(values: ArrayLike<number>): number {
  if (values.length === 0) throw new RangeError('argmax of an empty array');
  let best = 0;
  let bestV = values[0]!;
  if (Number.isNaN(bestV)) return 0;
  for (let i = 1; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) return i;
    if (v > bestV) {
      best = i;
      bestV = v;
    }
  }
  return best;
}

/**
 * A seeded pseudo-random generator: xoshiro128** (Blackman and Vigna, 2018) with its 128-bit state filled by
 * SplitMix32 from the seed. Fast, statistically strong for sampling, and the same sequence on every platform
 * for the same seed. `next()` gives a double in [0, 1) with 53 random bits.
 *
 * Seeds are integers in [-2^53, 2^53]; the low and high 32-bit halves are both mixed in, so seeds that differ
 * only above bit 32 give different sequences.
 */
export class SeededRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    let x = (lo ^ Math.imul(hi, 0x9e3779b9)) >>> 0;
    const splitmix32 = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = splitmix32();
    this.s1 = splitmix32();
    this.s2 = splitmix32();
    this.s3 = splitmix32() ^ hi; // hi also here, so (lo, hi) pairs whose first mix collides still differ
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A double in [0, 1) with 53 random bits. */
  next(): number {
    const a = this.nextUint32() >>> 5; // 27 bits
    const b = this.nextUint32() >>> 6; // 26 bits
    return (a * 67108864 + b) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * Draws an index from `probs` (non-negative, summing to about 1) by inverting the cumulative distribution with
 * one uniform number: the first index whose cumulative probability exceeds u·sum. Zero-probability indices are
 * never chosen.
 */
export function sampleIndex(probs: ArrayLike<number>, random: () => number): number {
  let total = 0;
  for (let i = 0; i < probs.length; i++) total += probs[i]!;
  if (!(total > 0)) throw new RangeError('sampleIndex: the probabilities sum to zero');
  const target = random() * total;
  let cum = 0;
  let last = -1;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    if (p <= 0) continue;
    cum += p;
    last = i;
    if (cum > target) return i;
  }
  return last; // rounding left target just above the final sum
}

/**
 * The distribution sampling draws from, after repetition penalty, temperature, top-k and top-p (HF order).
 * `logits` is not modified.
 */
export function samplingDistribution(logits: Float32Array, previous: readonly number[], s: SamplingSettings): Float64Array {
  const x = Float32Array.from(logits);
  applyRepetitionPenalty(x, previous, s.repetitionPenalty);
  applyTemperature(x, s.temperature);
  applyTopK(x, s.topK);
  applyTopP(x, s.topP);
  return softmax(x);
}

/**
 * The next token: greedy → argmax after the repetition penalty; otherwise a draw from
 * {@link samplingDistribution} with `random`. `previous` holds the prompt and the tokens generated so far.
 * `logits` is not modified.
 */
export function selectToken(logits: Float32Array, previous: readonly number[], s: SamplingSettings, random: () => number): number {
  if (s.greedy) {
    if (s.repetitionPenalty === 1) return argmax(logits);
    return argmax(applyRepetitionPenalty(Float32Array.from(logits), previous, s.repetitionPenalty));
  }
  return sampleIndex(samplingDistribution(logits, previous, s), random);
}
