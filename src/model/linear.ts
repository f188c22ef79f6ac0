// A linear layer that may carry a LoRA adapter (nn.Linear or GPT-2's Conv1D layout), with LoRA dropout on the
// adapter branch and an accumulating backward; the formulas: docs/model.md ("Linear layers and LoRA").
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { matmulNN, matmulNT, matmulTN, type MatmulOptions } from '../engine/ops/matmul';
import { biasBackward } from '../engine/ops/bias';
import { dropoutBackward, dropoutForward } from '../engine/ops/dropout';
import { f32Parts, type LinearParams } from './params';
import type { LoraModule } from './lora';

export interface LinearGrads {
  dW?: Tensor | undefined; // like the weight
  dBias?: Tensor | undefined; // [out]
  dA?: Tensor | undefined; // [r, in]
  dB?: Tensor | undefined; // [out, r]
}

/**
 * The dropout of one LoRA linear call: element i of the input x, as [M, in] row-major, is kept by
 * Philox(seed, offset + i) with probability 1 − p and scaled by 1/(1 − p). The call draws counters
 * [offset, offset + M·in); give each call its own range.
 */
export interface LinearDropout {
  p: number;
  seed: number;
  offset: number;
}

/** The dropout to apply, or null when there is none to apply (no adapter, no dropout, or p = 0). */
function activeDropout(lora: LoraModule | null, dropout: LinearDropout | null | undefined): LinearDropout | null {
  return lora && dropout && dropout.p > 0 ? dropout : null;
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
 * out [M, out] = the layer applied to x [M, in]. With a LoRA module, returns xa = x·Aᵀ [M, r] (dropout(x)·Aᵀ
 * with `dropout`), which the backward needs (the caller owns it), unless `save` is false; otherwise returns
 * null. The backward must get the same `dropout`.
 */
export function linearForward(
  ctx: GpuContext,
  out: Tensor,
  x: Tensor,
  lin: LinearParams,
  lora: LoraModule | null,
  scale: number,
  save: boolean,
  dropout?: LinearDropout | null,
): Tensor | null {
  const M = check(lin, x, out, 'out');
  const x2 = x.view([M, lin.inFeatures]);
  const y2 = out.view([M, lin.outFeatures]);
  const w = lin.weight.parts[0]!;
  const bias = lin.bias ? f32Parts(lin.bias)[0] : undefined;
  const base = (opts: MatmulOptions) => (lin.layout === 'out_in' ? matmulNT(ctx, y2, x2, w, opts) : matmulNN(ctx, y2, x2, w, opts));
  if (!lora) {
    base({ bias });
    return null;
  }
  const r = lora.a.shape[0]!;
  const xa = ctx.empty([M, r], 'f32', { label: `${lin.module} x·Aᵀ` });
  const drop = activeDropout(lora, dropout);
  if (drop) {
    const xd = ctx.empty([M, lin.inFeatures], 'f32', { label: `${lin.module} dropout(x)` });
    dropoutForward(ctx, xd, x2, drop.p, drop.seed, drop.offset);
    matmulNT(ctx, xa, xd, lora.a);
    xd.release();
  } else {
    matmulNT(ctx, xa, x2, lora.a);
  }
  // y = x·Wᵀ + scale·xa·Bᵀ + b in one dispatch where the matmul kernel fuses its epilogue (matmul.ts).
  base({ bias, addProduct: { a: xa, b: lora.b, layout: 'NT', alpha: scale } });
  if (save) return xa;
  xa.release();
  return null;
}

/**
 * Accumulates the gradients of linearForward given dOut [M, out]: dx [M, in] (when not null) and whichever
 * of grads is given. x and xa are the forward's input and saved x·Aᵀ; `dropout` is the forward's.
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
  dropout?: LinearDropout | null,
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
  // dx += dOut·W (+ scale·t·A fused into the same dispatch when there is LoRA without dropout).
  const dxBase = (opts: MatmulOptions) => {
    if (!dx2) return;
    if (lin.layout === 'out_in') matmulNN(ctx, dx2, dy, w, { ...acc, ...opts });
    else matmulNT(ctx, dx2, dy, w, { ...acc, ...opts });
  };
  if (!lora) {
    dxBase({});
    return;
  }
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
  const drop = activeDropout(lora, dropout);
  if (!drop) {
    if (trainA) matmulTN(ctx, grads.dA!, t, x2, { ...acc, alpha: scale });
    dxBase({ addProduct: { a: t, b: lora.a, layout: 'NN', alpha: scale } });
  } else {
    dxBase({});
    // One [M, in] scratch serves both: first dropout(x) for dA, then scale·t·A for dx's LoRA part.
    const tmp = ctx.empty([M, lin.inFeatures], 'f32', { label: `${lin.module} LoRA dropout scratch` });
    if (trainA) {
      dropoutForward(ctx, tmp, x2, drop.p, drop.seed, drop.offset);
      matmulTN(ctx, grads.dA!, t, tmp, { ...acc, alpha: scale });
    }
    if (dx2) {
      matmulNN(ctx, tmp, t, lora.a, { alpha: scale });
      dropoutBackward(ctx, dx2, tmp, drop.p, drop.seed, drop.offset);
    }
    tmp.release();
  }
  // Safe before the GPU ran: the pool hands the buffer out again only to work recorded after these dispatches.
  t.release();
}
