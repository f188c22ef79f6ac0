import { describe, expect, it } from 'vitest';
import { copyBlock, sliceColumnsBackward, sliceColumnsForward, writeRows, type BlockLayout } from '../../src/engine/ops/copy-block';
import { copyBlockRef } from '../../src/engine/ref/copy-block';
import { checkOp } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

// Exact copies: the only arithmetic is the add of `accumulate`, one f32 rounding.
const exact = { atol: 0, rtol: 1e-7 };

describe('copyBlock', () => {
  const cases: [string, number, number, BlockLayout][] = [
    ['columns 5..12 of [9×17] into a [9×7] block', 9 * 17, 9 * 7, { rows: 9, cols: 7, srcStride: 17, srcOffset: 5, dstStride: 7, dstOffset: 0 }],
    ['a [3×11] block added into columns 2..13 of [3×29]', 3 * 11, 3 * 29, { rows: 3, cols: 11, srcStride: 11, srcOffset: 0, dstStride: 29, dstOffset: 2, accumulate: true }],
    ['rows 4..9 of a cache (one contiguous run)', 5 * 6, 13 * 6, { rows: 1, cols: 30, srcStride: 30, srcOffset: 0, dstStride: 30, dstOffset: 24 }],
    ['a 2-D grid: [700×130] columns 3..130', 700 * 130, 700 * 127, { rows: 700, cols: 127, srcStride: 130, srcOffset: 3, dstStride: 127, dstOffset: 0 }],
  ];
  for (const [name, nSrc, nDst, b] of cases) {
    it(name, async () => {
      const ctx = await testContext();
      const rng = new Rng(nSrc + nDst);
      await checkOp(ctx, {
        name,
        inputs: { src: { shape: [nSrc], data: rng.tensor(nSrc) }, dst: { shape: [nDst], data: rng.tensor(nDst) } },
        ref: (x) => ({ out: copyBlockRef(x.dst!, x.src!, b) }),
        gpu: (ctx, x) => {
          const out = ctx.empty([nDst]);
          ctx.copy(x.dst!, out);
          copyBlock(ctx, out, x.src!, b);
          return { out };
        },
        forwardTol: exact,
      });
    });
  }

  it('slices columns and adds them back, and writes rows at an offset', async () => {
    const ctx = await testContext();
    const rng = new Rng(3);
    const x = Float32Array.from(rng.tensor(6 * 10));
    const xt = ctx.upload([6, 10], x);
    const mid = ctx.empty([6, 4]);
    sliceColumnsForward(ctx, mid, xt, 3);
    const back = ctx.zeros([6, 10]);
    sliceColumnsBackward(ctx, back, mid, 3);
    sliceColumnsBackward(ctx, back, mid, 3);
    const cache = ctx.zeros([8, 2, 5]);
    writeRows(ctx, cache, xt.view([6, 2, 5]), 2);
    const [m, bk, c] = await Promise.all([ctx.readF32(mid), ctx.readF32(back), ctx.readF32(cache)]);
    for (let r = 0; r < 6; r++) {
      for (let j = 0; j < 10; j++) {
        const inside = j >= 3 && j < 7;
        if (inside) expect(m[r * 4 + j - 3]).toBe(x[r * 10 + j]);
        expect(bk[r * 10 + j]).toBe(inside ? 2 * x[r * 10 + j]! : 0);
      }
    }
    expect(Array.from(c.subarray(0, 20))).toEqual(new Array(20).fill(0));
    expect(Array.from(c.subarray(20, 80))).toEqual(Array.from(x));
  });

  it('rejects blocks past the ends, overlapping rows and aliasing', async () => {
    const ctx = await testContext();
    const a = ctx.zeros([4, 5]);
    const b = ctx.zeros([4, 3]);
    expect(() => copyBlock(ctx, b, a, { rows: 4, cols: 3, srcStride: 5, srcOffset: 3, dstStride: 3, dstOffset: 0 })).toThrow(/past their ends/);
    expect(() => copyBlock(ctx, b, a, { rows: 2, cols: 4, srcStride: 5, srcOffset: 0, dstStride: 3, dstOffset: 0 })).toThrow(/overlap/);
    expect(() => copyBlock(ctx, a, a, { rows: 1, cols: 1, srcStride: 1, srcOffset: 0, dstStride: 1, dstOffset: 1 })).toThrow(/different tensors/);
    expect(() => sliceColumnsForward(ctx, ctx.zeros([4, 3]), a, 3)).toThrow(/not columns 3..6/);
    expect(() => writeRows(ctx, a, ctx.zeros([2, 4]), 0)).toThrow(/differ in width/);
    await ctx.sync();
  });
});
