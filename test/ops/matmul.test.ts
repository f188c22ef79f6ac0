import { describe, expect, it } from 'vitest';
import { matmulKernelFor, matmulNN, matmulNT, matmulTN, matmulVariant, type MatmulVariant } from '../../src/engine/ops/matmul';
import { matmulNNRef, matmulNTRef, matmulTNRef } from '../../src/engine/ref/matmul';
import { numel } from '../../src/engine/tensor';
import { checkOp, type Tolerance } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

// An f32 dot product of length K drifts from the float64 one by ~eps·√K times the size of its terms (here up
// to ~400 with the generator's outliers), so the absolute tolerance grows with √K: 1e-4 up to K = 4,
// 8e-4 at K = 257, where a correct kernel's worst error is ~2e-4.
const tol = (K: number): Tolerance => ({ atol: 1e-4 * Math.max(1, Math.sqrt(K / 4)), rtol: 1e-4 });

const VARIANTS: MatmulVariant[] = ['tiled', 'register'];

/**
 * Sizes: odd ones that fill no tile, and ones aligned to 4 that the register variant runs on its vec4 kernel
 * (36×68×64 in every layout; 132×72×21 and 45×28×24 in TN with K not a multiple of 4, directly and as the
 * backward of NT), several tiles and partial blocks.
 */
const SIZES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [33, 65, 17],
  [130, 70, 257],
  [36, 68, 64],
  [132, 72, 21],
  [45, 28, 24],
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

describe('matmul', () => {
  it('picks the register variant on SwiftShader and the vec4 kernel only for aligned shapes', async () => {
    const ctx = await testContext();
    const swiftshader = ctx.adapter.architecture === 'swiftshader' || /swiftshader/i.test(ctx.adapter.description);
    expect(matmulVariant(ctx)).toBe(swiftshader ? 'register' : 'tiled');
    // The sizes below reach both register kernels in every layout.
    const nt = { transA: false, transB: true };
    const nn = { transA: false, transB: false };
    const tn = { transA: true, transB: false };
    expect(matmulKernelFor('register', { ...nt, M: 33, N: 65, K: 17 })).toBe('matmul_register_scalar');
    expect(matmulKernelFor('register', { ...nt, M: 33, N: 65, K: 64 })).toBe('matmul_register');
    expect(matmulKernelFor('register', { ...nn, M: 36, N: 68, K: 64 })).toBe('matmul_register');
    expect(matmulKernelFor('register', { ...nn, M: 36, N: 70, K: 64 })).toBe('matmul_register_scalar');
    expect(matmulKernelFor('register', { ...tn, M: 68, N: 64, K: 37 })).toBe('matmul_register');
    expect(matmulKernelFor('register', { ...tn, M: 65, N: 64, K: 36 })).toBe('matmul_register_scalar');
    expect(matmulKernelFor('tiled', { ...nt, M: 36, N: 68, K: 64 })).toBe('matmul_tiled');
  });

  for (const variant of VARIANTS) {
    describe(variant, () => {
      for (const [M, N, K] of SIZES) {
        it(`NT ${M}×${N}×${K}, with NN and TN as its backward`, async () => {
          const ctx = await testContext();
          const rng = new Rng(M * 10007 + N * 101 + K);
          const c = ntCase([M, K], [N, K]);
          await checkOp(ctx, {
            name: `matmulNT ${variant} ${M}×${N}×${K}`,
            inputs: { a: { shape: [M, K], data: rng.tensor(M * K) }, b: { shape: [N, K], data: rng.tensor(N * K) } },
            ref: (x) => ({ out: c.forward(x.a!, x.b!) }),
            gpu: (ctx, x) => {
              const out = ctx.empty([M, N]);
              matmulNT(ctx, out, x.a!, x.b!, { variant });
              return { out };
            },
            refBackward: (x, d) => {
              const { da, db } = c.backward(x.a!, x.b!, d.out!);
              return { a: da, b: db };
            },
            gpuBackward: (ctx, x, _out, d) => {
              const a = ctx.zeros([M, K]);
              const b = ctx.zeros([N, K]);
              matmulNN(ctx, a, d.out!, x.b!, { accumulate: true, variant });
              matmulTN(ctx, b, d.out!, x.a!, { accumulate: true, variant });
              return { a, b };
            },
            forwardTol: tol(K),
            backwardTol: tol(Math.max(M, N)),
          });
        });

        it(`NN ${M}×${N}×${K}, accumulating with alpha`, async () => {
          const ctx = await testContext();
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
        const rng = new Rng(777);
        const aShape = [2, 3, 19, 36];
        const bShape = [2, 3, 23, 36];
        const c = ntCase(aShape, bShape);
        await checkOp(ctx, {
          name: `matmulNT ${variant} batched b`,
          inputs: {
            a: { shape: aShape, data: rng.tensor(numel(aShape)) },
            // dB of a batched product is no op of this API (matmulTN reduces over the batch).
            b: { shape: bShape, data: rng.tensor(numel(bShape)), grad: false },
          },
          ref: (x) => ({ out: c.forward(x.a!, x.b!) }),
          gpu: (ctx, x) => {
            const out = ctx.empty(c.outShape);
            matmulNT(ctx, out, x.a!, x.b!, { variant });
            return { out };
          },
          refBackward: (x, d) => ({ a: c.backward(x.a!, x.b!, d.out!).da }),
          gpuBackward: (ctx, x, _out, d) => {
            const a = ctx.zeros(aShape);
            matmulNN(ctx, a, d.out!, x.b!, { accumulate: true, variant });
            return { a };
          },
          forwardTol: tol(36),
          backwardTol: tol(23),
        });
      });

      it('splits grids larger than maxComputeWorkgroupsPerDimension', async () => {
        const ctx = await testContext();
        const rng = new Rng(4242);
        // One workgroup per dispatch: every x, y and z offset is exercised.
        const opts = { variant, maxWorkgroupsPerDimension: 1 } as const;
        const aShape = [3, 70, 20];
        const bShape = [3, 75, 20];
        const c = ntCase(aShape, bShape);
        await checkOp(ctx, {
          name: `matmulNT ${variant} split grid`,
          inputs: {
            a: { shape: aShape, data: rng.tensor(numel(aShape)) },
            b: { shape: bShape, data: rng.tensor(numel(bShape)), grad: false },
          },
          ref: (x) => ({ out: c.forward(x.a!, x.b!) }),
          gpu: (ctx, x) => {
            const out = ctx.empty(c.outShape);
            matmulNT(ctx, out, x.a!, x.b!, opts);
            return { out };
          },
          refBackward: (x, d) => ({ a: c.backward(x.a!, x.b!, d.out!).da }),
          gpuBackward: (ctx, x, _out, d) => {
            const a = ctx.zeros(aShape);
            matmulNN(ctx, a, d.out!, x.b!, { ...opts, accumulate: true });
            return { a };
          },
          forwardTol: tol(20),
          backwardTol: tol(75),
        });
        await checkOp(ctx, {
          name: `matmulTN ${variant} split grid`,
          inputs: { a: { shape: [30, 70], data: rng.tensor(30 * 70) }, b: { shape: [30, 68], data: rng.tensor(30 * 68) } },
          ref: (x) => ({ out: matmulTNRef(x.a!, x.b!, 70, 68, 30) }),
          gpu: (ctx, x) => {
            const out = ctx.empty([70, 68]);
            matmulTN(ctx, out, x.a!, x.b!, opts);
            return { out };
          },
          forwardTol: tol(30),
        });
      });
    });
  }

  it('rejects mismatched shapes, naming the op and the shapes', async () => {
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
    await ctx.sync();
  });
});
