import { describe, expect, it } from 'vitest';
import { PAIR_METRICS, preferenceLoss, type PairLoss, type PairLossKernelParams } from '../../src/engine/ops/preference-loss';
import { preferenceLossRef } from '../../src/engine/ref/preference-loss';
import { checkOp } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

const STATS = 3 + PAIR_METRICS.length;
const LOSS_SLOT = 1;
const METRIC_SLOT = 3;

/** values [2P] (NLL sums > 0 for DPO; rewards for 'reward'), refs [2P] near them, lens [2P] token counts. */
function pairs(rng: Rng, P: number, loss: PairLoss): { values: Float64Array; refs: Float64Array; lens: Float64Array } {
  const lens = Float64Array.from({ length: 2 * P }, () => rng.int(1, 40));
  const values = Float64Array.from(lens, (n) => Math.fround(loss === 'reward' ? 2 * rng.normal() : n * (0.3 + 2 * rng.next())));
  const refs = Float64Array.from(values, (v) => Math.fround(v * (1 + 0.2 * rng.normal())));
  return { values, refs, lens };
}

function params(loss: PairLoss, ftx: number): PairLossKernelParams {
  return { loss, beta: 0.1, gamma: 0.5, ftx, sign: loss === 'reward' ? 1 : -1, scale: 0.25, lossSlot: LOSS_SLOT, metricSlot: METRIC_SLOT };
}

/** stats + the reference's sums in their slots. */
function statsRef(stats: Float64Array, r: { loss: number; metrics: Float64Array }): Float64Array {
  const out = Float64Array.from(stats);
  out[LOSS_SLOT]! += r.loss;
  r.metrics.forEach((v, i) => (out[METRIC_SLOT + i]! += v));
  return out;
}

describe('preferenceLoss', () => {
  const cases: [PairLoss, number][] = [['sigmoid', 0], ['hinge', 0], ['ipo', 0], ['orpo', 0], ['simpo', 0.3], ['sigmoid', 0.3], ['reward', 0]];
  // One workgroup of 64: fewer pairs than invocations, and more (a strided loop before the tree).
  for (const P of [1, 3, 100]) {
    for (const [loss, ftx] of cases) {
      it(`${loss}${ftx ? ` + ftx ${ftx}` : ''}, ${P} pairs: coefficients and the stats sums`, async () => {
        const ctx = await testContext();
        const rng = new Rng(P * 31 + loss.length * 7 + ftx * 10);
        const p = params(loss, ftx);
        const { values, refs, lens } = pairs(rng, P, loss);
        await checkOp(ctx, {
          name: `preferenceLoss ${loss} P=${P}`,
          inputs: {
            values: { shape: [2 * P], data: values },
            refs: { shape: [2 * P], data: refs },
            lens: { shape: [2 * P], data: lens, grad: false },
            stats: { shape: [STATS], data: rng.tensor(STATS) },
          },
          // f32 against float64 through exp, log and sums over up to 100 pairs.
          forwardTol: { atol: 1e-4, rtol: 1e-4 },
          ref: (x) => {
            const r = preferenceLossRef(x.values!, x.refs!, x.lens!, p);
            return { coef: r.coef, stats: statsRef(x.stats!, r) };
          },
          gpu: (ctx, x) => {
            const coef = ctx.empty([2 * P]);
            const stats = ctx.empty([STATS]);
            ctx.copy(x.stats!, stats);
            preferenceLoss(ctx, coef, stats, x.values!, x.refs!, x.lens!, p);
            return { coef, stats };
          },
        });
      });
    }
  }

  it('the coefficients are scale · d(Σ loss)/d values (finite differences of the reference)', () => {
    const rng = new Rng(5);
    for (const [loss, ftx] of cases) {
      const p = params(loss, ftx);
      const { values, refs, lens } = pairs(rng, 4, loss);
      const { coef } = preferenceLossRef(values, refs, lens, p);
      for (let i = 0; i < values.length; i++) {
        const h = 1e-6 * Math.max(1, Math.abs(values[i]!));
        const at = (d: number) => preferenceLossRef(values.map((v, j) => (j === i ? v + d : v)), refs, lens, p).loss;
        const fd = ((at(h) - at(-h)) / (2 * h)) * p.scale;
        expect(Math.abs(fd - coef[i]!), `${loss} d values[${i}]`).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(coef[i]!));
      }
    }
  });

  it('refuses an odd row count and stats slots outside stats', async () => {
    const ctx = await testContext();
    const t = (n: number) => ctx.zeros([n]);
    expect(() => preferenceLoss(ctx, t(3), t(STATS), t(3), t(3), t(3), params('sigmoid', 0))).toThrow(/2·P values/);
    expect(() => preferenceLoss(ctx, t(2), t(STATS - 1), t(2), t(2), t(2), params('sigmoid', 0))).toThrow(/stats slots/);
  });
});
