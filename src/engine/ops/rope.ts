// Rotary position embeddings (RoPE) of Llama/Qwen, in Hugging Face's "rotate_half" layout (not interleaved):
// a head vector x = [x1, x2] (halves of head_dim D) at position p becomes
//   [x1·cos − x2·sin, x2·cos + x1·sin],  angle[i] = p · invFreq[i],  i < D/2.
// The cos/sin tables are computed once in float64 on the CPU and uploaded as f32.
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { tensorText, type Tensor } from '../tensor';
import forwardSrc from '../../../shaders/rope_forward.wgsl?raw';
import backwardSrc from '../../../shaders/rope_backward.wgsl?raw';

const WG = 256;

export interface RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface RopeTable {
  /** [maxPositions, headDim/2] f32: cos(p · invFreq[i]). */
  cos: Tensor;
  /** [maxPositions, headDim/2] f32: sin(p · invFreq[i]). */
  sin: Tensor;
  headDim: number;
  maxPositions: number;
}

const PARAMS = [
  ['n', 'u32'],
  ['half', 'u32'],
  ['heads', 'u32'],
  ['maxPositions', 'u32'],
] as const;

const forwardSpec: KernelSpec = {
  name: 'rope_forward',
  source: forwardSrc,
  bindings: [rw('out'), ro('x'), ro('positions', 'i32'), ro('cosTable'), ro('sinTable')],
  params: PARAMS,
  defines: { WG, OUT: 'out' },
};

/** The same shader rotating x in place: x is bound once, read_write. */
const forwardInPlaceSpec: KernelSpec = {
  name: 'rope_forward_inplace',
  source: forwardSrc,
  bindings: [rw('x'), ro('positions', 'i32'), ro('cosTable'), ro('sinTable')],
  params: PARAMS,
  defines: { WG, OUT: 'x' },
};

const backwardSpec: KernelSpec = {
  name: 'rope_backward',
  source: backwardSrc,
  bindings: [rw('dx'), ro('dOut'), ro('positions', 'i32'), ro('cosTable'), ro('sinTable')],
  params: PARAMS,
  defines: { WG },
};

/**
 * Inverse frequencies [headDim/2], float64, as Hugging Face transformers computes them:
 * default `1 / theta^(2i/headDim)`; with llama3 scaling (`_compute_llama3_parameters`), with
 * wavelen = 2π / invFreq, lowWavelen = original / lowFreqFactor, highWavelen = original / highFreqFactor:
 *   wavelen < highWavelen → unchanged;  wavelen > lowWavelen → invFreq / factor;
 *   otherwise → (1 − smooth)·invFreq/factor + smooth·invFreq, smooth = (original/wavelen − low) / (high − low).
 */
export function ropeInvFreq(headDim: number, theta: number, scaling?: RopeScaling): Float64Array {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
    throw new Error(`ropeInvFreq: headDim ${headDim} must be a positive even integer`);
  }
  if (!(theta > 0)) throw new Error(`ropeInvFreq: theta ${theta} must be positive`);
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  if (!scaling) return inv;
  if (scaling.type !== 'llama3') throw new Error(`ropeInvFreq: unknown scaling type ${String(scaling.type)}`);
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: original } = scaling;
  if (!(factor > 0) || !(original > 0) || !(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor)) {
    throw new Error(
      `ropeInvFreq: invalid llama3 scaling (factor ${factor}, lowFreqFactor ${lowFreqFactor}, highFreqFactor ${highFreqFactor}, original ${original})`,
    );
  }
  const lowFreqWavelen = original / lowFreqFactor;
  const highFreqWavelen = original / highFreqFactor;
  for (let i = 0; i < half; i++) {
    const f = inv[i]!;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) continue;
    if (wavelen > lowFreqWavelen) {
      inv[i] = f / factor;
    } else {
      const smooth = (original / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      inv[i] = ((1 - smooth) * f) / factor + smooth * f;
    }
  }
  return inv;
}

