import { describe, expect, it } from 'vitest';
import { loraBackward, loraForward } from '../../src/engine/ops/lora';
import type { MatmulVariant } from '../../src/engine/ops/matmul';
import { loraBackwardRef, loraForwardRef } from '../../src/engine/ref/lora';
import { numel } from '../../src/engine/tensor';
import { checkOp, type Tolerance } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

// f32 sums drift from float64 by ~eps·√(length) times the size of their terms (see matmul.test.ts); the
// LoRA path chains two products, so the longest reduction along the chain sets the tolerance.
const tol = (len: number): Tolerance => ({ atol: 1e-4 * Math.max(1, Math.sqrt(len / 4)), rtol: 1e-4 });

const VARIANTS: MatmulVariant[] = ['tiled', 'register'];

/** x shape (leading dims are the M rows), N outputs, rank r, scale. */
const CASES: { xShape: number[]; N: number; r: number; scale: number }[] = [
  { xShape: [1, 1], N: 1, r: 1, scale: 2 },
  { xShape: [7, 13], N: 9, r: 3, scale: 16 / 3 },
  { xShape: [2, 5, 24], N: 20, r: 4, scale: 0.5 },
  { xShape: [3, 33, 70], N: 65, r: 8, scale: 2 },
  { xShape: [2, 36, 64], N: 96, r: 8, scale: 16 / Math.sqrt(8) },
];

describe('lora', () => {
  for (const variant of VARIANTS) {
    for (const { xShape, N, r, scale } of CASES) {
      const K = xShape[xShape.length - 1]!;
      const M = numel(xShape.slice(0, -1));
      const lead = xShape.slice(0, -1);
      it(`${variant}: x [${xShape.join('×')}], N ${N}, r ${r}`, async () => {
        const ctx = await testContext();
        const rng = new Rng(M * 31 + N * 7 + K * 1001 + r);
        await checkOp(ctx, {
          name: `lora ${variant} x [${xShape}] N ${N} r ${r}`,
          inputs: {
            x: { shape: xShape, data: rng.tensor(M * K) },
            w: { shape: [N, K], data: rng.tensor(N * K), grad: false },
            a: { shape: [r, K], data: rng.tensor(r * K, 0.5) },
            b: { shape: [N, r], data: rng.tensor(N * r, 0.5) },
          },
          ref: (x) => loraForwardRef(x.x!, x.w!, x.a!, x.b!, M, N, K, r, scale),
          gpu: (ctx, x) => {
            const out = ctx.empty([...lead, N]);
            const xa = ctx.empty([...lead, r]);
            loraForward(ctx, out, xa, x.x!, x.w!, x.a!, x.b!, scale, { variant });
            return { out, xa };
          },
          compare: ['out', 'xa'],
          // xa is saved for the backward, not an output that receives a gradient.
          gradOutputs: ['out'],
          refBackward: (x, d) => {
            const g = loraBackwardRef(d.out!, x.x!, x.w!, x.a!, x.b!, M, N, K, r, scale);
            return { x: g.dx, a: g.dA, b: g.dB };
          },
          gpuBackward: (ctx, x, out, d) => {
            const dx = ctx.zeros(xShape);
            const dA = ctx.zeros([r, K]);
            const dB = ctx.zeros([N, r]);
            loraBackward(ctx, dx, dA, dB, d.out!, x.x!, out.xa!, x.w!, x.a!, x.b!, scale, { variant });
            return { x: dx, a: dA, b: dB };
          },
          forwardTol: tol(K),
          backwardTol: tol(Math.max(M, N, K)),
        });
      });
    }
  }

  it('accumulates into the gradients it is given', async () => {
    const ctx = await testContext();
    const rng = new Rng(99);
    const [M, N, K, r, scale] = [10, 12, 16, 4, 0.75];
    const d = { dOut: rng.tensor(M * N), x: rng.tensor(M * K), w: rng.tensor(N * K), a: rng.tensor(r * K), b: rng.tensor(N * r) };
    const init = { dx: rng.tensor(M * K), dA: rng.tensor(r * K), dB: rng.tensor(N * r) };
    const up = (shape: number[], v: Float64Array) => ctx.upload(shape, Float32Array.from(v));
    const x = up([M, K], d.x);
    const a = up([r, K], d.a);
    const b = up([N, r], d.b);
    const w = up([N, K], d.w);
    const xa = ctx.empty([M, r]);
    const out = ctx.empty([M, N]);
    loraForward(ctx, out, xa, x, w, a, b, scale);
    const dx = up([M, K], init.dx);
    const dA = up([r, K], init.dA);
    const dB = up([N, r], init.dB);
    loraBackward(ctx, dx, dA, dB, up([M, N], d.dOut), x, xa, w, a, b, scale);
    const want = loraBackwardRef(d.dOut, d.x, d.w, d.a, d.b, M, N, K, r, scale);
    const got = { dx: await ctx.readF32(dx), dA: await ctx.readF32(dA), dB: await ctx.readF32(dB) };
    for (const k of ['dx', 'dA', 'dB'] as const) {
      const w2 = want[k].map((v, i) => v + init[k][i]!);
      for (let i = 0; i < w2.length; i++) expect(Math.abs(got[k][i]! - w2[i]!)).toBeLessThanOrEqual(1e-3 + 1e-4 * Math.abs(w2[i]!));
    }
  });

  it('rejects mismatched shapes, naming the op and the shapes', async () => {
    const ctx = await testContext();
    const t = (shape: number[]) => ctx.empty(shape);
    const [x, w, a, b] = [t([2, 3, 8]), t([5, 8]), t([4, 8]), t([5, 4])];
    expect(() => loraForward(ctx, t([2, 3, 5]), t([6, 4]), x, w, a, t([5, 3]), 1)).toThrow(/loraForward: .*b \[5×3\]/);
    expect(() => loraForward(ctx, t([2, 3, 6]), t([6, 4]), x, w, a, b, 1)).toThrow(/loraForward: out \[2×3×6\]/);
    expect(() => loraForward(ctx, t([6, 5]), t([6, 3]), x, w, a, b, 1)).toThrow(/loraForward: xa \[6×3\]/);
    expect(() => loraBackward(ctx, t([6, 8]), t([8, 4]), t([5, 4]), t([6, 5]), x, t([6, 4]), w, a, b, 1)).toThrow(
      /loraBackward: dA \[8×4\] should be \[4×8\]/,
    );
    await ctx.sync();
  });
});
