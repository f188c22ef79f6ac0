import { describe, expect, it } from 'vitest';
import { adamwStep, type AdamWHyper } from '../../src/engine/ops/adamw';
import { adamwStepRef, type AdamWState } from '../../src/engine/ref/adamw';
import { checkOp } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

const TOL = { atol: 1e-6, rtol: 1e-5 };

interface MultiStepCase {
  n: number;
  steps: number;
  firstStep: number;
  hyper: Omit<AdamWHyper, 'step'>;
  gradScale?: number;
  /** Start from zero moments (a fresh optimizer) instead of random ones (a resumed one). */
  fresh?: boolean;
}

async function checkSteps(c: MultiStepCase, seed: number): Promise<void> {
  const ctx = await testContext();
  const rng = new Rng(seed);
  const grads = Array.from({ length: c.steps }, () => rng.tensor(c.n, 0.5));
  const param = rng.tensor(c.n);
  const m = c.fresh ? new Float64Array(c.n) : rng.tensor(c.n, 0.05);
  // v ≥ 0, as Adam keeps it; a fresh optimizer starts at zero.
  const v = c.fresh ? new Float64Array(c.n) : rng.tensor(c.n, 0.01).map((x) => Math.fround(x * x));
  const hyperAt = (k: number): AdamWHyper => ({ ...c.hyper, step: c.firstStep + k });
  await checkOp(ctx, {
    name: `adamw n=${c.n} steps ${c.firstStep}..${c.firstStep + c.steps - 1} wd=${c.hyper.weightDecay} scale=${c.gradScale ?? 'none'}`,
    inputs: { param: { shape: [c.n], data: param }, m: { shape: [c.n], data: m }, v: { shape: [c.n], data: v } },
    forwardTol: TOL,
    ref: (x) => {
      let s: AdamWState = { param: x.param!, m: x.m!, v: x.v! };
      for (let k = 0; k < c.steps; k++) s = adamwStepRef(s, grads[k]!, hyperAt(k), c.gradScale ?? 1);
      return { param: s.param, m: s.m, v: s.v };
    },
    gpu: (ctx, x) => {
      const p = ctx.empty([c.n]);
      const mt = ctx.empty([c.n]);
      const vt = ctx.empty([c.n]);
      ctx.copy(x.param!, p);
      ctx.copy(x.m!, mt);
      ctx.copy(x.v!, vt);
      const scale = c.gradScale === undefined ? undefined : ctx.upload([1], Float32Array.of(c.gradScale));
      for (let k = 0; k < c.steps; k++) {
        const g = ctx.upload([c.n], Float32Array.from(grads[k]!));
        adamwStep(ctx, p, g, mt, vt, hyperAt(k), scale);
        g.release();
      }
      scale?.release();
      return { param: p, m: mt, v: vt };
    },
  });
}

