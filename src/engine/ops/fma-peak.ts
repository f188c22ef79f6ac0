// The benchmark's "measured peak" (src/worker/bench-api.ts): an FMA-throughput kernel. WebGPU reports no peak
// FLOP/s for an adapter, so this is the ceiling the matmuls are compared with: each of `threads` invocations
// runs FMA_CHAINS independent vec4 fma chains for `iters` iterations, so one dispatch does
//   flops = threads · iters · FMA_CHAINS · 4 lanes · 2   (a fused multiply-add counts as two).
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { rw, type KernelSpec } from '../kernel';
import type { Tensor } from '../tensor';
import fmaSrc from '../../../shaders/fma_peak.wgsl?raw';

/** Independent fma chains per invocation (enough to hide the fma latency). */
export const FMA_CHAINS = 4;
const WG = 256;

const fmaSpec: KernelSpec = {
  name: 'fma_peak',
  source: fmaSrc,
  bindings: [rw('out')],
  params: [
    ['n', 'u32'],
    ['iters', 'u32'],
    ['mul', 'f32'],
    ['add', 'f32'],
  ],
  defines: { WG },
};

/**
 * out[i] (one value per invocation, threads = out.size) = the sum of the lanes of the FMA_CHAINS chains
 * a ← a·mul + add after `iters` steps, chain j starting at (x, 0.25, 0.5, 0.75) + (0, 0.125, 0.375, 0.625)[j]
 * with x = (i mod 256) · 1e-3.
 */
export function fmaPeak(ctx: GpuContext, out: Tensor, iters: number, mul: number, add: number): void {
  if (out.dtype !== 'f32') throw new Error(`fmaPeak: out must be f32, got ${out.dtype}`);
  const threads = out.size;
  ctx.dispatch(ctx.kernel(fmaSpec), { out }, { n: threads, iters, mul, add }, grid1d(threads, WG, ctx.limits.maxComputeWorkgroupsPerDimension));
}

/** Threads of a peak measurement: enough to fill any GPU several times over. */
export const FMA_PEAK_THREADS = 64 * 1024;

/**
 * The iterations per thread for which one fmaPeak dispatch over `out` takes a few milliseconds (launch overhead
 * then does not count): grown ×4 from 256 up to 65,536. The Bench screen and the Node benchmarks calibrate alike.
 */
export async function calibrateFmaIters(ctx: GpuContext, out: Tensor): Promise<number> {
  let iters = 256;
  for (;;) {
    const t0 = performance.now();
    fmaPeak(ctx, out, iters, 0.9999, 1e-4);
    await ctx.sync();
    if (performance.now() - t0 > 4 || iters >= 1 << 16) return iters;
    iters *= 4;
  }
}
