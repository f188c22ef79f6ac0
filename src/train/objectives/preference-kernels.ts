// The GPU kernels of the pairwise objectives (DPO and its variants, the reward model), so that a preference step,
// like an SFT step, reads back one small buffer: the per-sequence values, the loss, its per-sequence
// coefficients and the logged metrics never leave the GPU. They are engine ops; this module gathers them for
// the objectives:
//
//   rowSums          out[row] = Σ_t x[row·T + t]: per-sequence sums of the per-token NLL (−Σ log p)
//                    (src/engine/ops/row-sums.ts)
//   preferenceLoss   per pair (rows p and P + p: chosen and rejected): the loss of preference-loss.ts (float64
//                    there, f32 in the kernel), coef[row] = sign · dL/dS_row · scale, and the sums of the loss and
//                    the metrics added into stats (src/engine/ops/preference-loss.ts)
//   expandRows       out[row·T + t] = coef[row]: the per-token weight that crossEntropyChunkBackward takes
//
// The values a pair is scored on are `sign · values[row]`: sign −1 for DPO (values are NLL sums, so S = −NLL),
// +1 for the reward model (values are rewards).
export { expandRows, rowSums } from '../../engine/ops/row-sums';
export { PAIR_METRICS, preferenceLoss, type PairLoss, type PairLossKernelParams } from '../../engine/ops/preference-loss';
