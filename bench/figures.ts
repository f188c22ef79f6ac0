// The benchmarks' figures, as pure functions (no GPU, no engine import: test/bench/figures.test.ts checks them).
//
//   MFU                 achieved GFLOP/s ÷ the peak measured in the same run by the FMA-throughput kernel
//                       (src/engine/ops/fma-peak.ts, the Bench screen's): how close to the device's arithmetic
//                       ceiling a product or a step runs.
//   matmul efficiency   achieved GFLOP/s ÷ the best Graft matmul GFLOP/s of the same run: how much of a step is
//                       spent outside (or below) the best matmul. (This is what the benchmarks called "MFU"
//                       before a peak was measured.)
//   step totals         a training step's matmul products, each counted as often as one step runs it (every
//                       layer of the real depth, every projection that shares the shape, the lm head scaled from
//                       its measured vocabulary slice to the whole vocabulary) and summed as TIME, so the big
//                       products weigh what they cost; an unweighted geometric mean of ratios let a 0.1 ms LoRA
//                       product count as much as the lm head. A peer whose result was wrong keeps its time in
//                       the total and the total says how many of its products were wrong.

/** achieved ÷ peak (both GFLOP/s); NaN when the peak is not positive. */
export function mfu(achievedGflops: number, peakGflops: number): number {
  return peakGflops > 0 ? achievedGflops / peakGflops : NaN;
}

/** achieved ÷ the best matmul of the run (both GFLOP/s); NaN when there is no best. */
export function matmulEfficiency(achievedGflops: number, bestMatmulGflops: number): number {
  return bestMatmulGflops > 0 ? achievedGflops / bestMatmulGflops : NaN;
}

/** GFLOP/s of the FMA kernel: threads · iters · chains · 4 lanes · 2 flops, `runs` times in `seconds`. */
export function fmaGflops(threads: number, iters: number, chains: number, runs: number, seconds: number): number {
  return (threads * iters * chains * 4 * 2 * runs) / seconds / 1e9;
}

/**
 * How many times one training step runs a benchmark product: `layers` × the projections sharing its shape for
 * a layer's product ("q_proj/o_proj" → 2 per layer, a LoRA product of that group likewise), or, for the lm
 * head (`vocabRows` given), once scaled by vocab ÷ vocabRows (the product was measured on a slice of the
 * vocabulary; its time is linear in the rows).
 */
export function stepCount(layer: string, layers: number, vocabRows?: number, vocab?: number): number {
  if (vocabRows !== undefined && vocab !== undefined) return vocab / vocabRows;
  const group = layer.split(' ')[0]!;
  return layers * group.split('/').length;
}

/** One library's time on one product. */
export interface PeerTime {
  ms: number;
  /** 'ok' or what was wrong (the benchmark's float64 spot check). */
  check: string;
}

/** A product with its per-step count and every library's time on it (a library that did not run it is absent). */
export interface WeightedProduct {
  count: number;
  flops: number;
  times: Record<string, PeerTime | undefined>;
}

export interface StepTotal {
  library: string;
  /** Σ count · ms over the products this library ran. */
  ms: number;
  /** Σ count · flops ÷ that time. */
  gflops: number;
  products: number;
  wrong: number;
  /** Products of the step this library did not run (then its total is not comparable; `ratio` stays null). */
  missing: number;
}

/** Time-weighted totals of one step per library, in the order the libraries first appear. */
export function stepTotals(products: readonly WeightedProduct[]): StepTotal[] {
  const names: string[] = [];
  for (const p of products) for (const [k, v] of Object.entries(p.times)) if (v && !names.includes(k)) names.push(k);
  return names.map((library) => {
    let ms = 0;
    let flops = 0;
    let n = 0;
    let wrong = 0;
    for (const p of products) {
      const t = p.times[library];
      if (!t) continue;
      ms += p.count * t.ms;
      flops += p.count * p.flops;
      n++;
      if (t.check !== 'ok') wrong++;
    }
    return { library, ms, gflops: ms > 0 ? flops / (ms / 1000) / 1e9 : 0, products: n, wrong, missing: products.length - n };
  });
}

/** peer total ÷ `base` total (how many times faster `base` is); null when either misses a product. */
export function speedup(base: StepTotal, peer: StepTotal): number | null {
  if (base.missing || peer.missing || !(base.ms > 0)) return null;
  return peer.ms / base.ms;
}

/**
 * The target in words: `base` at least `target`× faster than the peer. Says by how much it is met or
 * missed (a ratio below 1 means the peer is faster).
 */
export function targetVerdict(ratio: number | null, target: number): string {
  if (ratio === null) return 'not comparable (a product is missing)';
  if (ratio >= target) return `met (${ratio.toFixed(2)}× ≥ ${target}×)`;
  if (ratio >= 1) return `missed: ${ratio.toFixed(2)}× < ${target}× (${(100 * (1 - ratio / target)).toFixed(0)}% short)`;
  return `missed: Graft is ${(1 / ratio).toFixed(2)}× SLOWER (${ratio.toFixed(2)}× < ${target}×)`;
}

/** Which family a kernel (its spec name) belongs to, for the per-family GPU times of a step. */
export function kernelFamily(kernel: string): string {
  if (kernel.startsWith('matmul')) return 'matmul';
  if (kernel.startsWith('flash_attention') || kernel.startsWith('attention') || kernel.startsWith('softmax')) return 'attention';
  if (kernel.startsWith('cross_entropy')) return 'cross-entropy';
  if (kernel.startsWith('adamw') || kernel.startsWith('grad_norm')) return 'optimizer';
  if (kernel.startsWith('rmsnorm') || kernel.startsWith('layernorm')) return 'norm';
  if (kernel.startsWith('rope')) return 'rope';
  if (kernel.startsWith('embedding')) return 'embedding';
  if (/^(swiglu|geglu|gelu|silu|dropout)/.test(kernel)) return 'activation';
  return 'other';
}

/** GPU milliseconds per kernel family, largest first, from a profile's (kernel, ns) list. */
export function familyTimes(timed: readonly { kernel: string; ns: number }[]): { family: string; ms: number; dispatches: number }[] {
  const by = new Map<string, { ms: number; dispatches: number }>();
  for (const t of timed) {
    const f = kernelFamily(t.kernel);
    const e = by.get(f) ?? { ms: 0, dispatches: 0 };
    e.ms += t.ns / 1e6;
    e.dispatches++;
    by.set(f, e);
  }
  return [...by].map(([family, e]) => ({ family, ...e })).sort((a, b) => b.ms - a.ms);
}

/** "12.3%" (or "-" for NaN). */
export const pct = (x: number, digits = 1): string => (Number.isFinite(x) ? `${(100 * x).toFixed(digits)}%` : '-');
