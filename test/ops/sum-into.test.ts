import { describe, expect, it } from 'vitest';
import { segmentSumInto, sumInto } from '../../src/engine/ops/sum-into';
import { segmentSumIntoRef, sumIntoRef } from '../../src/engine/ref/sum-into';
import { checkOp } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

// Sums of up to 70001 f32 values in f32: the error grows with n (a tree's is about log n · eps · Σ|x|).
const tol = { atol: 1e-4, rtol: 1e-5 };

describe('sumInto', () => {
  for (const n of [1, 255, 257, 70_001]) {
    it(`acc[slot] += Σ x over ${n} values (the other slots untouched)`, async () => {
      const ctx = await testContext();
      const rng = new Rng(n);
      const slot = 2;
      await checkOp(ctx, {
        name: `sumInto n=${n}`,
        inputs: { acc: { shape: [5], data: rng.tensor(5) }, x: { shape: [n], data: rng.tensor(n, 3) } },
        forwardTol: tol,
        ref: (x) => ({ acc: sumIntoRef(x.acc!, slot, x.x!) }),
        gpu: (ctx, x) => {
          const acc = ctx.empty([5]);
          ctx.copy(x.acc!, acc);
          sumInto(ctx, acc, slot, x.x!);
          return { acc };
        },
      });
    });
  }

  it('NaN and Inf reach the sum; bad slots and aliasing are refused', async () => {
    const ctx = await testContext();
    const acc = ctx.zeros([2]);
    sumInto(ctx, acc, 0, ctx.upload([3], Float32Array.of(1, NaN, 2)));
    sumInto(ctx, acc, 1, ctx.upload([3], Float32Array.of(1, Infinity, 2)));
    const got = await ctx.readF32(acc);
    expect(Number.isNaN(got[0])).toBe(true);
    expect(got[1]).toBe(Infinity);
    expect(() => sumInto(ctx, acc, 2, ctx.zeros([3]))).toThrow(/slot 2 is outside acc \[2\]/);
    expect(() => sumInto(ctx, acc, 0, acc)).toThrow(/different tensors/);
  });
});

describe('segmentSumInto', () => {
  for (const [n, segments] of [[7, 1], [300, 3], [70_001, 5]] as const) {
    it(`acc[base + k] += Σ of segment k, ${segments} segments over ${n} values (ids −1 and ≥ segments count nowhere)`, async () => {
      const ctx = await testContext();
      const rng = new Rng(n * 10 + segments);
      const base = 1;
      const seg = Float64Array.from({ length: n }, () => rng.int(-1, segments + 2));
      await checkOp(ctx, {
        name: `segmentSumInto n=${n}`,
        inputs: {
          acc: { shape: [segments + 3], data: rng.tensor(segments + 3) },
          x: { shape: [n], data: rng.tensor(n, 3) },
          seg: { shape: [n], data: seg, dtype: 'i32', grad: false },
        },
        forwardTol: tol,
        ref: (x) => ({ acc: segmentSumIntoRef(x.acc!, base, x.x!, x.seg!, segments) }),
        gpu: (ctx, x) => {
          const acc = ctx.empty([segments + 3]);
          ctx.copy(x.acc!, acc);
          segmentSumInto(ctx, acc, base, x.x!, x.seg!, segments);
          return { acc };
        },
      });
    });
  }

  it('refuses slots outside acc and a seg of another size', async () => {
    const ctx = await testContext();
    const acc = ctx.zeros([4]);
    const x = ctx.zeros([6]);
    expect(() => segmentSumInto(ctx, acc, 2, x, ctx.zeros([6], 'i32'), 3)).toThrow(/slots 2..4 are outside acc \[4\]/);
    expect(() => segmentSumInto(ctx, acc, 0, x, ctx.zeros([5], 'i32'), 3)).toThrow(/seg \[5\] and x \[6\] differ in size/);
  });
});
