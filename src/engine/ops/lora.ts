// LoRA linear layer: y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ with the base weight W [N, K] frozen and the adapters
// A [r, K], B [N, r] trained; s (alpha/r or alpha/√r) is the caller's choice. Built on the matmul kernels:
// the rank-r products are thin, and routing them through the same kernels keeps one set of code to tune.
// s·xa·Bᵀ and s·(dOut·B)·A ride in the epilogue of the base products x·Wᵀ and dOut·W (matmul.ts addProduct).
import type { GpuContext } from '../context';
import { numel, shapeText, type Tensor } from '../tensor';
import { matmulNN, matmulNT, matmulTN, type MatmulVariant } from './matmul';

export interface LoraOptions {
  /** Forces the matmul kernel (tests run both); by default the adapter's. */
  variant?: MatmulVariant;
}


interface LoraDims {
  M: number;
  N: number;
  K: number;
  r: number;
}

/** Checks x [..., K], w [N, K], a [r, K], b [N, r] and that each `[name, tensor, cols]` is [..., cols] with M rows. */
function loraDims(
  op: string,
  x: Tensor,
  w: Tensor,
  a: Tensor,
  b: Tensor,
  rowTensors: readonly (readonly [string, Tensor, 'N' | 'K' | 'r'])[],
): LoraDims {
  const all = `x ${shapeText(x, '×')}, w ${shapeText(w, '×')}, a ${shapeText(a, '×')}, b ${shapeText(b, '×')}`;
  if (x.shape.length < 1 || w.shape.length !== 2 || a.shape.length !== 2 || b.shape.length !== 2) {
    throw new Error(`${op}: expected x [..., K], w [N, K], a [r, K], b [N, r]; got ${all}`);
  }
  const K = x.shape[x.shape.length - 1]!;
  const M = numel(x.shape.slice(0, -1));
  const [N, wK] = w.shape as [number, number];
  const [r, aK] = a.shape as [number, number];
  if (wK !== K || aK !== K || b.shape[0] !== N || b.shape[1] !== r) {
    throw new Error(`${op}: shapes do not match (want x [..., K], w [N, K], a [r, K], b [N, r]); got ${all}`);
  }
  const dims: LoraDims = { M, N, K, r };
  for (const [name, t, col] of rowTensors) {
    const cols = dims[col];
    if (t.shape.length < 1 || t.shape[t.shape.length - 1] !== cols || t.size !== M * cols) {
      throw new Error(`${op}: ${name} ${shapeText(t, '×')} should be [..., ${cols}] with ${M} rows for ${all}`);
    }
  }
  for (const t of [x, w, a, b, ...rowTensors.map(([, t]) => t)]) {
    if (t.dtype !== 'f32') throw new Error(`${op}: ${shapeText(t, '×')} is ${t.dtype}; only f32 is supported`);
  }
  return dims;
}

/**
 * out[M, N] = x[M, K]·W[N, K]ᵀ + scale·xa[M, r]·B[N, r]ᵀ, and xa = x·A[r, K]ᵀ (saved for the backward).
 * M may be several leading dims of x, out and xa (e.g. x [B, T, K], out [B, T, N], xa [B, T, r]).
 */
export function loraForward(
  ctx: GpuContext,
  out: Tensor,
  xa: Tensor,
  x: Tensor,
  w: Tensor,
  a: Tensor,
  b: Tensor,
  scale: number,
  opts: LoraOptions = {},
): void {
  const { M, N, K, r } = loraDims('loraForward', x, w, a, b, [
    ['out', out, 'N'],
    ['xa', xa, 'r'],
  ]);
  const { variant } = opts;
  const x2 = x.view([M, K]);
  const xa2 = xa.view([M, r]);
  const out2 = out.view([M, N]);
  matmulNT(ctx, xa2, x2, a, { variant });
  // The rank-r product rides in the base product's epilogue (one dispatch where the kernel fuses it).
  matmulNT(ctx, out2, x2, w, { variant, addProduct: { a: xa2, b, layout: 'NT', alpha: scale } });
}

/**
 * Accumulates the gradients of loraForward (zero them first; W gets none):
 *   dx[M, K] += dOut·W + scale·(dOut·B)·A
 *   dA[r, K] += scale·(dOut·B)ᵀ·x
 *   dB[N, r] += scale·dOutᵀ·xa
 * dOut [..., N], x [..., K], xa [..., r] share their M leading rows.
 */
export function loraBackward(
  ctx: GpuContext,
  dx: Tensor,
  dA: Tensor,
  dB: Tensor,
  dOut: Tensor,
  x: Tensor,
  xa: Tensor,
  w: Tensor,
  a: Tensor,
  b: Tensor,
  scale: number,
  opts: LoraOptions = {},
): void {
  const op = 'loraBackward';
  const { M, N, K, r } = loraDims(op, x, w, a, b, [
    ['dx', dx, 'K'],
    ['dOut', dOut, 'N'],
    ['xa', xa, 'r'],
  ]);
  if (dA.shape.length !== 2 || dA.shape[0] !== r || dA.shape[1] !== K) {
    throw new Error(`${op}: dA ${shapeText(dA, '×')} should be [${r}×${K}] like a ${shapeText(a, '×')}`);
  }
  if (dB.shape.length !== 2 || dB.shape[0] !== N || dB.shape[1] !== r) {
    throw new Error(`${op}: dB ${shapeText(dB, '×')} should be [${N}×${r}] like b ${shapeText(b, '×')}`);
  }
  const { variant } = opts;
  const acc = { accumulate: true, variant };
  const dOut2 = dOut.view([M, N]);
  const x2 = x.view([M, K]);
  const dx2 = dx.view([M, K]);
  // t = dOut·B [M, r], the gradient reaching xa (before the scale).
  const t = ctx.empty([M, r], 'f32', { label: 'LoRA dOut·B' });
  matmulNN(ctx, t, dOut2, b, { variant });
  matmulNN(ctx, dx2, dOut2, w, { ...acc, addProduct: { a: t, b: a, layout: 'NN', alpha: scale } });
  matmulTN(ctx, dA, t, x2, { ...acc, alpha: scale });
  matmulTN(ctx, dB, dOut2, xa.view([M, r]), { ...acc, alpha: scale });
  // Safe before the GPU ran: the pool hands the buffer out again only to work recorded after these dispatches.
  t.release();
}
