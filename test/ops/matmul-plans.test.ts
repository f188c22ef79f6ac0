// Matmul plans and the GPU kernels they select (docs/kernels.md, "Matmul plans"): the staged kernel (workgroup
// memory, TM×TN a thread, vec4 loads with an aligned-interior fast path, conflict-free staging, double
// buffering) in each of its shapes, layouts, split-K, the fused epilogue, batches and packed weights, against the
// float64 reference on SwiftShader; the f16 path and the subgroup-matrix kernel where the adapter has their
// features, and a loud refusal where it has not; the plan's rules (device size, tuned choices, shape keys).
// Sizes are chosen so that one case reaches both the fast path (interior tiles, aligned) and the edges.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { f32ToBf16Bits, bf16BitsToF32 } from '../../src/engine/half';
import {
  deviceSize,
  matmulChoices,
  matmulNN,
  matmulNT,
  matmulPlan,
  matmulShapeKey,
  matmulTN,
  planLabel,
  setMatmulChoices,
  stagedShapeValid,
  subgroupMatrixConfig,
  type MatmulConfig,
  type MatmulOptions,
} from '../../src/engine/ops/matmul';
import { isSwiftShader } from '../../src/engine/adapter-info';
import { dequantizeWeight, quantizeWeight } from '../../src/engine/quantize';
import { matmulNNRef, matmulNTRef, matmulTNRef } from '../../src/engine/ref/matmul';
import { numel, type Tensor } from '../../src/engine/tensor';
import { uploadQuantized } from '../../src/engine/weight';
import { checkOp, type Tolerance } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

const tol = (K: number): Tolerance => ({ atol: 1e-4 * Math.max(1, Math.sqrt(K / 4)), rtol: 1e-4 });

const BIG: MatmulConfig = { variant: 'staged', shape: { WX: 16, WY: 16, TM: 8, TN: 8, BK: 8, STAGES: 2 } };
const MID_SINGLE: MatmulConfig = { variant: 'staged', shape: { WX: 16, WY: 16, TM: 4, TN: 4, BK: 16, STAGES: 1 } };
const SMALL: MatmulConfig = { variant: 'staged', shape: { WX: 8, WY: 8, TM: 4, TN: 4, BK: 16, STAGES: 2 } };

/** out = alpha·a·b (+ c) in one layout, on the GPU with `opts`, against float64. */
async function checkLayout(ctx: GpuContext, name: string, layout: 'NT' | 'NN' | 'TN', M: number, N: number, K: number, opts: MatmulOptions): Promise<void> {
  const rng = new Rng(M * 131 + N * 17 + K * 7 + layout.length);
  const alpha = opts.alpha ?? 1;
  const aShape = layout === 'TN' ? [K, M] : [M, K];
  const bShape = layout === 'NT' ? [N, K] : [K, N];
  await checkOp(ctx, {
    name,
    inputs: {
      a: { shape: aShape, data: rng.tensor(M * K) },
      b: { shape: bShape, data: rng.tensor(N * K) },
      c: { shape: [M, N], data: rng.tensor(M * N) },
    },
    ref: (x) => {
      const p = layout === 'NT' ? matmulNTRef(x.a!, x.b!, 1, M, N, K) : layout === 'NN' ? matmulNNRef(x.a!, x.b!, 1, M, N, K) : matmulTNRef(x.a!, x.b!, M, N, K);
      return { out: p.map((v, i) => (opts.accumulate ? x.c![i]! : 0) + alpha * v) };
    },
    gpu: (ctx, x) => {
      const out = ctx.empty([M, N]);
      // Garbage in out must not leak into a non-accumulating product.
      ctx.copy(x.c!, out);
      const f = layout === 'NT' ? matmulNT : layout === 'NN' ? matmulNN : matmulTN;
      f(ctx, out, x.a!, x.b!, opts);
      return { out };
    },
    forwardTol: tol(K),
  });
}