/** cos/sin tables [maxPositions, headDim/2], computed in float64 and uploaded as persistent f32 tensors. */
export function createRopeTable(
  ctx: GpuContext,
  headDim: number,
  maxPositions: number,
  theta: number,
  scaling?: RopeScaling,
): RopeTable {
  if (!Number.isInteger(maxPositions) || maxPositions <= 0) {
    throw new Error(`createRopeTable: maxPositions ${maxPositions} must be a positive integer`);
  }
  const inv = ropeInvFreq(headDim, theta, scaling);
  const half = headDim / 2;
  const cos = new Float32Array(maxPositions * half);
  const sin = new Float32Array(maxPositions * half);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * inv[i]!;
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  const opts = { persistent: true };
  return {
    cos: ctx.upload([maxPositions, half], cos, 'f32', { ...opts, label: `RoPE cos table [${maxPositions}×${half}]` }),
    sin: ctx.upload([maxPositions, half], sin, 'f32', { ...opts, label: `RoPE sin table [${maxPositions}×${half}]` }),
    headDim,
    maxPositions,
  };
}


/** positions are [B, T], or flat [B·T] as a batch uploads them. */
const isBT = (p: Tensor, B: number | undefined, T: number | undefined): boolean =>
  B !== undefined && T !== undefined && (p.shape.length === 2 ? p.shape[0] === B && p.shape[1] === T : p.shape.length === 1 && p.shape[0] === B * T);

/** Checks x [B, T, H, D] against positions [B, T] and the table; returns the sizes. */
function checkShapes(op: string, x: Tensor, xName: string, positions: Tensor, table: RopeTable): { B: number; T: number; H: number; D: number } {
  const D = table.headDim;
  const [B, T, H, Dx] = x.shape;
  const bad =
    x.shape.length !== 4 ||
    x.dtype !== 'f32' ||
    Dx !== D ||
    positions.dtype !== 'i32' ||
    !isBT(positions, B, T) ||
    table.cos.size !== table.maxPositions * (D / 2) ||
    table.sin.size !== table.maxPositions * (D / 2);
  if (bad || B === undefined || T === undefined || H === undefined) {
    throw new Error(
      `${op}: ${xName} ${tensorText(x)} must be f32 [B, T, H, ${D}] with positions i32 [B, T] or [B·T] (got ${tensorText(positions)}) and a table of head_dim ${D} (cos ${tensorText(table.cos)}, sin ${tensorText(table.sin)})`,
    );
  }
  return { B, T, H, D };
}

function dispatchRope(
  ctx: GpuContext,
  spec: KernelSpec,
  bindings: Record<string, Tensor>,
  s: { B: number; T: number; H: number; D: number },
  table: RopeTable,
): void {
  const pairs = s.B * s.T * s.H * (s.D / 2);
  const params = { n: pairs, half: s.D / 2, heads: s.H, maxPositions: table.maxPositions };
  ctx.dispatch(ctx.kernel(spec), { ...bindings, cosTable: table.cos, sinTable: table.sin }, params, grid1d(pairs, WG));
}

/**
 * out [B, T, H, D] = RoPE(x [B, T, H, D]) at positions i32 [B, T] (or flat [B·T]). `out` may be `x` (rotates in place).
 * A position outside [0, table.maxPositions) yields NaN.
 */
export function ropeForward(ctx: GpuContext, out: Tensor, x: Tensor, positions: Tensor, table: RopeTable): void {
  const s = checkShapes('ropeForward', x, 'x', positions, table);
  if (out.dtype !== 'f32' || out.shape.length !== 4 || out.shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(`ropeForward: out ${tensorText(out)} must match x ${tensorText(x)}`);
  }
  if (out.buffer === x.buffer) dispatchRope(ctx, forwardInPlaceSpec, { x, positions }, s, table);
  else dispatchRope(ctx, forwardSpec, { out, x, positions }, s, table);
}

/** dx [B, T, H, D] += dOut [B, T, H, D] rotated by −angle (accumulates; zero dx first). */
export function ropeBackward(ctx: GpuContext, dx: Tensor, dOut: Tensor, positions: Tensor, table: RopeTable): void {
  const s = checkShapes('ropeBackward', dOut, 'dOut', positions, table);
  if (dx.dtype !== 'f32' || dx.shape.length !== 4 || dx.shape.some((d, i) => d !== dOut.shape[i])) {
    throw new Error(`ropeBackward: dx ${tensorText(dx)} must match dOut ${tensorText(dOut)}`);
  }
  if (dx.buffer === dOut.buffer) throw new Error('ropeBackward: dx and dOut must be different tensors (dx accumulates)');
  dispatchRope(ctx, backwardSpec, { dx, dOut, positions }, s, table);
}