const GPT2 = { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

describe('adamw', () => {
  it('one scalar step by hand from PyTorch\'s formula, then a second one', async () => {
    const ctx = await testContext();
    const h = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
    // Step 1: param 1, grad 0.5, fresh moments.
    let p = 1.0;
    p = p * (1 - h.lr * h.weightDecay); // decoupled decay: 0.99999
    let m = 0.9 * 0 + 0.1 * 0.5; // 0.05
    let v = 0.999 * 0 + 0.001 * 0.5 * 0.5; // 0.00025
    let mHat = m / (1 - 0.9 ** 1); // 0.5: the bias correction undoes the 0.1
    let vHat = v / (1 - 0.999 ** 1); // 0.25
    p = p - (h.lr * mHat) / (Math.sqrt(vHat) + h.eps); // 0.99999 − 0.001·0.5/(0.5 + 1e−8) ≈ 0.99899
    const p1 = p;
    // At step 1 m̂/sqrt(v̂) = g/|g|: a nonzero gradient moves the parameter by ≈ lr against its sign
    // (exactly lr·0.5/(0.5 + eps) = lr·(1 − 2e−8) here), after the decay by lr·wd.
    expect(p1).toBeCloseTo(1 - 1e-5 - 1e-3 * (1 - 2e-8), 14);
    expect(p1).toBeCloseTo(0.99899, 10);
    // Step 2: grad −0.25.
    p = p * (1 - h.lr * h.weightDecay);
    m = 0.9 * m + 0.1 * -0.25; // 0.045 − 0.025 = 0.02
    v = 0.999 * v + 0.001 * 0.0625; // 0.00024975 + 0.0000625 = 0.00031225
    mHat = m / (1 - 0.9 ** 2); // 0.02 / 0.19
    vHat = v / (1 - 0.999 ** 2); // 0.00031225 / 0.001999
    p = p - (h.lr * mHat) / (Math.sqrt(vHat) + h.eps);
    expect(m).toBeCloseTo(0.02, 15);
    expect(v).toBeCloseTo(0.00031225, 15);
    expect(p).toBeCloseTo(0.99899 * 0.99999 - (1e-3 * (0.02 / 0.19)) / Math.sqrt(0.00031225 / 0.001999), 10); // ≈ 0.99871367

    // The float64 reference agrees with the hand computation.
    const s1 = adamwStepRef({ param: Float64Array.of(1), m: Float64Array.of(0), v: Float64Array.of(0) }, Float64Array.of(0.5), { ...h, step: 1 });
    const s2 = adamwStepRef(s1, Float64Array.of(-0.25), { ...h, step: 2 });
    expect(s1.param[0]).toBeCloseTo(p1, 15);
    expect(s2.param[0]).toBeCloseTo(p, 15);
    expect(s2.m[0]).toBeCloseTo(m, 15);
    expect(s2.v[0]).toBeCloseTo(v, 15);

    // And so does the GPU.
    const pt = ctx.upload([1], Float32Array.of(1));
    const mt = ctx.zeros([1]);
    const vt = ctx.zeros([1]);
    const g1 = ctx.upload([1], Float32Array.of(0.5));
    const g2 = ctx.upload([1], Float32Array.of(-0.25));
    adamwStep(ctx, pt, g1, mt, vt, { ...h, step: 1 });
    expect((await ctx.readF32(pt))[0]).toBeCloseTo(p1, 6);
    adamwStep(ctx, pt, g2, mt, vt, { ...h, step: 2 });
    expect((await ctx.readF32(pt))[0]).toBeCloseTo(p, 6);
    expect((await ctx.readF32(mt))[0]).toBeCloseTo(m, 8);
    expect((await ctx.readF32(vt))[0]).toBeCloseTo(v, 10);
    for (const t of [pt, mt, vt, g1, g2]) t.release();
  });

  it('several steps from fresh moments, with weight decay, odd size', () =>
    checkSteps({ n: 1001, steps: 4, firstStep: 1, hyper: { ...GPT2, weightDecay: 0.1 }, fresh: true }, 1));

  it('several steps resumed at step 100, without weight decay', () =>
    checkSteps({ n: 77, steps: 3, firstStep: 100, hyper: { ...GPT2, weightDecay: 0 } }, 2));

  it('several steps with gradScale (a clipping coefficient on the GPU), multi-workgroup size', () =>
    checkSteps({ n: 70001, steps: 3, firstStep: 5, hyper: { ...GPT2, weightDecay: 0.01 }, gradScale: 0.37 }, 3));

  it('one element, large eps and beta2 = 0.95', () =>
    checkSteps({ n: 1, steps: 5, firstStep: 1, hyper: { lr: 0.1, beta1: 0.8, beta2: 0.95, eps: 1e-3, weightDecay: 0.5 } }, 4));

  it('bad arguments throw plain Errors naming the op', async () => {
    const ctx = await testContext();
    const a = ctx.zeros([3]);
    const b = ctx.zeros([3]);
    const c = ctx.zeros([3]);
    const d = ctx.zeros([3]);
    const e = ctx.zeros([4]);
    const h: AdamWHyper = { ...GPT2, weightDecay: 0, step: 1 };
    expect(() => adamwStep(ctx, a, b, c, e, h)).toThrow(/adamwStep: element counts differ/);
    expect(() => adamwStep(ctx, a, b, a, d, h)).toThrow(/param and m are the same buffer/);
    expect(() => adamwStep(ctx, a, b, c, d, { ...h, step: 0 })).toThrow(/step 0 must be an integer ≥ 1/);
    expect(() => adamwStep(ctx, a, b, c, d, { ...h, beta2: 1 })).toThrow(/beta2 1 must be in \[0, 1\)/);
    expect(() => adamwStep(ctx, a, b, c, d, h, e)).toThrow(/gradScale must be an f32 tensor of 1 element/);
    for (const t of [a, b, c, d, e]) t.release();
  });
});