describe('matmul plans', () => {
  it('the staged kernel, 128×128 tiles of 8×8 a thread, double-buffered: NT with interior and edge tiles, NN, TN', async () => {
    const ctx = await testContext();
    // 2×2 tiles of 128: the first interior (vec4 fast path), the others past the edge; K = 40 is 5 slices of 8.
    await checkLayout(ctx, 'staged 128 NT 136×130×40', 'NT', 136, 130, 40, { config: BIG });
    await checkLayout(ctx, 'staged 128 NN 136×130×40 accumulating, alpha 0.5', 'NN', 136, 130, 40, { config: BIG, accumulate: true, alpha: 0.5 });
    await checkLayout(ctx, 'staged 128 TN 132×136×44', 'TN', 132, 136, 44, { config: BIG, alpha: -1.5 });
  });

  it('the staged kernel, 64×64 single-stage and 32×32: unaligned K and N (scalar loads), odd sizes', async () => {
    const ctx = await testContext();
    await checkLayout(ctx, 'staged 64 single-stage NT 70×66×37', 'NT', 70, 66, 37, { config: MID_SINGLE });
    await checkLayout(ctx, 'staged 32 NN 45×27×29', 'NN', 45, 27, 29, { config: SMALL, accumulate: true });
    await checkLayout(ctx, 'staged 32 TN 36×20×45', 'TN', 36, 20, 45, { config: SMALL });
  });

  it('the staged kernel with split-K, a batch and the fused epilogue (LoRA product and bias)', async () => {
    const ctx = await testContext();
    await checkLayout(ctx, 'staged split-K 5 NT 37×6×1100', 'NT', 37, 6, 1100, { config: { ...SMALL, splitK: 5 }, accumulate: true, alpha: 0.25 });
    // A batched b: grid z, each product its own b.
    const rng = new Rng(777);
    const [B, M, N, K] = [3, 19, 23, 36];
    await checkOp(ctx, {
      name: 'staged batched NT [3, 19, 36]·[3, 23, 36]ᵀ',
      inputs: { a: { shape: [B, M, K], data: rng.tensor(B * M * K) }, b: { shape: [B, N, K], data: rng.tensor(B * N * K) } },
      ref: (x) => ({ out: matmulNTRef(x.a!, x.b!, B, M, N, K, true) }),
      gpu: (ctx, x) => {
        const out = ctx.empty([B, M, N]);
        matmulNT(ctx, out, x.a!, x.b!, { config: SMALL });
        return { out };
      },
      forwardTol: tol(K),
    });
    // y = x·Wᵀ + s·xa·Bᵀ + bias and dx = dy·W + s·t·A, fused into the staged kernel's dispatch.
    const [fM, fN, fK, r] = [45, 68, 64, 4];
    await checkOp(ctx, {
      name: 'staged fused NT + NT + bias, NN + NN',
      inputs: {
        x: { shape: [fM, fK], data: rng.tensor(fM * fK) },
        w: { shape: [fN, fK], data: rng.tensor(fN * fK) },
        xa: { shape: [fM, r], data: rng.tensor(fM * r) },
        lb: { shape: [fN, r], data: rng.tensor(fN * r) },
        bias: { shape: [fN], data: rng.tensor(fN) },
        dy: { shape: [fM, fN], data: rng.tensor(fM * fN) },
        t: { shape: [fM, r], data: rng.tensor(fM * r) },
        la: { shape: [r, fK], data: rng.tensor(r * fK) },
      },
      ref: (x) => {
        const y = matmulNTRef(x.x!, x.w!, 1, fM, fN, fK);
        const y2 = matmulNTRef(x.xa!, x.lb!, 1, fM, fN, r);
        const d = matmulNNRef(x.dy!, x.w!, 1, fM, fK, fN);
        const d2 = matmulNNRef(x.t!, x.la!, 1, fM, fK, r);
        return { y: y.map((v, i) => v + 0.5 * y2[i]! + x.bias![i % fN]!), dx: d.map((v, i) => v + 2 * d2[i]!) };
      },
      gpu: (ctx, x) => {
        const y = ctx.empty([fM, fN]);
        const dx = ctx.empty([fM, fK]);
        matmulNT(ctx, y, x.x!, x.w!, { config: SMALL, addProduct: { a: x.xa!, b: x.lb!, layout: 'NT', alpha: 0.5 }, bias: x.bias! });
        matmulNN(ctx, dx, x.dy!, x.w!, { config: SMALL, addProduct: { a: x.t!, b: x.la!, layout: 'NN', alpha: 2 } });
        return { y, dx };
      },
      forwardTol: tol(fK),
    });
  });

  it('the staged kernel reads packed weights (vec4 by wQuad where aligned, one at a time elsewhere) with their f32 bits', async () => {
    const ctx = await testContext();
    const rng = new Rng(4243);
    const same = async (what: string, a: Tensor, b: Tensor) => {
      const x = await ctx.readF32(a);
      const y = await ctx.readF32(b);
      let diff = 0;
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) diff++;
      expect(diff, `${what}: elements that differ from the f32 weight's result`).toBe(0);
    };
    // 32×36×68: aligned in both layouts (K % 4 = 0 forward, N % 4 = 0 input gradient), the first 32×32 tile
    // inside the matrix (wQuad loads), the others and the last k slice at the edge (wAt).
    for (const [M, N, K] of [[32, 36, 68]] as const) {
      const x = ctx.upload([M, K], Float32Array.from(rng.tensor(M * K)));
      const dy = ctx.upload([M, N], Float32Array.from(rng.tensor(M * N)));
      const values = Float32Array.from(rng.tensor(N * K, 0.05));
      const bits = Uint16Array.from(values, (v) => f32ToBf16Bits(v));
      const bf16 = ctx.upload([N, K], bits, 'bf16');
      const bf16Wide = ctx.upload([N, K], Float32Array.from(bits, (b) => bf16BitsToF32(b)));
      const q = quantizeWeight(values, 'nf4', true);
      const nf4 = uploadQuantized(ctx, [N, K], q, 'test weight');
      const nf4Wide = ctx.upload([N, K], dequantizeWeight(q, values.length));
      for (const [fmt, w, wide] of [['bf16', bf16, bf16Wide], ['nf4', nf4, nf4Wide]] as const) {
        const fwd = (b: typeof w) => {
          const out = ctx.empty([M, N]);
          matmulNT(ctx, out, x, b, { config: SMALL });
          return out;
        };
        const bwd = (b: typeof w) => {
          const out = ctx.empty([M, K]);
          matmulNN(ctx, out, dy, b, { config: SMALL });
          return out;
        };
        await same(`staged ${fmt} ${M}×${N}×${K} y = x·Wᵀ`, fwd(w), fwd(wide));
        await same(`staged ${fmt} ${M}×${N}×${K} dx = dy·W`, bwd(w), bwd(wide));
      }
    }
  });

  it('the f16 path runs where the adapter has shader-f16 and refuses loudly elsewhere', async () => {
    const ctx = await testContext();
    const half: MatmulConfig = { ...SMALL, half: true };
    if (!ctx.hasF16) {
      expect(() => matmulNT(ctx, ctx.empty([8, 8]), ctx.empty([8, 8]), ctx.empty([8, 8]), { config: half })).toThrow(/shader-f16/);
      return;
    }
    // f16 staging and f16 sums over each slice of 16: a few f16 ulps of the terms' size.
    await checkLayout(ctx, 'staged f16 NT 70×66×64', 'NT', 70, 66, 64, { config: half });
  });

  it('the subgroup-matrix kernel runs where the adapter exposes it and refuses loudly elsewhere', async () => {
    const ctx = await testContext();
    const cfg = subgroupMatrixConfig(ctx, false);
    if (!cfg) {
      expect(() => matmulNT(ctx, ctx.empty([8, 8]), ctx.empty([8, 8]), ctx.empty([8, 8]), { config: { variant: 'subgroup-matrix' } })).toThrow(/chromium-experimental-subgroup-matrix/);
      return;
    }
    const sg: MatmulConfig = { variant: 'subgroup-matrix' };
    await checkLayout(ctx, 'subgroup-matrix NT 70×66×37', 'NT', 70, 66, 37, { config: sg });
    await checkLayout(ctx, 'subgroup-matrix NN 45×27×64 accumulating', 'NN', 45, 27, 64, { config: sg, accumulate: true });
    await checkLayout(ctx, 'subgroup-matrix TN 36×20×45', 'TN', 36, 20, 45, { config: sg });
  });

  it('plans: device size, shape keys, whole staged shapes, tuned choices installed per context', async () => {
    const ctx = await testContext();
    const nt = { transA: false, transB: true };
    // SwiftShader's size is fixed (pinned results must not depend on the core count); the default plan there is
    // what it was: the quad kernel (register without subgroups).
    if (isSwiftShader(ctx)) {
      expect(deviceSize(ctx)).toBe(8);
      expect(matmulPlan(ctx, { ...nt, M: 256, N: 576, K: 576 }).variant).toBe(ctx.hasSubgroups ? 'subgroup' : 'register');
    } else {
      expect(matmulPlan(ctx, { ...nt, M: 256, N: 576, K: 576 }).variant).toBe('staged');
    }
    expect(matmulShapeKey({ ...nt, M: 256, N: 576, K: 576 })).toBe('NT 256x576x576 f32');
    expect(matmulShapeKey({ transA: true, transB: false, M: 16, N: 8, K: 4, batch: 2, format: 'nf4' })).toBe('TN 16x8x4 b2 nf4');
    expect(stagedShapeValid(BIG.shape!)).toBe(true);
    expect(stagedShapeValid({ ...BIG.shape!, TM: 6 })).toBe(false);
    expect(() => matmulPlan(ctx, { ...nt, M: 8, N: 8, K: 8 }, { config: { variant: 'staged', shape: { WX: 32, WY: 32, TM: 4, TN: 4, BK: 8, STAGES: 2 } } })).toThrow(/not whole/);
    const big = matmulPlan(ctx, { ...nt, M: 2048, N: 2048, K: 2048 }, { config: BIG });
    expect([big.tileM, big.tileN, big.source]).toEqual([128, 128, 'forced']);
    expect(planLabel(big)).toBe('staged 128×128 8×8/thread BK8 double-buffered');
    // A tuned choice is what an unforced product of that shape runs; another shape keeps the rule.
    const shape = { ...nt, M: 40, N: 24, K: 36 };
    const before = matmulPlan(ctx, shape);
    expect(before.source).toBe('rule');
    setMatmulChoices(ctx, new Map([[matmulShapeKey(shape), SMALL]]));
    expect(matmulChoices(ctx).get(matmulShapeKey(shape))).toEqual(SMALL);
    const tuned = matmulPlan(ctx, shape);
    expect([tuned.variant, tuned.source]).toEqual(['staged', 'tuned']);
    expect(matmulPlan(ctx, { ...shape, M: 41 }).source).toBe('rule');
    // ... and a forced variant still wins.
    expect(matmulPlan(ctx, shape, { variant: 'register' }).variant).toBe('register');
    // The tuned product gives the staged kernel's result.
    const rng = new Rng(5);
    const a = ctx.upload([40, 36], Float32Array.from(rng.tensor(40 * 36)));
    const b = ctx.upload([24, 36], Float32Array.from(rng.tensor(24 * 36)));
    const viaChoice = ctx.empty([40, 24]);
    const forced = ctx.empty([40, 24]);
    matmulNT(ctx, viaChoice, a, b);
    matmulNT(ctx, forced, a, b, { config: SMALL });
    expect(Array.from(await ctx.readF32(viaChoice))).toEqual(Array.from(await ctx.readF32(forced)));
    expect(numel([40, 24])).toBe(960);
  });
});
