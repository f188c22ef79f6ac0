// The kernel self-test: SwiGLU on seeded inputs on the GPU, read back and compared with the same formula in
// float64 on the CPU. It proves that the adapter compiles and runs Graft's kernels and that the numbers are
// right. (The formula is written here, in one line, rather than taken from the engine's test references,
// which production code does not import.)
import type { GpuContext } from '../engine/context';
import { swigluForward } from '../engine/ops/swiglu';
import { SELF_TEST_DEFAULT_N, type SelfTestOptions, type SelfTestResult } from './api';

/** mulberry32: small, seeded, the same sequence everywhere. */
function seeded(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** SwiGLU in float64: silu(gate) · up = gate · sigmoid(gate) · up. */
function swiglu(gate: number, up: number): number {
  return gate * (1 / (1 + Math.exp(-gate))) * up;
}

/** n float32-representable values, uniform in [-range, range). */
function inputs(n: number, range: number, next: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * next() - 1) * range;
  return out;
}

export async function runSelfTest(ctx: GpuContext, options: SelfTestOptions = {}): Promise<SelfTestResult> {
  const n = options.n ?? SELF_TEST_DEFAULT_N;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`selfTest: n must be a positive integer, got ${n}`);
  // Allocate first: a size the adapter cannot hold fails here with a GpuError, before any host memory is used.
  const gate = ctx.empty([n], 'f32', { label: 'the self-test gate input' });
  const up = ctx.empty([n], 'f32', { label: 'the self-test up input' });
  const out = ctx.empty([n], 'f32', { label: 'the self-test output' });
  try {
    const next = seeded(options.seed ?? 1);
    // Gate spans the sigmoid's curved part and both tails; outputs stay O(1) so 1e-5 is a fair bound.
    const gateData = inputs(n, 6, next);
    const upData = inputs(n, 1, next);
    const t0 = performance.now();
    ctx.write(gate, gateData);
    ctx.write(up, upData);
    swigluForward(ctx, out, gate, up);
    const got = await ctx.readF32(out);
    const gpuMs = performance.now() - t0;
    let maxAbsError = 0;
    for (let i = 0; i < n; i++) {
      const err = Math.abs(got[i]! - swiglu(gateData[i]!, upData[i]!));
      // NaN must fail the test, and NaN > x is false, so check it explicitly.
      if (!(err <= maxAbsError)) maxAbsError = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err;
    }
    return {
      kernel: 'swiglu_forward',
      maxAbsError,
      n,
      adapter: ctx.adapter,
      ranIn: isWorkerScope() ? 'worker' : 'window',
      gpuMs,
    };
  } finally {
    gate.release();
    up.release();
    out.release();
  }
}

function isWorkerScope(): boolean {
  const g = globalThis as { WorkerGlobalScope?: abstract new () => unknown };
  return typeof g.WorkerGlobalScope === 'function' && globalThis instanceof g.WorkerGlobalScope;
}
