// A reward model's head, one scalar per sequence from one row of the hidden states each (the row of the
// sequence's last token; src/model/reward-head.ts picks them):
//   rewardForward(out, hidden, rows, w)                  out[b] = w · hidden[rows[b], :]
//   rewardBackward(dW, dHidden, coef, hidden, rows, w)   dW += Σ_b coef[b] · hidden[rows[b], :],
//                                                        dHidden[rows[b], :] += coef[b] · w
// The forward is one workgroup per sequence (workgroupSum's tree), the backward one invocation per weight and
// one per (sequence, hidden unit).
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import type { Tensor } from '../tensor';
import forwardSrc from '../../../shaders/reward_head_forward.wgsl?raw';
import backwardWSrc from '../../../shaders/reward_head_backward_w.wgsl?raw';
import backwardHSrc from '../../../shaders/reward_head_backward_h.wgsl?raw';

const WG = 64;

const forwardSpec: KernelSpec = {
  name: 'reward_head_forward',
  source: forwardSrc,
  bindings: [rw('out'), ro('hidden'), ro('rows', 'u32'), ro('w')],
  params: [['H', 'u32']],
  defines: { WG },
};

const backwardWSpec: KernelSpec = {
  name: 'reward_head_backward_w',
  source: backwardWSrc,
  bindings: [rw('dW'), ro('coef'), ro('hidden'), ro('rows', 'u32')],
  params: [
    ['H', 'u32'],
    ['B', 'u32'],
  ],
  defines: { WG },
};

const backwardHSpec: KernelSpec = {
  name: 'reward_head_backward_h',
  source: backwardHSrc,
  bindings: [rw('dHidden'), ro('coef'), ro('rows', 'u32'), ro('w')],
  params: [
    ['n', 'u32'],
    ['H', 'u32'],
  ],
  defines: { WG },
};

/** out[B] = w[H] · hidden[rows[b], :] for hidden [N, H], rows u32 [B] (row indices into N). */
export function rewardForward(ctx: GpuContext, out: Tensor, hidden: Tensor, rows: Tensor, w: Tensor): void {
  const H = w.size;
  if (hidden.size % H !== 0 || rows.size !== out.size || rows.dtype !== 'u32') throw new Error('rewardForward: hidden [N, H], rows u32 [B] and out [B] expected');
  if (out.size === 0) return;
  ctx.dispatch(ctx.kernel(forwardSpec), { out, hidden, rows, w }, { H }, [out.size]);
}

/**
 * The head's backward (accumulates): dW[H] += Σ_b coef[b] · hidden[rows[b]] (skipped when dW is undefined),
 * dHidden [N, H] at rows[b] += coef[b] · w, where coef[B] = dLoss/dreward[b]. Rows must be distinct.
 */
export function rewardBackward(ctx: GpuContext, dW: Tensor | undefined, dHidden: Tensor, coef: Tensor, hidden: Tensor, rows: Tensor, w: Tensor): void {
  const H = w.size;
  const B = rows.size;
  if (coef.size !== B || dHidden.size !== hidden.size) throw new Error('rewardBackward: coef [B] and dHidden like hidden expected');
  if (B === 0) return;
  if (dW) ctx.dispatch(ctx.kernel(backwardWSpec), { dW, coef, hidden, rows }, { H, B }, [Math.ceil(H / WG)]);
  const n = B * H;
  ctx.dispatch(ctx.kernel(backwardHSpec), { dHidden, coef, rows, w }, { n, H }, grid1d(n, WG, ctx.limits.maxComputeWorkgroupsPerDimension));
}
