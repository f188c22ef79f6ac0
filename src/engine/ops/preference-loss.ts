// The pairwise preference loss on the GPU (DPO and its variants, the reward model), so that a preference step,
// like an SFT step, reads back one small buffer: the loss, its per-sequence coefficients and the logged
// metrics never leave the GPU. One workgroup; what it computes per pair is the float64 formula of
// src/train/objectives/preference-loss.ts (shaders/preference_loss.wgsl says how), and ref/preference-loss.ts
// holds the two together. The coefficients are the loss's gradient, so the op is its own backward:
//   coef[row] = sign · dL/dS_row · scale     (S_row = sign · values[row])
import type { GpuContext } from '../context';
import { ro, rw, type KernelSpec } from '../kernel';
import type { Tensor } from '../tensor';
import lossSrc from '../../../shaders/preference_loss.wgsl?raw';

const WG = 64;

/** The losses the kernel computes: DPO's pref_loss values, and 'reward', the reward model's −log σ(r_c − r_r). */
export type PairLoss = 'sigmoid' | 'hinge' | 'ipo' | 'orpo' | 'simpo' | 'reward';

const MODES: Record<PairLoss, number> = { sigmoid: 0, hinge: 1, ipo: 2, orpo: 3, simpo: 4, reward: 5 };

/** Metrics the loss kernel adds into stats[metricSlot ..], in this order (sums over the pairs). */
export const PAIR_METRICS = ['rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'logps/chosen', 'logps/rejected', 'sft_loss', 'odds_ratio_loss'] as const;

const lossSpec: KernelSpec = {
  name: 'preference_loss',
  source: lossSrc,
  bindings: [rw('coef'), rw('stats'), ro('values'), ro('refs'), ro('lens')],
  params: [
    ['P', 'u32'],
    ['mode', 'u32'],
    ['lossSlot', 'u32'],
    ['metricSlot', 'u32'],
    ['beta', 'f32'],
    ['gamma', 'f32'],
    ['ftx', 'f32'],
    ['sign', 'f32'],
    ['scale', 'f32'],
  ],
  defines: { WG },
};

export interface PairLossKernelParams {
  loss: PairLoss;
  beta: number;
  gamma: number;
  ftx: number;
  /** −1: values are NLL sums (DPO); +1: values are the scores themselves (reward model). */
  sign: 1 | -1;
  /** Multiplies the coefficients: 1 / (pairs of the optimizer step). */
  scale: number;
  /** stats[lossSlot] += Σ loss; stats[metricSlot + i] += Σ PAIR_METRICS[i]. */
  lossSlot: number;
  metricSlot: number;
}

/**
 * The pairwise loss of P pairs: coef [2P] (written) and stats (added into) from values, ref, lens [2P] (chosen
 * rows first, then rejected; lens are answer token counts as f32; ref is read only by sigmoid/hinge/ipo).
 */
export function preferenceLoss(ctx: GpuContext, coef: Tensor, stats: Tensor, values: Tensor, ref: Tensor, lens: Tensor, p: PairLossKernelParams): void {
  const rows = values.size;
  if (rows % 2 !== 0 || coef.size !== rows || ref.size !== rows || lens.size !== rows) {
    throw new Error(`preferenceLoss: coef, values, ref and lens must hold 2·P values (got ${coef.size}, ${values.size}, ${ref.size}, ${lens.size})`);
  }
  if (p.lossSlot >= stats.size || p.metricSlot + PAIR_METRICS.length > stats.size) throw new Error('preferenceLoss: the stats slots lie outside stats');
  if (rows === 0) return;
  ctx.dispatch(
    ctx.kernel(lossSpec),
    { coef, stats, values, refs: ref, lens },
    {
      P: rows / 2,
      mode: MODES[p.loss],
      lossSlot: p.lossSlot,
      metricSlot: p.metricSlot,
      beta: p.beta,
      gamma: p.gamma,
      ftx: p.ftx,
      sign: p.sign,
      scale: p.scale,
    },
    [1],
  );
}
