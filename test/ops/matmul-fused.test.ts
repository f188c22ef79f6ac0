// The matmul's fused epilogue (matmulNT/matmulNN with opts.addProduct and opts.bias):
//   out = [out +] alpha·(a·b) + alpha2·(a2·b2) + bias
// against a float64 reference, on every kernel (tiled and subgroup fuse it into one dispatch, register runs
// it as separate dispatches), in the four layout pairs a LoRA linear needs (main NT or NN, second NT or NN),
// on sizes that fill no tile and second products of rank 1 to 16 (K2 mod 4 from 0 to 3 reaches every masked
// tail of the quad kernel's second segment), with and without bias and accumulation.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { MATMUL_VARIANTS, matmulNN, matmulNT, matmulTN, type MatmulVariant } from '../../src/engine/ops/matmul';
import { matmulNNRef, matmulNTRef } from '../../src/engine/ref/matmul';
import { checkOp, type Tolerance } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

const tol = (K: number): Tolerance => ({ atol: 1e-4 * Math.max(1, Math.sqrt(K / 4)), rtol: 1e-4 });

type Layout = 'NT' | 'NN';

interface FusedCase {
  M: number;
  N: number;
  K: number;
  K2: number;
  main: Layout;
  second: Layout | null;
  bias: boolean;
  accumulate: boolean;
  alpha: number;
  alpha2: number;
}

const product = (layout: Layout, a: Float64Array, b: Float64Array, M: number, N: number, K: number) =>
  layout === 'NT' ? matmulNTRef(a, b, 1, M, N, K, false) : matmulNNRef(a, b, 1, M, N, K);

const bShape = (layout: Layout, N: number, K: number) => (layout === 'NT' ? [N, K] : [K, N]);

async function checkFused(ctx: GpuContext, variant: MatmulVariant, c: FusedCase): Promise<void> {
  const { M, N, K, K2 } = c;
  const rng = new Rng(M * 7919 + N * 104729 + K * 31 + K2);
  const inputs: Parameters<typeof checkOp>[1]['inputs'] = {
    a: { shape: [M, K], data: rng.tensor(M * K) },
    b: { shape: bShape(c.main, N, K), data: rng.tensor(N * K) },
    c: { shape: [M, N], data: rng.tensor(M * N) },
  };
  if (c.second) {
    inputs.a2 = { shape: [M, K2], data: rng.tensor(M * K2) };
    inputs.b2 = { shape: bShape(c.second, N, K2), data: rng.tensor(N * K2) };
  }
  if (c.bias) inputs.bias = { shape: [N], data: rng.tensor(N) };
  const name = `${variant} ${c.main}${c.second ? ` + ${c.second} (K2 ${K2})` : ''}${c.bias ? ' + bias' : ''} ${M}×${N}×${K}${c.accumulate ? ' accumulating' : ''}`;
  await checkOp(ctx, {
    name,
    inputs,
    ref: (x) => {
      const main = product(c.main, x.a!, x.b!, M, N, K);
      const second = c.second ? product(c.second, x.a2!, x.b2!, M, N, K2) : null;
      const out = new Float64Array(M * N);
      for (let i = 0; i < M * N; i++) {
        out[i] = (c.accumulate ? x.c![i]! : 0) + c.alpha * main[i]! + (second ? c.alpha2 * second[i]! : 0) + (c.bias ? x.bias![i % N]! : 0);
      }
      return { out };
    },
    gpu: (ctx, x) => {
      const out = ctx.empty([M, N]);
      // Without accumulate, what out held must not leak in.
      ctx.copy(x.c!, out);
      const opts = {
        variant,
        alpha: c.alpha,
        accumulate: c.accumulate,
        addProduct: c.second ? { a: x.a2!, b: x.b2!, layout: c.second, alpha: c.alpha2 } : undefined,
        bias: c.bias ? x.bias! : undefined,
      };
      const before = ctx.stats.dispatches;
      if (c.main === 'NT') matmulNT(ctx, out, x.a!, x.b!, opts);
      else matmulNN(ctx, out, x.a!, x.b!, opts);
      // One dispatch where the kernel fuses the epilogue; the register kernel adds one per extra term.
      const want = variant === 'register' ? 1 + (c.second ? 1 : 0) + (c.bias ? 1 : 0) : 1;
      expect(ctx.stats.dispatches - before).toBe(want);
      return { out };
    },
    forwardTol: tol(K + K2),
  });
}

const SIZES: [number, number, number, number][] = [
  [1, 1, 1, 1],
  [7, 13, 5, 3],
  [33, 65, 17, 2],
  [130, 70, 257, 16],
  [45, 28, 27, 5],
  [260, 520, 40, 8],
];

