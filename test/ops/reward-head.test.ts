import { describe, expect, it } from 'vitest';
import { rewardBackward, rewardForward } from '../../src/engine/ops/reward-head';
import { rewardBackwardRef, rewardForwardRef } from '../../src/engine/ref/reward-head';
import { checkOp } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

/** B distinct rows of N, in a seeded order. */
function distinctRows(rng: Rng, B: number, N: number): Float64Array {
  const all = Array.from({ length: N }, (_, i) => i);
  for (let i = N - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return Float64Array.from(all.slice(0, B));
}

describe('reward head', () => {
  // The forward's workgroup is 64 wide and the backward's grids 64 per workgroup: H below, at and above it.
  for (const [B, N, H] of [[1, 1, 1], [3, 10, 37], [4, 9, 64], [6, 40, 131]] as const) {
    it(`forward and backward, ${B} sequences over hidden [${N}×${H}]`, async () => {
      const ctx = await testContext();
      const rng = new Rng(B * 100 + H);
      await checkOp(ctx, {
        name: `reward head B=${B} H=${H}`,
        inputs: {
          hidden: { shape: [N, H], data: rng.tensor(N * H) },
          rows: { shape: [B], data: distinctRows(rng, B, N), dtype: 'u32', grad: false },
          w: { shape: [H], data: rng.tensor(H, 0.5) },
        },
        ref: (x) => ({ out: rewardForwardRef(x.hidden!, x.rows!, x.w!) }),
        gpu: (ctx, x) => {
          const out = ctx.empty([B]);
          rewardForward(ctx, out, x.hidden!, x.rows!, x.w!);
          return { out };
        },
        refBackward: (x, d) => {
          const { dW, dHidden } = rewardBackwardRef(d.out!, x.hidden!, x.rows!, x.w!);
          return { hidden: dHidden, w: dW };
        },
        gpuBackward: (ctx, x, _out, d) => {
          const dW = ctx.zeros([H]);
          const dHidden = ctx.zeros([N, H]);
          rewardBackward(ctx, dW, dHidden, d.out!, x.hidden!, x.rows!, x.w!);
          return { hidden: dHidden, w: dW };
        },
      });
    });
  }

  it('backward accumulates, and without dW only into dHidden', async () => {
    const ctx = await testContext();
    const hidden = ctx.upload([3, 2], Float32Array.of(1, 2, 3, 4, 5, 6));
    const rows = ctx.upload([2], Uint32Array.of(2, 0));
    const w = ctx.upload([2], Float32Array.of(0.5, -1));
    const coef = ctx.upload([2], Float32Array.of(2, -1));
    const dW = ctx.upload([2], Float32Array.of(10, 20));
    const dHidden = ctx.upload([3, 2], Float32Array.of(1, 1, 1, 1, 1, 1));
    rewardBackward(ctx, dW, dHidden, coef, hidden, rows, w);
    rewardBackward(ctx, undefined, dHidden, coef, hidden, rows, w);
    expect(Array.from(await ctx.readF32(dW))).toEqual([10 + 2 * 5 - 1 * 1, 20 + 2 * 6 - 1 * 2]);
    expect(Array.from(await ctx.readF32(dHidden))).toEqual([1 - 2 * 0.5, 1 + 2, 1, 1, 1 + 4 * 0.5, 1 - 4]);
  });

  it('refuses rows that are not u32 and shapes that disagree', async () => {
    const ctx = await testContext();
    const hidden = ctx.zeros([3, 4]);
    const w = ctx.zeros([4]);
    expect(() => rewardForward(ctx, ctx.empty([2]), hidden, ctx.zeros([2], 'i32'), w)).toThrow(/rows u32/);
    expect(() => rewardBackward(ctx, undefined, ctx.zeros([3, 4]), ctx.zeros([3]), hidden, ctx.zeros([2], 'u32'), w)).toThrow(/coef \[B\]/);
  });
});
