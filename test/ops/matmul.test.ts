import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { f16BitsToF32, f32ToF16Bits } from '../../src/engine/half';
import {
  MATMUL_VARIANTS,
  matmulNN,
  matmulNT,
  matmulPlan,
  matmulTN,
  matmulVariant,
  type MatmulOptions,
  type MatmulVariant,
} from '../../src/engine/ops/matmul';
import { matmulNNRef, matmulNTRef, matmulTNRef } from '../../src/engine/ref/matmul';
import { numel } from '../../src/engine/tensor';
import { checkOp, type Arrays, type Tensors, type Tolerance } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

// An f32 dot product of length K drifts from the float64 one by ~eps·√K times the size of its terms (here up
// to ~400 with the generator's outliers), so the absolute tolerance grows with √K: 1e-4 up to K = 4,
// 8e-4 at K = 257, where a correct kernel's worst error is ~2e-4.
const tol = (K: number): Tolerance => ({ atol: 1e-4 * Math.max(1, Math.sqrt(K / 4)), rtol: 1e-4 });

/**
 * Whether this adapter can run the variant. The 'subgroup' kernel needs the subgroups feature (SwiftShader has
 * it); where it is missing the test checks that asking for it fails loudly instead of running something else.
 */
async function runs(ctx: GpuContext, variant: MatmulVariant): Promise<boolean> {
  if (variant !== 'subgroup' || ctx.hasSubgroups) return true;
  const t = ctx.empty([4, 4]);
  expect(() => matmulNT(ctx, t, ctx.empty([4, 4]), ctx.empty([4, 4]), { variant })).toThrow(/subgroups feature/);
  return false;
}

/**
 * Sizes: odd ones that fill no tile or k block (K mod 8 from 1 to 7 reaches every masked tail), ones aligned
 * to 4, several tiles with partial edge blocks, and 260×520×40 whose many tiles make the quad kernel take its
 * 2×2-quad workgroups and the tiled kernel its 64×64 tiles.
 */
const SIZES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [33, 65, 17],
  [130, 70, 257],
  [36, 68, 64],
  [132, 72, 21],
  [45, 28, 27],
  [260, 520, 40],
];

/** a [...lead, M, K] · b [(...lead,) N, K]ᵀ in float64, with the backward of that product. */
function ntCase(aShape: number[], bShape: number[]) {
  const K = aShape[aShape.length - 1]!;
  const M = aShape[aShape.length - 2]!;
  const N = bShape[bShape.length - 2]!;
  const batch = numel(aShape.slice(0, -2));
  const bBatched = bShape.length > 2;
  return {
    M,
    N,
    K,
    batch,
    bBatched,
    outShape: [...aShape.slice(0, -1), N],
    forward: (a: Float64Array, b: Float64Array) => matmulNTRef(a, b, batch, M, N, K, bBatched),
    /** dA = dOut·B;  dB = dOutᵀ·A summed over the batch when b is shared, per batch when not. */
    backward: (a: Float64Array, b: Float64Array, d: Float64Array) => {
      const da = matmulNNRef(d, b, batch, M, K, N, bBatched);
      let db: Float64Array;
      if (!bBatched) {
        db = matmulTNRef(d, a, N, K, batch * M);
      } else {
        db = new Float64Array(batch * N * K);
        for (let z = 0; z < batch; z++) {
          db.set(matmulTNRef(d.subarray(z * M * N, (z + 1) * M * N), a.subarray(z * M * K, (z + 1) * M * K), N, K, M), z * N * K);
        }
      }
      return { da, db };
    },
  };
}


/**
 * matmulNT of a [...lead, M, K] by b [(...lead,) N, K], and its backward with `options` accumulating: dA through
 * matmulNN, and dB through matmulTN when b is shared (dB of a batched b is no op of this API: matmulTN reduces over
 * the batch).
 */
