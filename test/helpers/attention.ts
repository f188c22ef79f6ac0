// What the attention kernel tests share: the cases both kernel families run (bench/row-attention.ts's row kernels
// in test/ops/attention.test.ts, the flash kernels in test/ops/flash-attention.test.ts), and the checks each runs
// on its own forward and backward: checkOp against the float64 reference, the B1 T1 S1 case, the query that sees
// no key, and the shape errors.
import { expect } from 'vitest';
import { EMPTY_ROW_LSE } from '../../bench/row-attention';
import type { GpuContext } from '../../src/engine/context';
import { attentionBackwardRef, attentionForwardRef, type AttentionShape } from '../../src/engine/ref/attention';
import type { Tensor } from '../../src/engine/tensor';
import { checkOp, expectClose } from '../harness/checkOp';
import { Rng } from './rng';

export interface AttnCase extends AttentionShape {
  name: string;
  /** keyMask[b][s], or null for no mask. */
  mask?: (b: number, s: number) => number;
  /** Standard deviation of q (larger: peakier softmax). */
  qScale?: number;
  fdSamples?: number;
  /** Sliding-window attention (the flash kernels only): each query sees its last `window` positions. */
  window?: number;
}

/** One family's forward and backward, with the row kernels' signature (the flash ones take their options bound). */
export interface AttentionKernels {
  forward(ctx: GpuContext, out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, keyMask: Tensor | null, scale: number): void;
  backward(ctx: GpuContext, dq: Tensor, dk: Tensor, dv: Tensor, dOut: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, keyMask: Tensor | null, scale: number): void;
}

/** The cases of both files. */
export const ATTENTION_CASES: AttnCase[] = [
  // (B1 T1 S1 has dq = dk = 0 identically, which checkOp refuses; it has its own test: checkSingleKey.)
  { name: 'tiny decode step B1 T1 S3 H1 D2', B: 1, T: 1, S: 3, H: 1, Hkv: 1, D: 2 },
  { name: 'tiny-llama B2 T20 H4 Hkv2 D16', B: 2, T: 20, S: 20, H: 4, Hkv: 2, D: 16 },
  { name: 'odd B2 T13 H6 Hkv3 D8', B: 2, T: 13, S: 13, H: 6, Hkv: 3, D: 8, qScale: 3 },
  { name: 'MHA B2 T9 H3 Hkv3 D12', B: 2, T: 9, S: 9, H: 3, Hkv: 3, D: 12 },
  // Queries are the last 5 of 17 positions; one masked key in the cached part.
  { name: 'KV cache B2 T5 S17 H4 Hkv1 D16', B: 2, T: 5, S: 17, H: 4, Hkv: 1, D: 16, mask: (b, s) => (b === 1 && s === 3 ? 0 : 1) },
  // Right padding as in training batches: row lengths 11, 7 and 3.
  { name: 'right padding B3 T11 H4 Hkv2 D16', B: 3, T: 11, S: 11, H: 4, Hkv: 2, D: 16, mask: (b, s) => (s < [11, 7, 3][b]! ? 1 : 0) },
  // Left padding: the first 4 queries of row 1 see only masked keys (out 0, lse EMPTY_ROW_LSE, no gradient).
  { name: 'left padding B2 T10 H2 Hkv1 D8', B: 2, T: 10, S: 10, H: 2, Hkv: 1, D: 8, mask: (b, s) => (b === 1 && s < 4 ? 0 : 1) },
  // Head dim above the workgroup size (64) and not a power of two.
  { name: 'wide heads B1 T7 H2 Hkv1 D80', B: 1, T: 7, S: 7, H: 2, Hkv: 1, D: 80 },
  // Rows longer than a workgroup: several chunks per row and per key.
  // (The finite differences only check the float64 reference, which the small cases cover; keep them few.)
  { name: 'long B1 T300 H2 Hkv1 D64', B: 1, T: 300, S: 300, H: 2, Hkv: 1, D: 64, fdSamples: 2 },
];

function maskData(c: AttnCase): Float64Array | null {
  if (!c.mask) return null;
  const m = new Float64Array(c.B * c.S);
  for (let b = 0; b < c.B; b++) for (let s = 0; s < c.S; s++) m[b * c.S + s] = c.mask(b, s);
  return m;
}

/** A case's seeded inputs (q, k, v and the key mask), the same for every kernel that runs it. */
export function caseInputs(c: AttnCase): Parameters<typeof checkOp>[1]['inputs'] {
  const rng = new Rng(c.B * 7 + c.T * 131 + c.S * 3 + c.H * 17 + c.D);
  const nq = c.B * c.T * c.H * c.D;
  const nk = c.B * c.S * c.Hkv * c.D;
  const mask = maskData(c);
  const inputs: Parameters<typeof checkOp>[1]['inputs'] = {
    q: { shape: [c.B, c.T, c.H, c.D], data: rng.tensor(nq, c.qScale ?? 1) },
    k: { shape: [c.B, c.S, c.Hkv, c.D], data: rng.tensor(nk) },
    v: { shape: [c.B, c.S, c.Hkv, c.D], data: rng.tensor(nk) },
  };
  if (mask) inputs.keyMask = { shape: [c.B, c.S], data: mask, dtype: 'i32', grad: false };
  return inputs;
}

