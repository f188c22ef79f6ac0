// The pairwise preference losses in float64: the readable definition that the GPU kernel (ops/preference-loss.ts,
// ref/preference-loss.ts around it) is checked against, and the formulas the tests differentiate numerically.
// The formulas are written out in src/train/objectives/preference-loss.ts's header.
import type { PairLoss } from '../ops/preference-loss';

/** The loss and its settings (pref_loss, pref_beta, simpo_gamma, pref_ftx). */
export interface PairLossParams {
  loss: Exclude<PairLoss, 'reward'>;
  beta: number;
  gamma: number;
  ftx: number;
}

const usesReference = (loss: PairLoss) => loss === 'sigmoid' || loss === 'hinge' || loss === 'ipo';
const lengthNormalised = (loss: PairLoss) => loss === 'ipo' || loss === 'orpo' || loss === 'simpo';

export interface PairLogps {
  /** Σ log p of the chosen / rejected answer tokens under the policy. */
  chosen: number;
  rejected: number;
  /** Answer tokens of each. */
  chosenTokens: number;
  rejectedTokens: number;
  /** The reference model's sums (ignored by orpo and simpo). */
  refChosen?: number;
  refRejected?: number;
}

export interface PairLossResult {
  loss: number;
  /** dL/dS_c and dL/dS_r: the derivative of this pair's loss with respect to the summed log-probs. */
  dChosen: number;
  dRejected: number;
  rewardChosen: number;
  rewardRejected: number;
  /** The policy log-probs as LLaMA-Factory logs them (logps/chosen, logps/rejected): sums, or per token for ipo/orpo/simpo. */
  logpChosen: number;
  logpRejected: number;
  /** −S_c / n_c: the SFT loss on the chosen answer (LLaMA-Factory's sft_loss). */
  sftLoss: number;
  /** ORPO: −log σ(z); 0 for the other losses. */
  oddsRatioLoss: number;
}

/** −log σ(x) = softplus(−x), without overflow. */
export function negLogSigmoid(x: number): number {
  return x >= 0 ? Math.log1p(Math.exp(-x)) : -x + Math.log1p(Math.exp(x));
}

/** σ(x) */
export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** log(1 − e^x) for x < 0, accurate near 0 and far below. */
export function log1mexp(x: number): number {
  return x > -Math.LN2 ? Math.log(-Math.expm1(x)) : Math.log1p(-Math.exp(x));
}

/** One pair's loss, coefficients, rewards and logged values (float64). */
export function preferencePairLoss(p: PairLossParams, x: PairLogps): PairLossResult {
  const { beta, gamma, ftx } = p;
  if (!(x.chosenTokens > 0) || !(x.rejectedTokens > 0)) throw new Error('preferencePairLoss: each answer needs at least one token');
  const norm = lengthNormalised(p.loss);
  const nc = norm ? x.chosenTokens : 1;
  const nr = norm ? x.rejectedTokens : 1;
  const c = x.chosen / nc;
  const r = x.rejected / nr;
  let loss: number;
  let dc: number; // dL/dc
  let dr: number; // dL/dr
  let rewardChosen: number;
  let rewardRejected: number;
  let oddsRatioLoss = 0;
  if (usesReference(p.loss)) {
    if (x.refChosen === undefined || x.refRejected === undefined) throw new Error(`preferencePairLoss: the ${p.loss} loss needs reference log-probs`);
    const rc = x.refChosen / nc;
    const rr = x.refRejected / nr;
    const h = c - rc - (r - rr);
    let dh: number;
    if (p.loss === 'sigmoid') {
      loss = negLogSigmoid(beta * h);
      dh = -beta * sigmoid(-beta * h);
    } else if (p.loss === 'hinge') {
      const m = 1 - beta * h;
      loss = Math.max(0, m);
      dh = m > 0 ? -beta : 0;
    } else {
      const d = h - 1 / (2 * beta);
      loss = d * d;
      dh = 2 * d;
    }
    dc = dh;
    dr = -dh;
    rewardChosen = beta * (c - rc);
    rewardRejected = beta * (r - rr);
  } else if (p.loss === 'orpo') {
    const z = c - r - (log1mexp(c) - log1mexp(r));
    oddsRatioLoss = negLogSigmoid(z);
    loss = -c + beta * oddsRatioLoss;
    const dz = -beta * sigmoid(-z);
    // dz/dc = 1 + e^c/(1 − e^c) = 1/(1 − e^c); dz/dr = −1/(1 − e^r)
    dc = -1 + dz / -Math.expm1(c);
    dr = -dz / -Math.expm1(r);
    rewardChosen = beta * c;
    rewardRejected = beta * r;
  } else {
    const u = beta * (c - r) - gamma;
    loss = negLogSigmoid(u);
    const du = -sigmoid(-u);
    dc = beta * du;
    dr = -beta * du;
    rewardChosen = beta * c;
    rewardRejected = beta * r;
  }
  const sftLoss = -x.chosen / x.chosenTokens;
  loss += ftx * sftLoss;
  return {
    loss,
    dChosen: dc / nc - ftx / x.chosenTokens,
    dRejected: dr / nr,
    rewardChosen,
    rewardRejected,
    logpChosen: c,
    logpRejected: r,
    sftLoss,
    oddsRatioLoss,
  };
}

export interface RewardPairResult {
  loss: number;
  /** dL/dr_c, dL/dr_r */
  dChosen: number;
  dRejected: number;
}

/** The reward model's pairwise loss −log σ(r_c − r_r) and its derivatives (float64). */
export function rewardPairLoss(rewardChosen: number, rewardRejected: number): RewardPairResult {
  const d = rewardChosen - rewardRejected;
  const g = sigmoid(-d);
  return { loss: negLogSigmoid(d), dChosen: -g, dRejected: g };
}
