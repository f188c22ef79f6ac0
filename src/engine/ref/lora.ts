// Float64 reference for the LoRA linear layer y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ.
// x [M, K], W [N, K], A [r, K], B [N, r]; all row-major.
import { matmulNNRef, matmulNTRef, matmulTNRef } from './matmul';

export function loraForwardRef(
  x: Float64Array,
  w: Float64Array,
  a: Float64Array,
  b: Float64Array,
  M: number,
  N: number,
  K: number,
  r: number,
  scale: number,
): { out: Float64Array; xa: Float64Array } {
  const xa = matmulNTRef(x, a, 1, M, r, K);
  const base = matmulNTRef(x, w, 1, M, N, K);
  const low = matmulNTRef(xa, b, 1, M, N, r);
  const out = base.map((v, i) => v + scale * low[i]!);
  return { out, xa };
}

/** Gradients of Σ out·dOut: dx = dOut·W + s·(dOut·B)·A, dA = s·(dOut·B)ᵀ·x, dB = s·dOutᵀ·(x·Aᵀ). */
export function loraBackwardRef(
  dOut: Float64Array,
  x: Float64Array,
  w: Float64Array,
  a: Float64Array,
  b: Float64Array,
  M: number,
  N: number,
  K: number,
  r: number,
  scale: number,
): { dx: Float64Array; dA: Float64Array; dB: Float64Array } {
  const xa = matmulNTRef(x, a, 1, M, r, K);
  const t = matmulNNRef(dOut, b, 1, M, r, N); // dOut·B [M, r]
  const dxBase = matmulNNRef(dOut, w, 1, M, K, N);
  const dxLow = matmulNNRef(t, a, 1, M, K, r);
  const dx = dxBase.map((v, i) => v + scale * dxLow[i]!);
  const dA = matmulTNRef(t, x, r, K, M).map((v) => scale * v);
  const dB = matmulTNRef(dOut, xa, N, r, M).map((v) => scale * v);
  return { dx, dA, dB };
}
