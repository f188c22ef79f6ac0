import { describe, it } from 'vitest';
import { geluBackward, geluForward } from '../../src/engine/ops/gelu';
import { geluBackwardRef, geluForwardRef } from '../../src/engine/ref/gelu';
import { checkOp, expectClose, type OpCase } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

// Values where naive formulas break: x³ or exp overflowing in f32, cancellation in 1 + tanh(u) for x < 0,
// and both sides of the ±10 clamp in the kernel.
const LARGE = [-300, -100, -10.5, -10, -9.5, -6, -3, 3, 6, 9.5, 10, 10.5, 100, 300, 0, -0.5, 0.5];
// Too large for finite differences of Σ out·dOut (the sum's rounding swamps the step), so checked without them.
const EXTREME = [-3e38, -1e30, -1e13, -1e5, 1e5, 1e13, 1e30, 3e38, 1];

function gpuCase(shape: number[], data: Float64Array, seed: number, skipFiniteDifferences = false): OpCase {
  return {
    skipFiniteDifferences,
    name: `gelu [${shape}]`,
    seed,
    inputs: { x: { shape, data } },
    ref: (x) => ({ out: geluForwardRef(x.x!) }),
    gpu: (ctx, x) => {
      const out = ctx.empty(shape);
      geluForward(ctx, out, x.x!);
      return { out };
    },
    refBackward: (x, d) => ({ x: geluBackwardRef(d.out!, x.x!) }),
    gpuBackward: (ctx, x, _out, d) => {
      const dx = ctx.zeros(shape);
      geluBackward(ctx, dx, d.out!, x.x!);
      return { x: dx };
    },
  };
}

describe('gelu (tanh approximation)', () => {
  for (const shape of [[1], [3, 7], [5, 173], [2, 70001]]) {
    it(`forward and backward on [${shape.join('×')}]`, async () => {
      const ctx = await testContext();
      const n = shape.reduce((a, b) => a * b, 1);
      const rng = new Rng(n + 11);
      await checkOp(ctx, gpuCase(shape, rng.tensor(n, 2), n));
    });
  }

  it('large |x|: no overflow, no NaN, the limits 0 and x', async () => {
    const ctx = await testContext();
    const data = Float64Array.from(LARGE, Math.fround);
    await checkOp(ctx, gpuCase([data.length], data, 3));
  });

  it('extreme |x| (x³ overflows f32): gelu(x) = x or 0, gelu\'(x) = 1 or 0', async () => {
    const ctx = await testContext();
    const data = Float64Array.from(EXTREME, Math.fround);
    await checkOp(ctx, gpuCase([data.length], data, 4, true));
  });

  it('backward accumulates into dx', async () => {
    const ctx = await testContext();
    const rng = new Rng(5);
    const n = 333;
    const x = rng.tensor(n, 3);
    const dOut = rng.tensor(n);
    const prior = rng.tensor(n);
    const want = geluBackwardRef(dOut, x).map((v, i) => v + prior[i]!);
    const dx = ctx.upload([n], Float32Array.from(prior));
    const xt = ctx.upload([n], Float32Array.from(x));
    const dt = ctx.upload([n], Float32Array.from(dOut));
    geluBackward(ctx, dx, dt, xt);
    const got = await ctx.readF32(dx);
    expectClose('gelu backward accumulation', got, want, { atol: 1e-4, rtol: 1e-4 });
    for (const t of [dx, xt, dt]) t.release();
  });
});
