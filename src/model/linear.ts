// A linear layer that may carry a LoRA adapter, over tokens x [M, in] (M = all leading dims):
//   y = x·Wᵀ + b                 (W [out, in], Hugging Face nn.Linear)
//   y = x·W + b                  (W [in, out], GPT-2's Conv1D: the checkpoint's layout, used as stored)
//   y += scale·(x·Aᵀ)·Bᵀ         with LoRA A [r, in], B [out, r] in both layouts (as PEFT does)
// The backward always accumulates: dx += ∂y/∂x·dy when dx is given, and each gradient that is given
// (dW when the weight trains, dBias, dA/dB when the adapter trains) += its part; a missing one is frozen.
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { matmulNN, matmulNT, matmulTN } from '../engine/ops/matmul';
import { biasAdd, biasBackward } from '../engine/ops/bias';
import type { LinearParams } from './params';
import type { LoraModule } from './lora';

export interface LinearGrads {
  dW?: Tensor | undefined; // like the weight
  dBias?: Tensor | undefined; // [out]
  dA?: Tensor | undefined; // [r, in]
  dB?: Tensor | undefined; // [out, r]
}

const rows = (t: Tensor): number => t.size / t.shape[t.shape.length - 1]!;

function check(lin: LinearParams, x: Tensor, y: Tensor, what: string): number {
  const M = rows(x);
  if (x.shape[x.shape.length - 1] !== lin.inFeatures || y.shape[y.shape.length - 1] !== lin.outFeatures || rows(y) !== M) {
    throw new Error(
      `${lin.module}: ${what} [${y.shape.join('×')}] and x [${x.shape.join('×')}] do not fit a linear layer ${lin.inFeatures} → ${lin.outFeatures}`,
    );
  }
  return M;
}

/**
 * out [M, out] = the layer applied to x [M, in]. With a LoRA module, returns xa = x·Aᵀ [M, r], which the
 * backward needs (the caller owns it), unless `save` is false; otherwise returns null.
 */
export function linearForward(
  ctx: GpuContext,
  out: Tensor,
  x: Tensor,
  lin: LinearParams,
  lora: LoraModule | null,
  scale: number,
  save: boolean,
): Tensor | null {
  const M = check(lin, x, out, 'out');
  const x2 = x.view([M, lin.inFeatures]);
  const y2 = out.view([M, lin.outFeatures]);
  const w = lin.weight.parts[0]!;
  if (lin.layout === 'out_in') matmulNT(ctx, y2, x2, w);
  else matmulNN(ctx, y2, x2, w);
  if (lin.bias) biasAdd(ctx, y2, lin.bias.parts[0]!);
  if (!lora) return null;
  const r = lora.a.shape[0]!;
  const xa = ctx.empty([M, r], 'f32', { label: `${lin.module} x·Aᵀ` });
  matmulNT(ctx, xa, x2, lora.a);
  matmulNT(ctx, y2, xa, lora.b, { accumulate: true, alpha: scale });
  if (save) return xa;
  xa.release();
  return null;
}

/**
 * Accumulates the gradients of linearForward given dOut [M, out]: dx [M, in] (when not null) and whichever
 * of grads is given. x and xa are the forward's input and saved x·Aᵀ.
 */
export function linearBackward(
  ctx: GpuContext,
  dx: Tensor | null,
  grads: LinearGrads,
  dOut: Tensor,
  x: Tensor,
  xa: Tensor | null,
  lin: LinearParams,
  lora: LoraModule | null,
  scale: number,
): void {
  const M = check(lin, x, dOut, 'dOut');
  const x2 = x.view([M, lin.inFeatures]);
  const dy = dOut.view([M, lin.outFeatures]);
  const dx2 = dx?.view([M, lin.inFeatures]);
  const w = lin.weight.parts[0]!;
  const acc = { accumulate: true };
  if (grads.dW) {
    if (lin.layout === 'out_in') matmulTN(ctx, grads.dW, dy, x2, acc);
    else matmulTN(ctx, grads.dW, x2, dy, acc);
  }
  if (grads.dBias) biasBackward(ctx, grads.dBias, dy);
  if (dx2) {
    if (lin.layout === 'out_in') matmulNN(ctx, dx2, dy, w, acc);
    else matmulNT(ctx, dx2, dy, w, acc);
  }
  if (!lora) return;
  const trainA = grads.dA !== undefined;
  const trainB = grads.dB !== undefined;
  if (trainB) {
    if (!xa) throw new Error(`${lin.module}: the forward saved no x·Aᵀ for the LoRA backward`);
    matmulTN(ctx, grads.dB!, dy, xa.view([M, xa.shape[xa.shape.length - 1]!]), { ...acc, alpha: scale });
  }
  if (!trainA && !dx2) return;
  // t = dOut·B [M, r], the gradient reaching x·Aᵀ (before the scale).
  const r = lora.a.shape[0]!;
  const t = ctx.empty([M, r], 'f32', { label: `${lin.module} dOut·B` });
  matmulNN(ctx, t, dy, lora.b);
  if (trainA) matmulTN(ctx, grads.dA!, t, x2, { ...acc, alpha: scale });
  if (dx2) matmulNN(ctx, dx2, t, lora.a, { ...acc, alpha: scale });
  // Safe before the GPU ran: the pool hands the buffer out again only to work recorded after these dispatches.
  t.release();
}