async function checkNT(ctx: GpuContext, name: string, rng: Rng, aShape: number[], bShape: number[], options: MatmulOptions): Promise<void> {
  const c = ntCase(aShape, bShape);
  const withDb = !c.bBatched;
  await checkOp(ctx, {
    name,
    inputs: {
      a: { shape: aShape, data: rng.tensor(numel(aShape)) },
      b: { shape: bShape, data: rng.tensor(numel(bShape)), grad: withDb },
    },
    ref: (x) => ({ out: c.forward(x.a!, x.b!) }),
    gpu: (ctx, x) => {
      const out = ctx.empty(c.outShape);
      matmulNT(ctx, out, x.a!, x.b!, options);
      return { out };
    },
    refBackward: (x, d): Arrays => {
      const { da, db } = c.backward(x.a!, x.b!, d.out!);
      return withDb ? { a: da, b: db } : { a: da };
    },
    gpuBackward: (ctx, x, _out, d): Tensors => {
      const a = ctx.zeros(aShape);
      matmulNN(ctx, a, d.out!, x.b!, { ...options, accumulate: true });
      if (!withDb) return { a };
      const b = ctx.zeros(bShape);
      matmulTN(ctx, b, d.out!, x.a!, { ...options, accumulate: true });
      return { a, b };
    },
    forwardTol: tol(c.K),
    backwardTol: tol(withDb ? Math.max(c.M, c.N) : c.N),
    // The float64 backward is checked against finite differences once per shape (first variant); the other
    // kernels are compared with that same reference.
    skipFiniteDifferences: options.variant !== undefined && options.variant !== MATMUL_VARIANTS[0],
    // Each sample costs two float64 products; a bilinear reference needs few of them at the large sizes.
    fdSamples: c.M * c.N * c.K > 1e5 ? 4 : 16,
  });
}

