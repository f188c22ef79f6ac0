// Float64 reference of one AdamW step, transcribed from PyTorch's _single_tensor_adam with decoupled
// weight decay (torch.optim.AdamW, amsgrad=False, maximize=False, capturable=False):
//   param.mul_(1 - lr * weight_decay)
//   exp_avg.lerp_(grad, 1 - beta1)
//   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
//   step_size = lr / (1 - beta1 ** step)
//   denom = (exp_avg_sq.sqrt() / sqrt(1 - beta2 ** step)).add_(eps)
//   param.addcdiv_(exp_avg, denom, value=-step_size)
import type { AdamWHyper } from '../ops/adamw';

export interface AdamWState {
  param: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

/** Returns the state after one step; grad is multiplied by gradScale first (the clipping coefficient). */
export function adamwStepRef(s: AdamWState, grad: Float64Array, h: AdamWHyper, gradScale = 1): AdamWState {
  const n = s.param.length;
  const param = new Float64Array(n);
  const m = new Float64Array(n);
  const v = new Float64Array(n);
  const stepSize = h.lr / (1 - h.beta1 ** h.step);
  const bc2Sqrt = Math.sqrt(1 - h.beta2 ** h.step);
  for (let i = 0; i < n; i++) {
    const g = grad[i]! * gradScale;
    const p = s.param[i]! * (1 - h.lr * h.weightDecay);
    m[i] = s.m[i]! + (1 - h.beta1) * (g - s.m[i]!);
    v[i] = h.beta2 * s.v[i]! + (1 - h.beta2) * g * g;
    param[i] = p - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / bc2Sqrt + h.eps);
  }
  return { param, m, v };
}
