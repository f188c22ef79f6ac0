// GeGLU (Gemma's MLP activation, gelu_pytorch_tanh): against the float64 reference, its gradients against finite
// differences; gates beyond the clamp (|g| > 10) included through the outliers.
import { describe, it } from 'vitest';
import { gegluBackward, gegluForward } from '../../src/engine/ops/geglu';
import { gegluBackwardRef, gegluForwardRef } from '../../src/engine/ref/geglu';
import { checkOp } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

describe('geglu', () => {
  for (const shape of [[1, 1], [3, 7], [5, 176], [2, 70000]]) {
    it(`forward and backward on [${shape.join('×')}]`, async () => {
      const ctx = await testContext();
      const rng = new Rng(shape[0]! * 1000 + shape[1]! + 7);
      const n = shape[0]! * shape[1]!;
      await checkOp(ctx, {
        name: `geglu [${shape}]`,
        inputs: { gate: { shape, data: rng.tensor(n, 2) }, up: { shape, data: rng.tensor(n) } },
        ref: (x) => ({ out: gegluForwardRef(x.gate!, x.up!) }),
        gpu: (ctx, x) => {
          const out = ctx.empty(shape);
          gegluForward(ctx, out, x.gate!, x.up!);
          return { out };
        },
        refBackward: (x, d) => {
          const { dGate, dUp } = gegluBackwardRef(d.out!, x.gate!, x.up!);
          return { gate: dGate, up: dUp };
        },
        gpuBackward: (ctx, x, _out, d) => {
          const dGate = ctx.zeros(shape);
          const dUp = ctx.zeros(shape);
          gegluBackward(ctx, dGate, dUp, d.out!, x.gate!, x.up!);
          return { gate: dGate, up: dUp };
        },
      });
    });
  }
});