describe('matmul', () => {
  it('picks a kernel per adapter and a workgroup shape and split-K per shape', async () => {
    const ctx = await testContext();
    const swiftshader = ctx.adapter.architecture === 'swiftshader' || /swiftshader/i.test(ctx.adapter.description);
    const want: MatmulVariant = swiftshader ? (ctx.hasSubgroups ? 'subgroup' : 'register') : 'staged';
    expect(matmulVariant(ctx)).toBe(want);
    const nt = { transA: false, transB: true };
    // The default plan runs the default variant; a forced one runs what was asked.
    expect(matmulPlan(ctx, { ...nt, M: 256, N: 576, K: 576 }).variant).toBe(want);
    expect(matmulPlan(ctx, { ...nt, M: 256, N: 576, K: 576 }, { variant: 'register' }).kernel).toBe('matmul_register');
    expect(matmulPlan(ctx, { ...nt, M: 256, N: 576, K: 576 }, { variant: 'tiled' }).kernel).toBe('matmul_tiled');
    // Tile shapes: big outputs get the big workgroups, small ones the small.
    expect(matmulPlan(ctx, { ...nt, M: 2048, N: 2048, K: 64 }, { variant: 'tiled' }).tileN).toBe(64);
    expect(matmulPlan(ctx, { ...nt, M: 32, N: 32, K: 64 }, { variant: 'tiled' }).tileN).toBe(32);
    if (ctx.hasSubgroups) {
      expect(matmulPlan(ctx, { ...nt, M: 2048, N: 2048, K: 64 }, { variant: 'subgroup' }).tileN).toBe(64);
      expect(matmulPlan(ctx, { ...nt, M: 32, N: 32, K: 64 }, { variant: 'subgroup' }).tileN).toBe(32);
      // The test sizes reach both quad workgroup shapes on this adapter.
      if (swiftshader) expect(matmulPlan(ctx, { ...nt, M: 260, N: 520, K: 40 }, { variant: 'subgroup' }).tileN).toBe(64);
      // A thin side (LoRA's dA = tᵀ·x at rank 16) keeps the small tiles however many there are.
      expect(matmulPlan(ctx, { transA: true, transB: false, M: 16, N: 8192, K: 256 }, { variant: 'subgroup' }).tileM).toBe(32);
    }
    // Split-K: a thin product with a long K (LoRA's x·Aᵀ at rank 16) is cut into chunks of ≥ 256 k, a
    // multiple of 32; a product with a batch, a short K or enough tiles is not.
    const thin = matmulPlan(ctx, { ...nt, M: 32, N: 16, K: 4864 });
    expect(thin.splitK).toBeGreaterThan(1);
    expect(thin.kChunk % 32).toBe(0);
    expect(thin.kChunk).toBeGreaterThanOrEqual(256);
    expect(thin.splitK).toBe(Math.ceil(4864 / thin.kChunk));
    expect(matmulPlan(ctx, { ...nt, M: 32, N: 16, K: 4864, batch: 2 }).splitK).toBe(1);
    expect(matmulPlan(ctx, { ...nt, M: 32, N: 16, K: 512 }).splitK).toBe(1);
    expect(matmulPlan(ctx, { ...nt, M: 4096, N: 4096, K: 4864 }).splitK).toBe(1);
    expect(matmulPlan(ctx, { ...nt, M: 4096, N: 4096, K: 100 }, { splitK: 3 })).toMatchObject({ splitK: 3, kChunk: 40 });
    expect(() => matmulPlan(ctx, { ...nt, M: 8, N: 8, K: 100, batch: 2 }, { splitK: 2 })).toThrow(/split-K needs a product without a batch/);
  });

  for (const variant of MATMUL_VARIANTS) {
    describe(variant, () => {
      for (const [M, N, K] of SIZES) {
        it(`NT ${M}×${N}×${K}, with NN and TN as its backward`, async () => {
          const ctx = await testContext();
          if (!(await runs(ctx, variant))) return;
          await checkNT(ctx, `matmulNT ${variant} ${M}×${N}×${K}`, new Rng(M * 10007 + N * 101 + K), [M, K], [N, K], { variant });
        });

        it(`NN ${M}×${N}×${K}, accumulating with alpha`, async () => {
          const ctx = await testContext();
          if (!(await runs(ctx, variant))) return;
          const rng = new Rng(M * 7 + N * 1009 + K * 3);
          await checkOp(ctx, {
            name: `matmulNN ${variant} ${M}×${N}×${K}`,
            inputs: {
              a: { shape: [M, K], data: rng.tensor(M * K) },
              b: { shape: [K, N], data: rng.tensor(K * N) },
              c: { shape: [M, N], data: rng.tensor(M * N) },
            },
            ref: (x) => ({ out: matmulNNRef(x.a!, x.b!, 1, M, N, K).map((v, i) => x.c![i]! + 0.5 * v) }),
            gpu: (ctx, x) => {
              const out = ctx.empty([M, N]);
              ctx.copy(x.c!, out);
              matmulNN(ctx, out, x.a!, x.b!, { accumulate: true, alpha: 0.5, variant });
              return { out };
            },
            forwardTol: tol(K),
          });
        });

        it(`TN ${M}×${N}×${K}, with alpha, over leading dims`, async () => {
          const ctx = await testContext();
          if (!(await runs(ctx, variant))) return;
          const rng = new Rng(M * 13 + N * 17 + K * 1013);
          // a [K, M] given as [1, K, M], b [K, N]: every leading dim is reduced.
          await checkOp(ctx, {
            name: `matmulTN ${variant} ${M}×${N}×${K}`,
            inputs: { a: { shape: [1, K, M], data: rng.tensor(K * M) }, b: { shape: [K, N], data: rng.tensor(K * N) } },
            ref: (x) => ({ out: matmulTNRef(x.a!, x.b!, M, N, K).map((v) => -1.5 * v) }),
            gpu: (ctx, x) => {
              const out = ctx.empty([M, N]);
              // Garbage in out must not leak into a non-accumulating product.
              ctx.copy(x.b!, out, Math.min(x.b!.byteLength, out.byteLength));
              matmulTN(ctx, out, x.a!, x.b!, { alpha: -1.5, variant });
              return { out };
            },
            forwardTol: { atol: 1.5 * tol(K).atol, rtol: tol(K).rtol },
          });
        });
      }

      it('NT with a 2-D b shared across batch dims [3, 50, 40]·[29, 40]ᵀ', async () => {
        const ctx = await testContext();
        if (!(await runs(ctx, variant))) return;
        const rng = new Rng(501);
        const aShape = [3, 50, 40];
        const bShape = [29, 40];
        const c = ntCase(aShape, bShape);
        await checkOp(ctx, {
          name: `matmulNT ${variant} shared b`,
          inputs: { a: { shape: aShape, data: rng.tensor(numel(aShape)) }, b: { shape: bShape, data: rng.tensor(numel(bShape)) } },
          ref: (x) => ({ out: c.forward(x.a!, x.b!) }),
          gpu: (ctx, x) => {
            const out = ctx.empty(c.outShape);
            matmulNT(ctx, out, x.a!, x.b!, { variant });
            return { out };
          },
          refBackward: (x, d) => {
            const { da, db } = c.backward(x.a!, x.b!, d.out!);
            return { a: da, b: db };
          },
          gpuBackward: (ctx, x, _out, d) => {
            const a = ctx.zeros(aShape);
            const b = ctx.zeros(bShape);
            matmulNN(ctx, a, d.out!, x.b!, { accumulate: true, variant });
            // dW reduces over all 150 rows: dy [3, 50, 29] and x [3, 50, 40].
            matmulTN(ctx, b, d.out!, x.a!, { accumulate: true, variant });
            return { a, b };
          },
          forwardTol: tol(40),
          backwardTol: tol(150),
        });
      });

      it('NT and NN with batched b [2, 3, 19, 36]·[2, 3, 23, 36]ᵀ, grid z', async () => {
        const ctx = await testContext();
        if (!(await runs(ctx, variant))) return;
        await checkNT(ctx, `matmulNT ${variant} batched b`, new Rng(777), [2, 3, 19, 36], [2, 3, 23, 36], { variant });
      });

      it('split-K: LoRA-like thin products in every layout, forced and chosen, accumulating', async () => {
        const ctx = await testContext();
        if (!(await runs(ctx, variant))) return;
        const rng = new Rng(9001);
        // x [37, 1100] · A [6, 1100]ᵀ (NT), dy [37, 1100] · W [1100, 6] (NN), dyᵀ [1100, 37]ᵀ·t (TN with a long
        // K): 1100 is no multiple of any chunk, so the last chunk is short; 5 forced chunks of 224 k, and the
        // plan's own choice.
        const [M, N, K] = [37, 6, 1100];
        for (const splitK of [5, undefined]) {
          const opts: MatmulOptions = { variant, splitK, accumulate: true, alpha: 0.25 };
          await checkOp(ctx, {
            name: `split-K ${variant} ${splitK ?? 'planned'}`,
            inputs: {
              x: { shape: [M, K], data: rng.tensor(M * K) },
              w: { shape: [N, K], data: rng.tensor(N * K) },
              wt: { shape: [K, N], data: rng.tensor(K * N) },
              xt: { shape: [K, M], data: rng.tensor(K * M) },
              c: { shape: [M, N], data: rng.tensor(M * N) },
            },
            ref: (x) => ({
              nt: matmulNTRef(x.x!, x.w!, 1, M, N, K).map((v, i) => x.c![i]! + 0.25 * v),
              nn: matmulNNRef(x.x!, x.wt!, 1, M, N, K).map((v, i) => x.c![i]! + 0.25 * v),
              tn: matmulTNRef(x.xt!, x.wt!, M, N, K).map((v, i) => x.c![i]! + 0.25 * v),
            }),
            gpu: (ctx, x) => {
              const outs = { nt: ctx.empty([M, N]), nn: ctx.empty([M, N]), tn: ctx.empty([M, N]) };
              for (const o of Object.values(outs)) ctx.copy(x.c!, o);
              matmulNT(ctx, outs.nt, x.x!, x.w!, opts);
              matmulNN(ctx, outs.nn, x.x!, x.wt!, opts);
              matmulTN(ctx, outs.tn, x.xt!, x.wt!, opts);
              return outs;
            },
            forwardTol: tol(K),
          });
        }
        if (variant === matmulVariant(ctx)) {
          expect(matmulPlan(ctx, { transA: false, transB: true, M, N, K }, { variant }).splitK).toBeGreaterThan(1);
        }
      });

      it('splits grids larger than maxComputeWorkgroupsPerDimension', async () => {
        const ctx = await testContext();
        if (!(await runs(ctx, variant))) return;
        const rng = new Rng(4242);
        // One workgroup per dispatch: every x, y and z offset is exercised.
        const opts = { variant, maxWorkgroupsPerDimension: 1 } as const;
        await checkNT(ctx, `matmulNT ${variant} split grid`, rng, [3, 70, 20], [3, 75, 20], opts);
        await checkOp(ctx, {
          name: `matmulTN ${variant} split grid and split-K`,
          inputs: { a: { shape: [300, 70], data: rng.tensor(300 * 70) }, b: { shape: [300, 68], data: rng.tensor(300 * 68) } },
          ref: (x) => ({ out: matmulTNRef(x.a!, x.b!, 70, 68, 300) }),
          gpu: (ctx, x) => {
            const out = ctx.empty([70, 68]);
            matmulTN(ctx, out, x.a!, x.b!, { ...opts, splitK: 3 });
            return { out };
          },
          forwardTol: tol(300),
        });
      });
    });
  }

  it('f16 operands (f32 products and sums) on the tiled kernel where the adapter has shader-f16', async () => {
    const ctx = await testContext();
    const rng = new Rng(1616);
    const [M, N, K] = [45, 70, 131];
    const half = (v: Float64Array) => v.map((x) => f16BitsToF32(f32ToF16Bits(x)));
    const bits = (v: Float64Array) => Uint16Array.from(v, (x) => f32ToF16Bits(x));
    // Values exactly representable in f16, so the float64 reference sees what the GPU reads.
    const a = half(rng.tensor(M * K));
    const b = half(rng.tensor(N * K));
    if (!ctx.hasF16) {
      // SwiftShader has no shader-f16: the f16 path must refuse clearly, never run on f32 by accident.
      const out = ctx.empty([M, N]);
      expect(() => matmulNT(ctx, out, ctx.upload([M, K], bits(a), 'f16'), ctx.upload([N, K], bits(b), 'f16'))).toThrow(/shader-f16/);
      await ctx.sync();
      return;
    }
    await checkOp(ctx, {
      name: 'matmul f16 operands',
      inputs: { a: { shape: [M, K], data: a }, b: { shape: [N, K], data: b } },
      ref: (x) => ({
        nt: matmulNTRef(x.a!, x.b!, 1, M, N, K),
        // x (f32) · W (f16) as a LoRA base layer would read frozen half weights; the same b read as [K, N].
        nn: matmulNNRef(x.a!, x.b!, 1, M, N, K),
        // aᵀ·a with a [M, K] read as [K rows of the reduction, M]: both operands f16 and m-contiguous.
        tn: matmulTNRef(x.a!, x.a!, K, K, M),
      }),
      gpu: (ctx, x) => {
        const a16 = ctx.upload([M, K], bits(a), 'f16');
        const b16 = ctx.upload([N, K], bits(b), 'f16');
        const outs = { nt: ctx.empty([M, N]), nn: ctx.empty([M, N]), tn: ctx.empty([K, K]) };
        matmulNT(ctx, outs.nt, a16, b16);
        matmulNN(ctx, outs.nn, x.a!, b16.view([K, N]));
        matmulTN(ctx, outs.tn, a16, a16);
        return outs;
      },
      forwardTol: tol(K),
    });
  });

  it('rejects mismatched shapes and dtypes, naming the op and the shapes', async () => {
    const ctx = await testContext();
    const t = (shape: number[]) => ctx.empty(shape);
    expect(() => matmulNT(ctx, t([4, 5]), t([4, 3]), t([5, 2]))).toThrow(/matmulNT: .*\[4×3\].*\[5×2\]/);
    expect(() => matmulNT(ctx, t([4, 6]), t([4, 3]), t([5, 3]))).toThrow(/matmulNT: out \[4×6\] should be \[4×5\]/);
    expect(() => matmulNT(ctx, t([2, 4, 5]), t([2, 4, 3]), t([3, 5, 3]))).toThrow(/matmulNT: .*\[2×4×3\].*\[3×5×3\]/);
    expect(() => matmulNN(ctx, t([4, 5]), t([4, 3]), t([5, 3]))).toThrow(/matmulNN: .*\[4×3\].*\[5×3\]/);
    expect(() => matmulTN(ctx, t([3, 5]), t([7, 3]), t([6, 5]))).toThrow(/matmulTN: .*\[7×3\].*\[6×5\]/);
    expect(() => matmulTN(ctx, t([5, 3]), t([7, 3]), t([7, 5]))).toThrow(/matmulTN: out \[5×3\] should be \[3×5\]/);
    const x = t([4, 4]);
    expect(() => matmulNT(ctx, x, x, t([4, 4]))).toThrow(/matmulNT: out .* shares its buffer/);
    expect(() => matmulNT(ctx, ctx.empty([4, 4], 'i32'), t([4, 4]), t([4, 4]))).toThrow(/matmulNT: out \[4×4\] is i32/);
    expect(() => matmulNT(ctx, t([4, 4]), ctx.empty([4, 4], 'u32'), t([4, 4]))).toThrow(/matmulNT: a \[4×4\] is u32/);
    expect(() => matmulNT(ctx, t([4, 4]), t([4, 4]), t([4, 4]), { variant: 'bogus' as MatmulVariant })).toThrow(/unknown variant bogus/);
    expect(() => matmulNT(ctx, t([4, 4]), t([4, 4]), t([4, 4]), { splitK: 0 })).toThrow(/splitK must be a positive integer/);
    await ctx.sync();
  });
});
