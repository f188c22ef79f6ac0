import { describe, it } from 'vitest';
import { swigluBackward, swigluForward } from '../../src/engine/ops/swiglu';
import { swigluBackwardRef, swigluForwardRef } from '../../src/engine/ref/swiglu';
import { checkOp } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

describe('swiglu', () => {
  for (const shape of [[1, 1], [3, 7], [5, 176], [2, 70000]]) {
    it(`forward and backward on [${shape.join('×')}]`, async () => {
      const ctx = await testContext();
      const rng = new Rng(shape[0]! * 1000 + shape[1]!);
      const n = shape[0]! * shape[1]!;
      await checkOp(ctx, {
        name: `swiglu [${shape}]`,
        inputs: { gate: { shape, data: rng.tensor(n, 2) }, up: { shape, data: rng.tensor(n) } },
        ref: (x) => ({ out: swigluForwardRef(x.gate!, x.up!) }),
        gpu: (ctx, x) => {
          const out = ctx.empty(shape);
          swigluForward(ctx, out, x.gate!, x.up!);
          return { out };
        },
        refBackward: (x, d) => {
          const { dGate, dUp } = swigluBackwardRef(d.out!, x.gate!, x.up!);
          return { gate: dGate, up: dUp };
        },
        gpuBackward: (ctx, x, _out, d) => {
          const dGate = ctx.zeros(shape);
          const dUp = ctx.zeros(shape);
          swigluBackward(ctx, dGate, dUp, d.out!, x.gate!, x.up!);
          return { gate: dGate, up: dUp };
        },
      });
    });
  }
});
