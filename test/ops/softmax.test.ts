import { describe, expect, it } from 'vitest';
import { softmaxBackward, softmaxForward } from '../../src/engine/ops/softmax';
import { softmaxBackwardRef, softmaxForwardRef } from '../../src/engine/ref/softmax';
import { checkOp, expectClose } from '../harness/checkOp';
import { testContext, withGridLimit } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

// Probabilities in a row of C are about 1/C, so the absolute tolerance scales with 1/C; otherwise a wide
// row (C = 49152) would pass with every output set to zero.
const fwdTol = (C: number) => ({ atol: Math.min(1e-5, 1e-3 / C), rtol: 1e-4 });
const bwdTol = (C: number) => ({ atol: Math.min(1e-4, 1e-2 / C), rtol: 1e-3 });

describe('softmax', () => {
  // [rows, C, scale]: odd widths, a vocabulary-wide row, many short rows (several rows per workgroup with a
  // partial last workgroup), and a case where more than one workgroup row is needed per grid dimension.
  // [rows, C, scale, grid limit per dimension (lowered to force a 2-D grid), if any]
  const cases: [number, number, number, number?][] = [
    [3, 7, 2],
    [5, 176, 3],
    [4, 1000, 3],
    [2, 49152, 3],
    [2000, 64, 2],
    [301, 5, 2],
    [7, 256, 1],
    [6, 257, 1],
    [300, 64, 2, 7],
    [301, 5, 2, 3],
  ];
  for (const [rows, C, scale, limit] of cases) {
    it(`forward and backward on [${rows}×${C}]${limit ? ` on a 2-D grid (limit ${limit})` : ''}`, async () => {
      const base = await testContext();
      const ctx = limit ? withGridLimit(base, limit) : base;
      const rng = new Rng(rows * 100003 + C);
      const shape = [rows, C];
      await checkOp(ctx, {
        name: `softmax [${shape}]`,
        inputs: { x: { shape, data: rng.tensor(rows * C, scale) } },
        ref: (x) => ({ out: softmaxForwardRef(x.x!, rows, C) }),
        gpu: (ctx, x) => {
          const out = ctx.empty(shape);
          softmaxForward(ctx, out, x.x!);
          return { out };
        },
        refBackward: (x, d) => ({ x: softmaxBackwardRef(d.out!, softmaxForwardRef(x.x!, rows, C), rows, C) }),
        gpuBackward: (ctx, _x, out, d) => {
          const dx = ctx.zeros(shape);
          softmaxBackward(ctx, dx, d.out!, out.out!);
          return { x: dx };
        },
        forwardTol: fwdTol(C),
        backwardTol: bwdTol(C),
      });
    });
  }

  it('C = 1: every probability is 1 and the gradient is 0', async () => {
    // The gradient is identically zero here, which checkOp refuses, so the backward is compared directly.
    const ctx = await testContext();
    const rng = new Rng(11);
    const rows = 9;
    const xData = rng.tensor(rows, 3);
    await checkOp(ctx, {
      name: 'softmax [9×1]',
      inputs: { x: { shape: [rows, 1], data: xData } },
      ref: (x) => ({ out: softmaxForwardRef(x.x!, rows, 1) }),
      gpu: (ctx, x) => {
        const out = ctx.empty([rows, 1]);
        softmaxForward(ctx, out, x.x!);
        return { out };
      },
    });
    const x = ctx.upload([rows, 1], Float32Array.from(xData));
    const out = ctx.empty([rows, 1]);
    softmaxForward(ctx, out, x);
    const dOutData = rng.tensor(rows);
    const dOut = ctx.upload([rows, 1], Float32Array.from(dOutData));
    const dx = ctx.zeros([rows, 1]);
    softmaxBackward(ctx, dx, dOut, out);
    const ref = softmaxBackwardRef(dOutData, softmaxForwardRef(xData, rows, 1), rows, 1);
    expectClose('softmax [9×1] backward dx', await ctx.readF32(dx), ref, bwdTol(1));
    for (const t of [x, out, dOut, dx]) t.release();
  });

  it('backward accumulates into dx', async () => {
    const ctx = await testContext();
    const rng = new Rng(5);
    const [rows, C] = [6, 33];
    const xData = rng.tensor(rows * C, 2);
    const dOutData = rng.tensor(rows * C);
    const prior = rng.tensor(rows * C);
    const x = ctx.upload([rows, C], Float32Array.from(xData));
    const out = ctx.empty([rows, C]);
    softmaxForward(ctx, out, x);
    const dOut = ctx.upload([rows, C], Float32Array.from(dOutData));
    const dx = ctx.upload([rows, C], Float32Array.from(prior));
    softmaxBackward(ctx, dx, dOut, out);
    softmaxBackward(ctx, dx, dOut, out);
    const once = softmaxBackwardRef(dOutData, softmaxForwardRef(xData, rows, C), rows, C);
    expectClose('softmax accumulated dx', await ctx.readF32(dx), prior.map((p, i) => p + 2 * once[i]!), bwdTol(C));
    for (const t of [x, out, dOut, dx]) t.release();
  });

  it('rejects mismatched shapes', async () => {
    const ctx = await testContext();
    const x = ctx.empty([4, 8]);
    const out = ctx.empty([8, 4]);
    expect(() => softmaxForward(ctx, out, x)).toThrow(/softmaxForward: out \[8, 4\] does not match x \[4, 8\]/);
    x.release();
    out.release();
  });
});
