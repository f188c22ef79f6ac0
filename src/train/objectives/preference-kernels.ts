// The GPU kernels of the pairwise objectives (rowSums, preferenceLoss, expandRows), gathered from the engine's
// ops for dpo.ts and rm.ts; docs/training.md ("Preference losses").
export { expandRows, rowSums } from '../../engine/ops/row-sums';
export { PAIR_METRICS, preferenceLoss, type PairLoss, type PairLossKernelParams } from '../../engine/ops/preference-loss';
