import { describe, it } from 'vitest';
import { fmaPeak } from '../../src/engine/ops/fma-peak';
import { fmaPeakRef } from '../../src/engine/ref/fma-peak';
import { checkOp } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';

describe('fmaPeak', () => {
  // 256 invocations per workgroup: counts below, between and above multiples of it. The chains contract
  // towards add / (1 − mul), so f32 and float64 stay within a few ulps per step.
  for (const [threads, iters] of [[1, 1], [300, 37], [1000, 200]] as const) {
    it(`${threads} invocations × ${iters} iterations against float64`, async () => {
      const ctx = await testContext();
      await checkOp(ctx, {
        name: `fmaPeak ${threads}×${iters}`,
        inputs: {},
        forwardTol: { atol: 1e-5, rtol: 1e-5 },
        ref: () => ({ out: fmaPeakRef(threads, iters, 0.9999, 1e-4) }),
        gpu: (ctx) => {
          const out = ctx.empty([threads]);
          fmaPeak(ctx, out, iters, 0.9999, 1e-4);
          return { out };
        },
      });
    });
  }
});
