// The pairwise preference losses DPO and the reward model train with (sigmoid, hinge, ipo, orpo, simpo, reward):
// which loss, its settings, and what it needs. The formulas: docs/training.md ("Preference losses"); the GPU
// computes them (src/engine/ops/preference-loss.ts), src/engine/ref/preference-pair.ts defines them in float64.

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
