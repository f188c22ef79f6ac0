import { describe, expect, it } from 'vitest';
import { biasAdd, biasBackward } from '../../src/engine/ops/bias';
import { biasAddRef, biasBackwardRef } from '../../src/engine/ref/bias';
import { numel } from '../../src/engine/tensor';
import { checkOp, type Tolerance } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

// A column sum over R rows drifts from float64 by ~eps·√R times the size of its terms.
const tol = (rows: number): Tolerance => ({ atol: 1e-5 * Math.max(1, Math.sqrt(rows)), rtol: 1e-5 });

/** Many rows of few columns, few rows of many columns, one of each, 3-D, and more than one chunk of rows. */
const SHAPES = [[1, 1], [5000, 7], [3, 1000], [2, 3, 37], [700, 129], [257, 33]];

describe('bias', () => {
  for (const shape of SHAPES) {
    const N = shape[shape.length - 1]!;
    const n = numel(shape);
    const R = n / N;
    it(`biasAdd and its backward on [${shape.join('×')}]`, async () => {
      const ctx = await testContext();
      const rng = new Rng(n * 3 + N);
      await checkOp(ctx, {
        name: `bias [${shape}]`,
        inputs: { x: { shape, data: rng.tensor(n) }, bias: { shape: [N], data: rng.tensor(N) } },
        ref: (x) => ({ out: biasAddRef(x.x!, x.bias!, N) }),
        gpu: (ctx, x) => {
          const out = ctx.empty(shape);
          ctx.copy(x.x!, out);
          biasAdd(ctx, out, x.bias!);
          return { out };
        },
        refBackward: (_x, d) => ({ x: d.out!, bias: biasBackwardRef(d.out!, N) }),
        gpuBackward: (ctx, _x, _out, d) => {
          // The gradient into x is dOut itself; the bias gradient is the op under test.
          const dx = ctx.empty(shape);
          ctx.copy(d.out!, dx);
          const dBias = ctx.zeros([N]);
          biasBackward(ctx, dBias, d.out!);
          return { x: dx, bias: dBias };
        },
        forwardTol: tol(1),
        backwardTol: tol(R),
      });
    });

    it(`biasBackward accumulates on [${shape.join('×')}]`, async () => {
      const ctx = await testContext();
      const rng = new Rng(n * 5 + N + 1);
      await checkOp(ctx, {
        name: `biasBackward [${shape}]`,
        inputs: { dOut: { shape, data: rng.tensor(n) }, init: { shape: [N], data: rng.tensor(N) } },
        ref: (x) => ({ dBias: biasBackwardRef(x.dOut!, N).map((v, i) => v + x.init![i]!) }),
        gpu: (ctx, x) => {
          const dBias = ctx.empty([N]);
          ctx.copy(x.init!, dBias);
          biasBackward(ctx, dBias, x.dOut!);
          return { dBias };
        },
        forwardTol: tol(R),
      });
    });
  }

  it('biasBackward splits grids larger than maxComputeWorkgroupsPerDimension', async () => {
    const ctx = await testContext();
    const rng = new Rng(31337);
    const shape = [600, 1000];
    const N = 1000;
    await checkOp(ctx, {
      name: 'biasBackward split grid',
      inputs: { dOut: { shape, data: rng.tensor(600 * N) } },
      ref: (x) => ({ dBias: biasBackwardRef(x.dOut!, N) }),
      gpu: (ctx, x) => {
        const dBias = ctx.zeros([N]);
        biasBackward(ctx, dBias, x.dOut!, { maxWorkgroupsPerDimension: 2 });
        return { dBias };
      },
      forwardTol: tol(600),
    });
  });

  it('rejects mismatched shapes, naming the op and the shapes', async () => {
    const ctx = await testContext();
    expect(() => biasAdd(ctx, ctx.empty([4, 5]), ctx.empty([4]))).toThrow(/biasAdd: out \[4×5\] and bias \[4\]/);
    expect(() => biasBackward(ctx, ctx.empty([5, 1]), ctx.empty([4, 5]))).toThrow(/biasBackward: dOut \[4×5\] and bias \[5×1\]/);
    await ctx.sync();
  });
});
