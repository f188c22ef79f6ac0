import { describe, expect, it } from 'vitest';
import { expandRows, rowSums } from '../../src/engine/ops/row-sums';
import { expandRowsRef, rowSumsRef } from '../../src/engine/ref/row-sums';
import { checkOp } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

describe('rowSums / expandRows', () => {
  // The kernels' workgroup is 64 wide: rows shorter and longer than it, and not multiples of it.
  for (const [R, T] of [[1, 1], [5, 7], [3, 65], [33, 300]] as const) {
    it(`row sums of [${R}×${T}] and their backward`, async () => {
      const ctx = await testContext();
      const rng = new Rng(R * 1000 + T);
      await checkOp(ctx, {
        name: `rowSums [${R}×${T}]`,
        inputs: { x: { shape: [R, T], data: rng.tensor(R * T, 2) } },
        forwardTol: { atol: 1e-5, rtol: 1e-5 },
        ref: (x) => ({ out: rowSumsRef(x.x!, T) }),
        gpu: (ctx, x) => {
          const out = ctx.empty([R]);
          rowSums(ctx, out, x.x!, T);
          return { out };
        },
        refBackward: (_x, d) => ({ x: expandRowsRef(d.out!, T) }),
        gpuBackward: (ctx, _x, _out, d) => {
          const dx = ctx.empty([R, T]);
          expandRows(ctx, dx, d.out!, T);
          return { x: dx };
        },
        backwardTol: { atol: 0, rtol: 0 },
      });
    });
  }

  it('refuses sizes that do not make R rows of T', async () => {
    const ctx = await testContext();
    expect(() => rowSums(ctx, ctx.empty([3]), ctx.empty([10]), 4)).toThrow(/x holds 10 values, not 3 rows of 4/);
    expect(() => expandRows(ctx, ctx.empty([10]), ctx.empty([3]), 4)).toThrow(/out holds 10 values, not 3 rows of 4/);
  });
});