/** checkOp of one case: out and lse against the float64 reference, dq, dk, dv against its backward. */
export async function checkAttentionCase(
  ctx: GpuContext,
  c: AttnCase,
  kernels: AttentionKernels,
  options: { name: string; inputs?: Parameters<typeof checkOp>[1]['inputs']; skipFiniteDifferences?: boolean },
): Promise<void> {
  const qShape = [c.B, c.T, c.H, c.D];
  const kShape = [c.B, c.S, c.Hkv, c.D];
  const scale = 1 / Math.sqrt(c.D);
  await checkOp(ctx, {
    name: options.name,
    inputs: options.inputs ?? caseInputs(c),
    fdSamples: c.fdSamples ?? 16,
    ...(options.skipFiniteDifferences ? { skipFiniteDifferences: true } : {}),
    ref: (x) => attentionForwardRef(x.q!, x.k!, x.v!, x.keyMask ?? null, c, scale, c.window ?? 0),
    gpu: (ctx, x) => {
      const out = ctx.empty(qShape);
      const lse = ctx.empty([c.B, c.H, c.T]);
      kernels.forward(ctx, out, lse, x.q!, x.k!, x.v!, x.keyMask ?? null, scale);
      return { out, lse };
    },
    gradOutputs: ['out'],
    refBackward: (x, d) => {
      const { dq, dk, dv } = attentionBackwardRef(d.out!, x.q!, x.k!, x.v!, x.keyMask ?? null, c, scale, c.window ?? 0);
      return { q: dq, k: dk, v: dv };
    },
    gpuBackward: (ctx, x, o, d) => {
      const dq = ctx.zeros(qShape);
      const dk = ctx.zeros(kShape);
      const dv = ctx.zeros(kShape);
      kernels.backward(ctx, dq, dk, dv, d.out!, x.q!, x.k!, x.v!, o.out!, o.lse!, x.keyMask ?? null, scale);
      return { q: dq, k: dk, v: dv };
    },
  });
}

/** B1 T1 S1 H1 D2: out = v, lse = the score, dv += dOut, dq = dk = 0. */
export async function checkSingleKey(ctx: GpuContext, kernels: AttentionKernels): Promise<void> {
  const shape = [1, 1, 1, 2];
  const q = ctx.upload(shape, Float32Array.from([0.5, -1.5]));
  const k = ctx.upload(shape, Float32Array.from([2, 0.25]));
  const v = ctx.upload(shape, Float32Array.from([-3, 7]));
  const out = ctx.empty(shape);
  const lse = ctx.empty([1, 1, 1]);
  kernels.forward(ctx, out, lse, q, k, v, null, Math.SQRT1_2);
  expect(Array.from(await ctx.readF32(out))).toEqual([-3, 7]);
  expectClose('lse', await ctx.readF32(lse), [Math.SQRT1_2 * (0.5 * 2 - 1.5 * 0.25)], { atol: 1e-6, rtol: 1e-6 });
  const dOut = ctx.upload(shape, Float32Array.from([0.75, -2]));
  const [dq, dk, dv] = [ctx.zeros(shape), ctx.zeros(shape), ctx.zeros(shape)];
  kernels.backward(ctx, dq, dk, dv, dOut, q, k, v, out, lse, null, Math.SQRT1_2);
  expectClose('dq', await ctx.readF32(dq), [0, 0], { atol: 1e-6, rtol: 0 });
  expectClose('dk', await ctx.readF32(dk), [0, 0], { atol: 1e-6, rtol: 0 });
  expect(Array.from(await ctx.readF32(dv))).toEqual([0.75, -2]);
  for (const t of [q, k, v, out, lse, dOut, dq, dk, dv]) t.release();
}

/**
 * B1 T6 H2 Hkv1 at head dim D, queries 0 and 1 seeing only padding: their out is exactly 0, their lse
 * EMPTY_ROW_LSE and their dq untouched; two backward calls into non-zero gradients add twice the gradient.
 */
