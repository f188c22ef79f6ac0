// The pairwise preference losses DPO and the reward model train with: which loss, its settings, and what it
// needs (a reference model, length-normalised log-probs). The GPU computes them (src/engine/ops/preference-loss.ts);
// their float64 definition, which the kernel is checked against, is src/engine/ref/preference-pair.ts.
//
// Inputs per pair: the summed log-probabilities of the chosen and rejected answers under the policy (S_c, S_r;
// summed over the answer tokens), their token counts (n_c, n_r), and for the losses with a reference model
// the reference's sums (R_c, R_r). LLaMA-Factory's CustomDPOTrainer (on TRL's DPOTrainer) defines:
//
//   ipo, orpo, simpo use length-normalised log-probs c = S_c / n_c, r = S_r / n_r (and R_c / n_c, R_r / n_r);
//   sigmoid, hinge use the sums c = S_c, r = S_r.
//   h = (c − ref_c) − (r − ref_r)                                    (the DPO "logits")
//   sigmoid  L = −log σ(β·h)                                         TRL's DPO loss (label smoothing 0)
//   hinge    L = relu(1 − β·h)
//   ipo      L = (h − 1/(2β))²
//   orpo     L = −c + β·(−log σ(z)),  z = (c − r) − (log(1 − e^c) − log(1 − e^r))   no reference
//   simpo    L = −log σ(β·(c − r) − γ)  (TRL/LF write β·((c − r) − γ/β))          no reference
//   pref_ftx adds ftx · (−S_c / n_c) (an SFT loss on the chosen answer, per token) to every loss.
//   rewards: β·(c − ref_c), β·(r − ref_r) with a reference; β·c, β·r without (orpo, simpo).
//
// The reward model's loss is the same shape on scalar rewards: L = −log σ(r_c − r_r), rewards r_c, r_r.
//
// The step's loss is the mean of L over its pairs; the gradient flows to the sequences through
// dL/dS_c and dL/dS_r (the per-sequence coefficients): a token's NLL gradient weight is −dL/dS of its sequence.

import type { PairLoss } from '../../engine/ops/preference-loss';

/** DPO's pref_loss values (the kernel's losses less the reward model's). */
export type PrefLoss = Exclude<PairLoss, 'reward'>;
export const PREF_LOSSES: readonly PrefLoss[] = ['sigmoid', 'hinge', 'ipo', 'orpo', 'simpo'];

export interface PreferenceLossParams {
  loss: PrefLoss;
  /** pref_beta */
  beta: number;
  /** simpo_gamma (SimPO's target margin); LLaMA-Factory's default 0.5. */
  gamma: number;
  /** pref_ftx: weight of the SFT loss on the chosen answer. */
  ftx: number;
}

/** Whether the loss compares against a reference model (sigmoid, hinge, ipo) or is reference-free (orpo, simpo). */
export function usesReference(loss: PrefLoss): boolean {
  return loss === 'sigmoid' || loss === 'hinge' || loss === 'ipo';
}

/** Whether the loss uses per-token (length-normalised) log-probs, as LLaMA-Factory does for ipo, orpo, simpo. */
export function lengthNormalised(loss: PrefLoss): boolean {
  return loss === 'ipo' || loss === 'orpo' || loss === 'simpo';
}

/** The metrics of a step as TRL names them, from the sums over its pairs. */
export interface PreferenceMetrics {
  'rewards/chosen': number;
  'rewards/rejected': number;
  'rewards/margins': number;
  'rewards/accuracies': number;
}
