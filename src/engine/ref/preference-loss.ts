// Float64 reference for the preference-loss kernel (ops/preference-loss.ts): the kernel's contract (rows p and
// P + p, sign, scale, the stats slots and metrics) around the per-pair formulas of ./preference-pair.ts.
import { preferencePairLoss, rewardPairLoss } from './preference-pair';
import type { PairLossKernelParams } from '../ops/preference-loss';

export interface PreferenceLossRef {
  /** sign · dL/dS_row · scale per row [2P]. */
  coef: Float64Array;
  /** Σ loss over the pairs. */
  loss: number;
  /** Σ over the pairs of each of PAIR_METRICS, in its order. */
  metrics: Float64Array;
}

export function preferenceLossRef(values: Float64Array, refs: Float64Array, lens: Float64Array, p: PairLossKernelParams): PreferenceLossRef {
  const P = values.length / 2;
  const coef = new Float64Array(2 * P);
  const metrics = new Float64Array(7);
  let loss = 0;
  for (let i = 0; i < P; i++) {
    const chosen = p.sign * values[i]!;
    const rejected = p.sign * values[P + i]!;
    const [nc, nr] = [lens[i]!, lens[P + i]!];
    let pair: { loss: number; dChosen: number; dRejected: number; rewardChosen: number; rewardRejected: number; logpChosen: number; logpRejected: number; oddsRatioLoss: number };
    if (p.loss === 'reward') {
      const r = rewardPairLoss(chosen, rejected);
      pair = { ...r, rewardChosen: chosen, rewardRejected: rejected, logpChosen: chosen, logpRejected: rejected, oddsRatioLoss: 0 };
    } else {
      pair = preferencePairLoss(
        { loss: p.loss, beta: p.beta, gamma: p.gamma, ftx: p.ftx },
        { chosen, rejected, chosenTokens: nc, rejectedTokens: nr, refChosen: refs[i]!, refRejected: refs[P + i]! },
      );
    }
    loss += pair.loss;
    coef[i] = p.sign * pair.dChosen * p.scale;
    coef[P + i] = p.sign * pair.dRejected * p.scale;
    const m = [pair.rewardChosen, pair.rewardRejected, pair.rewardChosen > pair.rewardRejected ? 1 : 0, pair.logpChosen, pair.logpRejected, -chosen / nc, pair.oddsRatioLoss];
    m.forEach((v, k) => (metrics[k]! += v));
  }
  return { coef, loss, metrics };
}
