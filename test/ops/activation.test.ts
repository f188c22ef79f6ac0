// ReLU and SiLU against their float64 references and finite differences (checkOp), on odd sizes and on a
// size that needs a 2-D grid; large |x| (no overflow in SiLU's exp); and accumulation into dx.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import type { Tensor } from '../../src/engine/tensor';
import { reluBackward, reluForward, siluBackward, siluForward } from '../../src/engine/ops/activation';
import { reluBackwardRef, reluForwardRef, siluBackwardRef, siluForwardRef } from '../../src/engine/ref/activation';
import { checkOp, expectClose, type OpCase } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

type Fwd = (ctx: GpuContext, out: Tensor, x: Tensor) => void;
type Bwd = (ctx: GpuContext, dx: Tensor, dOut: Tensor, x: Tensor) => void;
const OPS: Record<'relu' | 'silu', { f: Fwd; b: Bwd; fRef: (x: Float64Array) => Float64Array; bRef: (d: Float64Array, x: Float64Array) => Float64Array }> = {
  relu: { f: reluForward, b: reluBackward, fRef: reluForwardRef, bRef: reluBackwardRef },
  silu: { f: siluForward, b: siluBackward, fRef: siluForwardRef, bRef: siluBackwardRef },
};

function gpuCase(kind: 'relu' | 'silu', shape: number[], data: Float64Array, seed: number, skipFiniteDifferences = false): OpCase {
  const op = OPS[kind];
  return {
    skipFiniteDifferences,
    name: `${kind} [${shape}]`,
    seed,
    inputs: { x: { shape, data } },
    ref: (x) => ({ out: op.fRef(x.x!) }),
    gpu: (ctx, x) => {
      const out = ctx.empty(shape);
      op.f(ctx, out, x.x!);
      return { out };
    },
    refBackward: (x, d) => ({ x: op.bRef(d.out!, x.x!) }),
    gpuBackward: (ctx, x, _out, d) => {
      const dx = ctx.zeros(shape);
      op.b(ctx, dx, d.out!, x.x!);
      return { x: dx };
    },
  };
}

for (const kind of ['relu', 'silu'] as const) {
  describe(kind, () => {
    for (const shape of [[1], [3, 7], [5, 173], [2, 70001]]) {
      it(`forward and backward on [${shape.join('×')}]`, async () => {
        const ctx = await testContext();
        const n = shape.reduce((a, b) => a * b, 1);
        const rng = new Rng(n + (kind === 'relu' ? 3 : 5));
        let data = rng.tensor(n, 2);
        // ReLU is not differentiable at 0: keep finite-difference probes away from the kink.
        if (kind === 'relu') data = data.map((v) => (Math.abs(v) < 1e-3 ? v + 0.01 : v));
        if (n === 1) data[0] = 0.75; // one element: positive, so the output is not identically zero
        await checkOp(ctx, gpuCase(kind, shape, data, n));
      });
    }

    it('large |x|: no overflow, no NaN', async () => {
      const ctx = await testContext();
      const data = Float64Array.from([-1e30, -300, -100, -81, -79, -20, -1, 1, 20, 79, 81, 100, 300, 1e30], Math.fround);
      await checkOp(ctx, gpuCase(kind, [data.length], data, 7, true));
    });

    it('backward accumulates into dx; the gradient at exactly 0', async () => {
      const ctx = await testContext();
      const rng = new Rng(kind === 'relu' ? 9 : 10);
      const n = 333;
      const x = rng.tensor(n, 3);
      x[0] = 0;
      const dOut = rng.tensor(n);
      const prior = rng.tensor(n);
      const want = op(kind).bRef(dOut, x).map((v, i) => v + prior[i]!);
      const dx = ctx.upload([n], Float32Array.from(prior));
      const xt = ctx.upload([n], Float32Array.from(x));
      const dt = ctx.upload([n], Float32Array.from(dOut));
      op(kind).b(ctx, dx, dt, xt);
      const got = await ctx.readF32(dx);
      expectClose(`${kind} backward accumulation`, got, want, { atol: 1e-5, rtol: 1e-5 });
      // relu'(0) = 0 (PyTorch); silu'(0) = 1/2.
      expect(got[0]! - Math.fround(prior[0]!)).toBeCloseTo(kind === 'relu' ? 0 : 0.5 * dOut[0]!, 5);
      for (const t of [dx, xt, dt]) t.release();
    });
  });
}

function op(kind: 'relu' | 'silu') {
  return OPS[kind];
}