const PAIRS: [Layout, Layout][] = [
  ['NT', 'NT'], // the Hugging Face linear's forward: y = x·Wᵀ + s·xa·Bᵀ
  ['NN', 'NN'], // its dX: dx = dy·W + s·t·A
  ['NN', 'NT'], // GPT-2 Conv1D's forward: y = x·W + s·xa·Bᵀ
  ['NT', 'NN'], // its dX: dx = dy·Wᵀ + s·t·A
];

describe('matmul fused epilogue', () => {
  for (const variant of MATMUL_VARIANTS) {
    describe(variant, () => {
      SIZES.forEach(([M, N, K, K2], i) => {
        const [main, second] = PAIRS[i % PAIRS.length]!;
        it(`${main} + ${second} ${M}×${N}×${K}, K2 ${K2}, with bias`, async () => {
          const ctx = await testContext();
          if (variant === 'subgroup' && !ctx.hasSubgroups) return; // matmul.test.ts checks it fails loudly
          await checkFused(ctx, variant, { M, N, K, K2, main, second, bias: true, accumulate: i % 2 === 1, alpha: 1, alpha2: 1.75 });
        });
      });

      it('every layout pair with alpha ≠ 1, accumulating, without bias; bias alone; alpha = 0', async () => {
        const ctx = await testContext();
        if (variant === 'subgroup' && !ctx.hasSubgroups) return;
        for (const [main, second] of PAIRS) {
          await checkFused(ctx, variant, { M: 37, N: 41, K: 19, K2: 7, main, second, bias: false, accumulate: true, alpha: -0.5, alpha2: 2 });
        }
        await checkFused(ctx, variant, { M: 66, N: 35, K: 12, K2: 0, main: 'NT', second: null, bias: true, accumulate: false, alpha: 0.25, alpha2: 1 });
        await checkFused(ctx, variant, { M: 66, N: 35, K: 12, K2: 0, main: 'NN', second: null, bias: true, accumulate: true, alpha: 1, alpha2: 1 });
      });
    });
  }

  it('alpha = 0 runs the second product and the bias on their own, unscaled by alpha', async () => {
    const ctx = await testContext();
    const rng = new Rng(3);
    const [M, N, K, K2] = [9, 10, 11, 3];
    const a = ctx.upload([M, K], Float32Array.from(rng.tensor(M * K)));
    const b = ctx.upload([N, K], Float32Array.from(rng.tensor(N * K)));
    const a2d = rng.tensor(M * K2);
    const b2d = rng.tensor(N * K2);
    const biasd = rng.tensor(N);
    const out = ctx.empty([M, N]);
    matmulNT(ctx, out, a, b, {
      alpha: 0,
      addProduct: { a: ctx.upload([M, K2], Float32Array.from(a2d)), b: ctx.upload([N, K2], Float32Array.from(b2d)), layout: 'NT', alpha: 3 },
      bias: ctx.upload([N], Float32Array.from(biasd)),
    });
    const got = await ctx.readF32(out);
    const want = matmulNTRef(a2d, b2d, 1, M, N, K2, false).map((v, i) => 3 * v + biasd[i % N]!);
    for (let i = 0; i < M * N; i++) expect(got[i]).toBeCloseTo(want[i]!, 4);
  });

  it('rejects an epilogue that does not fit, naming the op and the shapes', async () => {
    const ctx = await testContext();
    const out = ctx.empty([4, 6]);
    const a = ctx.empty([4, 5]);
    const b = ctx.empty([6, 5]);
    expect(() => matmulNT(ctx, out, a, b, { bias: ctx.empty([5]) })).toThrow(/matmulNT: bias \[5\].*\[6\]/);
    expect(() => matmulNT(ctx, out, a, b, { addProduct: { a: ctx.empty([3, 2]), b: ctx.empty([6, 2]), layout: 'NT' } })).toThrow(/matmulNT: addProduct a \[3×2\]/);
    expect(() => matmulNT(ctx, out, a, b, { addProduct: { a: ctx.empty([4, 2]), b: ctx.empty([6, 2]), layout: 'NN' } })).toThrow(/\[2, 6\] \(layout NN\)/);
    expect(() => matmulNT(ctx, out, a, b, { addProduct: { a: out, b: ctx.empty([6, 6]), layout: 'NT' } })).toThrow(/in place/);
    expect(() => matmulTN(ctx, ctx.empty([5, 5]), a, a, { bias: ctx.empty([5]) })).toThrow(/matmulTN: addProduct and bias are for matmulNT and matmulNN/);
  });
});
