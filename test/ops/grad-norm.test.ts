import { describe, expect, it } from 'vitest';
import { adamwStep } from '../../src/engine/ops/adamw';
import { clipCoefficient, gradNorm } from '../../src/engine/ops/grad-norm';
import { adamwStepRef } from '../../src/engine/ref/adamw';
import { clipCoefficientRef, gradNormRef } from '../../src/engine/ref/grad-norm';
import { checkOp, expectClose } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

async function checkNorm(name: string, sizes: number[], seed: number): Promise<void> {
  const ctx = await testContext();
  const rng = new Rng(seed);
  const inputs = Object.fromEntries(sizes.map((n, i) => [`g${i}`, { shape: [n], data: rng.tensor(n, 10 ** rng.uniform(-3, 1)) }]));
  await checkOp(ctx, {
    name,
    inputs,
    forwardTol: { atol: 0, rtol: 1e-5 },
    ref: (x) => ({ norm: Float64Array.of(gradNormRef(sizes.map((_, i) => x[`g${i}`]!))) }),
    gpu: (ctx, x) => {
      const norm = ctx.empty([1]);
      gradNorm(ctx, norm, sizes.map((_, i) => x[`g${i}`]!));
      return { norm };
    },
  });
}

describe('grad-norm', () => {
  it('several tensors of odd sizes, one of 300000 elements', () => checkNorm('gradNorm', [7, 1, 300_000, 1023, 999, 65_537], 1));

  it('one tensor large enough for the per-tensor workgroup cap (1.1M elements)', () =>
    checkNorm('gradNorm 1.1M', [1_100_003], 2));

  it('many small tensors (more dispatches than one uniform chunk holds)', () =>
    checkNorm('gradNorm ×300', Array.from({ length: 300 }, (_, i) => 1 + ((i * 37) % 200)), 3));

  it('NaN in one gradient gives a NaN norm and a NaN coefficient; Inf gives Inf and 0', async () => {
    const ctx = await testContext();
    const rng = new Rng(4);
    const a = ctx.upload([1000], Float32Array.from(rng.tensor(1000)));
    for (const [bad, isNorm, isCoef] of [
      [NaN, Number.isNaN, Number.isNaN],
      [Infinity, (v: number) => v === Infinity, (v: number) => v === 0],
      [-Infinity, (v: number) => v === Infinity, (v: number) => v === 0],
    ] as const) {
      const data = Float32Array.from(rng.tensor(5001));
      data[4321] = bad;
      const b = ctx.upload([5001], data);
      const norm = ctx.empty([1]);
      const coef = ctx.empty([1]);
      gradNorm(ctx, norm, [a, b]);
      clipCoefficient(ctx, coef, norm, 1.0);
      const n = (await ctx.readF32(norm))[0]!;
      const c = (await ctx.readF32(coef))[0]!;
      expect(isNorm(n), `norm with ${bad}: ${n}`).toBe(true);
      expect(isCoef(c), `coefficient with ${bad}: ${c}`).toBe(true);
      for (const t of [b, norm, coef]) t.release();
    }
    a.release();
  });

  it('no gradients: norm 0', async () => {
    const ctx = await testContext();
    const norm = ctx.upload([1], Float32Array.of(123));
    gradNorm(ctx, norm, []);
    expect((await ctx.readF32(norm))[0]).toBe(0);
    norm.release();
  });

  for (const [normValue, maxNorm, what] of [
    [12.5, 1.0, 'norm above maxNorm: maxNorm/(norm + 1e-6)'],
    [1.0, 1.0, 'norm equal to maxNorm: just below 1'],
    [3e-7, 1e-6, 'tiny norm, where the 1e-6 matters'],
  ] as const) {
    it(`clipCoefficient, ${what}`, async () => {
      const ctx = await testContext();
      await checkOp(ctx, {
        name: `clipCoefficient norm=${normValue} maxNorm=${maxNorm}`,
        inputs: { norm: { shape: [1], data: Float64Array.of(Math.fround(normValue)) } },
        forwardTol: { atol: 0, rtol: 1e-6 },
        ref: (x) => ({ clipScale: Float64Array.of(clipCoefficientRef(x.norm![0]!, maxNorm)) }),
        gpu: (ctx, x) => {
          const clipScale = ctx.empty([1]);
          clipCoefficient(ctx, clipScale, x.norm!, maxNorm);
          return { clipScale };
        },
      });
    });
  }

  it('clipCoefficient is exactly 1 below maxNorm and when clipping is off (maxNorm 0, negative, Infinity)', async () => {
    const ctx = await testContext();
    for (const [normValue, maxNorm] of [
      [0.5, 1.0],
      [0, 1.0],
      [12.5, 0],
      [12.5, -1],
      [12.5, Infinity],
    ] as const) {
      expect(clipCoefficientRef(normValue, maxNorm)).toBe(1);
      const norm = ctx.upload([1], Float32Array.of(normValue));
      const coef = ctx.upload([1], Float32Array.of(-5));
      clipCoefficient(ctx, coef, norm, maxNorm);
      expect((await ctx.readF32(coef))[0], `norm ${normValue}, maxNorm ${maxNorm}`).toBe(1);
      norm.release();
      coef.release();
    }
    expect(() => clipCoefficient(ctx, ctx.empty([2]), ctx.empty([1]), 1)).toThrow(/clipCoefficient: clipScale must be an f32 tensor of 1 element/);
    expect(() => clipCoefficient(ctx, ctx.empty([1]), ctx.empty([1]), NaN)).toThrow(/maxNorm is NaN/);
  });

  it('clipping end to end: gradNorm → clipCoefficient → adamwStep(gradScale), no readback in between', async () => {
    const ctx = await testContext();
    const rng = new Rng(6);
    const sizes = [333, 4097];
    const grads = sizes.map((n) => rng.tensor(n, 0.3));
    const params = sizes.map((n) => rng.tensor(n));
    const maxNorm = 1.0;
    const h = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 1 };
    // Reference: torch.nn.utils.clip_grad_norm_(params, 1.0) then AdamW.step().
    const total = gradNormRef(grads);
    expect(total).toBeGreaterThan(maxNorm); // so that the clipping is active
    const coef = clipCoefficientRef(total, maxNorm);
    const want = sizes.map((n, i) =>
      adamwStepRef({ param: params[i]!, m: new Float64Array(n), v: new Float64Array(n) }, grads[i]!, h, coef),
    );

    const g = grads.map((d, i) => ctx.upload([sizes[i]!], Float32Array.from(d)));
    const p = params.map((d, i) => ctx.upload([sizes[i]!], Float32Array.from(d)));
    const m = sizes.map((n) => ctx.zeros([n]));
    const v = sizes.map((n) => ctx.zeros([n]));
    const norm = ctx.empty([1]);
    const clipScale = ctx.empty([1]);
    gradNorm(ctx, norm, g);
    clipCoefficient(ctx, clipScale, norm, maxNorm);
    sizes.forEach((_, i) => adamwStep(ctx, p[i]!, g[i]!, m[i]!, v[i]!, h, clipScale));
    const readbacks = ctx.stats.readbacks;
    for (let i = 0; i < sizes.length; i++) {
      expectClose(`param ${i}`, await ctx.readF32(p[i]!), want[i]!.param, { atol: 1e-6, rtol: 1e-5 });
      expectClose(`m ${i}`, await ctx.readF32(m[i]!), want[i]!.m, { atol: 1e-7, rtol: 1e-5 });
    }
    expect(ctx.stats.readbacks - readbacks).toBe(2 * sizes.length);
    expectClose('norm', await ctx.readF32(norm), [total], { atol: 0, rtol: 1e-5 });
    for (const t of [...g, ...p, ...m, ...v, norm, clipScale]) t.release();
  });
});