export async function checkEmptyRows(ctx: GpuContext, kernels: AttentionKernels, D: number): Promise<void> {
  const rng = new Rng(4242);
  const s: AttentionShape = { B: 1, T: 6, S: 6, H: 2, Hkv: 1, D };
  const qShape = [1, 6, 2, D];
  const kShape = [1, 6, 1, D];
  const nq = 12 * D;
  const nk = 6 * D;
  const qd = rng.tensor(nq);
  const kd = rng.tensor(nk);
  const vd = rng.tensor(nk);
  const dOd = rng.tensor(nq);
  const maskd = [0, 0, 1, 1, 0, 1]; // queries 0 and 1 see only padding
  const q = ctx.upload(qShape, Float32Array.from(qd));
  const k = ctx.upload(kShape, Float32Array.from(kd));
  const v = ctx.upload(kShape, Float32Array.from(vd));
  const dOut = ctx.upload(qShape, Float32Array.from(dOd));
  const keyMask = ctx.upload([6], Int32Array.from(maskd)); // flat [B·S], as a training batch uploads it
  const out = ctx.empty(qShape);
  const lse = ctx.empty([1, 2, 6]);
  kernels.forward(ctx, out, lse, q, k, v, keyMask, 0.25);
  const gotOut = await ctx.readF32(out);
  const gotLse = await ctx.readF32(lse);
  for (const h of [0, 1]) {
    for (const t of [0, 1]) {
      expect(gotLse[h * 6 + t]).toBe(Math.fround(EMPTY_ROW_LSE));
      for (let d = 0; d < D; d++) expect(gotOut[(t * 2 + h) * D + d]).toBe(0);
    }
    expect(Number.isFinite(gotLse[h * 6 + 2]!) && gotLse[h * 6 + 2]! > -1e3).toBe(true);
  }

  // Two backward calls into non-zero gradients add twice the gradient.
  const init = { q: rng.tensor(nq), k: rng.tensor(nk), v: rng.tensor(nk) };
  const dq = ctx.upload(qShape, Float32Array.from(init.q));
  const dk = ctx.upload(kShape, Float32Array.from(init.k));
  const dv = ctx.upload(kShape, Float32Array.from(init.v));
  for (let i = 0; i < 2; i++) kernels.backward(ctx, dq, dk, dv, dOut, q, k, v, out, lse, keyMask, 0.25);
  const ref = attentionBackwardRef(dOd, qd, kd, vd, maskd, s, 0.25);
  const tol = { atol: 1e-4, rtol: 1e-3 };
  const gotDq = await ctx.readF32(dq);
  expectClose('dq', gotDq, init.q.map((x, i) => x + 2 * ref.dq[i]!), tol);
  expectClose('dk', await ctx.readF32(dk), init.k.map((x, i) => x + 2 * ref.dk[i]!), tol);
  expectClose('dv', await ctx.readF32(dv), init.v.map((x, i) => x + 2 * ref.dv[i]!), tol);
  for (let i = 0; i < 4 * D; i++) expect(gotDq[i]).toBe(Math.fround(init.q[i]!)); // queries 0 and 1: untouched
  for (const t of [q, k, v, dOut, keyMask, out, lse, dq, dk, dv]) t.release();
}

/** Mismatched shapes are refused; `name` is the forward's name in its messages. */
export function expectShapeErrors(ctx: GpuContext, kernels: AttentionKernels, name: string): void {
  const q = ctx.empty([2, 5, 4, 8]);
  const k = ctx.empty([2, 5, 2, 8]);
  const out = ctx.empty([2, 5, 4, 8]);
  const lse = ctx.empty([2, 4, 5]);
  const fwd = (o: Parameters<AttentionKernels['forward']>): (() => void) => () => kernels.forward(...o);
  expect(fwd([ctx, out, lse, q, k, k, null, 0.1])).not.toThrow();
  expect(fwd([ctx, out, lse, q, ctx.empty([2, 5, 3, 8]), ctx.empty([2, 5, 3, 8]), null, 0.1])).toThrow(/multiple of Hkv/);
  expect(fwd([ctx, out, lse, q, ctx.empty([2, 5, 2, 4]), ctx.empty([2, 5, 2, 4]), null, 0.1])).toThrow(new RegExp(`${name}.*k \\[2, 5, 2, 4\\]`));
  expect(fwd([ctx, out, lse, q, ctx.empty([2, 4, 2, 8]), ctx.empty([2, 4, 2, 8]), null, 0.1])).toThrow(/S 4 < T 5/);
  expect(fwd([ctx, out, ctx.empty([2, 5, 4]), q, k, k, null, 0.1])).toThrow(/lse/);
  expect(fwd([ctx, out, lse, q, k, k, ctx.empty([2, 4], 'i32'), 0.1])).toThrow(/keyMask/);
  expect(fwd([ctx, out, lse, q, k, k, ctx.empty([2, 5]), 0.1])).toThrow(/keyMask/);
  expect(fwd([ctx, q, lse, q, k, k, null, 0.1])).toThrow(/different/);
  expect(() => kernels.backward(ctx, q, k, ctx.empty([2, 5, 2, 8]), out, q, k, k, out, lse, null, 0.1)).toThrow(/different/);
  expect(() => kernels.backward(ctx, out, k, k, out, q, k, k, out, lse, null, 0.1)).toThrow(/different/);
}
