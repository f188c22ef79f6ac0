// RMSNorm (Llama, Qwen, Qwen3's per-head q/k norm, Gemma's `plusOne` gain) and LayerNorm (GPT-2) over the last dim:
// row kernels for the forward and dx, two passes for dWeight/dBias (docs/kernels.md, "Norms").
import type { GpuContext } from '../context';
import { grid1d, rowLayout } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import rmsForwardSrc from '../../../shaders/rmsnorm_forward.wgsl?raw';
import rmsBackwardSrc from '../../../shaders/rmsnorm_backward.wgsl?raw';
import rmsPartialSrc from '../../../shaders/rmsnorm_dweight_partial.wgsl?raw';
import reduceSrc from '../../../shaders/rmsnorm_dweight_reduce.wgsl?raw';
import lnForwardSrc from '../../../shaders/layernorm_forward.wgsl?raw';
import lnBackwardSrc from '../../../shaders/layernorm_backward.wgsl?raw';
import lnPartialSrc from '../../../shaders/layernorm_dparams_partial.wgsl?raw';

/**
 * Threads per workgroup of the row kernels. 64 keeps every row kernel to one or two barriers per row sum on
 * small workgroups, which matters on CPU adapters (SwiftShader, where a barrier in a 256-thread workgroup
 * costs about a millisecond); wide rows still get 64 lanes.
 */
const WG = 64;
/** Threads per workgroup of the column kernels (dWeight partials and their reduction). */
const COL_WG = 64;

/**
 * Rows per block of the dWeight first pass: at least 32, and few enough blocks (≤ ~256) that the second
 * pass stays short and the scratch tensor stays at most ~256 × C floats.
 */
function rowsPerBlockFor(rows: number): number {
  return Math.max(32, Math.ceil(rows / 256));
}

const rowParams = [
  ['rows', 'u32'],
  ['C', 'u32'],
  ['eps', 'f32'],
] as const;

const rmsForwardSpec: KernelSpec = {
  name: 'rmsnorm_forward',
  source: rmsForwardSrc,
  bindings: [rw('out'), rw('rstd'), ro('x'), ro('weight')],
  params: rowParams,
  defines: { W: WG, R: 1, WG, PLUS_ONE: '' },
};

const rmsBackwardSpec: KernelSpec = {
  name: 'rmsnorm_backward',
  source: rmsBackwardSrc,
  bindings: [rw('dx'), ro('dOut'), ro('x'), ro('weight'), ro('rstd')],
  params: [
    ['rows', 'u32'],
    ['C', 'u32'],
  ],
  defines: { W: WG, R: 1, WG, PLUS_ONE: '' },
};

/** RMSNorm's options: Gemma's gain 1 + weight (the weight is stored as the offset from 1). */
export interface RmsnormOptions {
  plusOne?: boolean;
}

const gainDefine = (o: RmsnormOptions | undefined) => ({ PLUS_ONE: o?.plusOne ? ' + 1.0' : '' });

const rmsPartialSpec: KernelSpec = {
  name: 'rmsnorm_dweight_partial',
  source: rmsPartialSrc,
  bindings: [rw('partial'), ro('dOut'), ro('x'), ro('rstd')],
  params: [
    ['rows', 'u32'],
    ['C', 'u32'],
    ['rowsPerBlock', 'u32'],
  ],
  defines: { WG: COL_WG },
};

const reduceSpec: KernelSpec = {
  name: 'rmsnorm_dweight_reduce',
  source: reduceSrc,
  bindings: [rw('dWeight'), ro('partial')],
  params: [
    ['n', 'u32'],
    ['blocks', 'u32'],
    ['stride', 'u32'],
    ['offset', 'u32'],
  ],
  defines: { WG: COL_WG },
};

const lnForwardSpec: KernelSpec = {
  name: 'layernorm_forward',
  source: lnForwardSrc,
  bindings: [rw('out'), rw('mean'), rw('rstd'), ro('x'), ro('weight'), ro('bias')],
  params: rowParams,
  defines: { W: WG, R: 1, WG },
};

const lnBackwardSpec: KernelSpec = {
  name: 'layernorm_backward',
  source: lnBackwardSrc,
  bindings: [rw('dx'), ro('dOut'), ro('x'), ro('weight'), ro('mean'), ro('rstd')],
  params: [
    ['rows', 'u32'],
    ['C', 'u32'],
  ],
  defines: { W: WG, R: 1, WG },
};

const lnPartialSpec: KernelSpec = {
  name: 'layernorm_dparams_partial',
  source: lnPartialSrc,
  bindings: [rw('partial'), ro('dOut'), ro('x'), ro('mean'), ro('rstd')],
  params: [
    ['rows', 'u32'],
    ['C', 'u32'],
    ['rowsPerBlock', 'u32'],
  ],
  defines: { WG: COL_WG },
};

// ---- shape checks ---------------------------------------------------------------------------------------

const lastDim = (t: Tensor): number => t.shape[t.shape.length - 1] ?? 1;

/**
 * Checks the tensors of a norm over the last dim of x [..., C]: `full` tensors have x's shape (same element
 * count and last dim), `perRow` tensors one value per row, `perCol` tensors C values. All f32.
 */
function normShapes(
  op: string,
  x: Tensor,
  full: Record<string, Tensor>,
  perRow: Record<string, Tensor>,
  perCol: Record<string, Tensor>,
): { rows: number; C: number } {
  const C = lastDim(x);
  const rows = C === 0 ? 0 : x.size / C;
  const all = { x, ...full, ...perRow, ...perCol };
  for (const [name, t] of Object.entries(all)) {
    if (t.dtype !== 'f32') throw new Error(`${op}: ${name} is ${t.dtype}, expected f32`);
  }
  for (const [name, t] of Object.entries(full)) {
    if (t.size !== x.size || lastDim(t) !== C) throw new Error(`${op}: ${name} ${shapeText(t)} does not match x ${shapeText(x)}`);
  }
  for (const [name, t] of Object.entries(perRow)) {
    if (t.size !== rows) throw new Error(`${op}: ${name} ${shapeText(t)} should hold one value per row of x ${shapeText(x)} (${rows})`);
  }
  for (const [name, t] of Object.entries(perCol)) {
    if (t.size !== C) throw new Error(`${op}: ${name} ${shapeText(t)} should hold C = ${C} values for x ${shapeText(x)}`);
  }
  return { rows, C };
}

function checkEps(op: string, eps: number): void {
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new Error(`${op}: eps must be a finite number ≥ 0, got ${eps}`);
}

function rowGrid(ctx: GpuContext, rows: number, R: number): [number, number, number] {
  return grid1d(Math.ceil(rows / R), 1, ctx.limits.maxComputeWorkgroupsPerDimension);
}

/**
 * Sums `partial` [blocks, stride] column-wise over blocks and adds columns [offset, offset + n) to `into`.
 */
function reducePartials(ctx: GpuContext, into: Tensor, partial: Tensor, n: number, blocks: number, stride: number, offset: number): void {
  ctx.dispatch(
    ctx.kernel(reduceSpec),
    { dWeight: into, partial },
    { n, blocks, stride, offset },
    grid1d(n, COL_WG, ctx.limits.maxComputeWorkgroupsPerDimension),
  );
}

// ---- RMSNorm ----------------------------------------------------------------------------------------------

/**
 * out[rows, C] = x · rstd · weight[C] (plusOne: · (1 + weight[C])), rstd[rows] = 1 / sqrt(mean(x²) + eps) (saved
 * for the backward).
 */
export function rmsnormForward(ctx: GpuContext, out: Tensor, rstd: Tensor, x: Tensor, weight: Tensor, eps: number, opts?: RmsnormOptions): void {
  const { rows, C } = normShapes('rmsnormForward', x, { out }, { rstd }, { weight });
  checkEps('rmsnormForward', eps);
  if (rows === 0) return;
  const L = rowLayout(C, WG);
  ctx.dispatch(ctx.kernel(rmsForwardSpec, { ...L, ...gainDefine(opts) }), { out, rstd, x, weight }, { rows, C, eps }, rowGrid(ctx, rows, L.R));
}

/**
 * dx[rows, C] += ∂out/∂x · dOut, dWeight[C] += Σ_rows dOut · x · rstd (both accumulate; zero them first; with
 * plusOne the gradient of weight is that of 1 + weight). rstd[rows] is the forward's. Uses a scratch tensor of
 * about min(rows / 32, 256) × C floats.
 */
export function rmsnormBackward(
  ctx: GpuContext,
  dx: Tensor,
  dWeight: Tensor,
  dOut: Tensor,
  x: Tensor,
  weight: Tensor,
  rstd: Tensor,
  opts?: RmsnormOptions,
): void {
  const { rows, C } = normShapes('rmsnormBackward', x, { dx, dOut }, { rstd }, { dWeight, weight });
  if (rows === 0) return;
  const L = rowLayout(C, WG);
  ctx.dispatch(ctx.kernel(rmsBackwardSpec, { ...L, ...gainDefine(opts) }), { dx, dOut, x, weight, rstd }, { rows, C }, rowGrid(ctx, rows, L.R));

  const rowsPerBlock = rowsPerBlockFor(rows);
  const blocks = Math.ceil(rows / rowsPerBlock);
  const partial = ctx.empty([blocks, C], 'f32', { label: 'rmsnorm dWeight partials' });
  ctx.dispatch(ctx.kernel(rmsPartialSpec), { partial, dOut, x, rstd }, { rows, C, rowsPerBlock }, [Math.ceil(C / COL_WG), blocks, 1]);
  reducePartials(ctx, dWeight, partial, C, blocks, C, 0);
  // Safe before the recorded work runs: a later user of the pooled buffer is recorded after these dispatches.
  partial.release();
}

// ---- LayerNorm --------------------------------------------------------------------------------------------

/**
 * out[rows, C] = (x − mean) · rstd · weight[C] + bias[C]; mean[rows] and rstd[rows] = 1 / sqrt(var + eps)
 * (biased variance) are saved for the backward.
 */
export function layernormForward(
  ctx: GpuContext,
  out: Tensor,
  mean: Tensor,
  rstd: Tensor,
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps: number,
): void {
  const { rows, C } = normShapes('layernormForward', x, { out }, { mean, rstd }, { weight, bias });
  checkEps('layernormForward', eps);
  if (rows === 0) return;
  const L = rowLayout(C, WG);
  ctx.dispatch(ctx.kernel(lnForwardSpec, L), { out, mean, rstd, x, weight, bias }, { rows, C, eps }, rowGrid(ctx, rows, L.R));
}

/**
 * dx[rows, C] += ∂out/∂x · dOut, dWeight[C] += Σ_rows dOut · (x − mean) · rstd, dBias[C] += Σ_rows dOut
 * (all accumulate; zero them first). mean and rstd [rows] are the forward's. Uses a scratch tensor of about
 * min(rows / 32, 256) × 2C floats.
 */
export function layernormBackward(
  ctx: GpuContext,
  dx: Tensor,
  dWeight: Tensor,
  dBias: Tensor,
  dOut: Tensor,
  x: Tensor,
  weight: Tensor,
  mean: Tensor,
  rstd: Tensor,
): void {
  const { rows, C } = normShapes('layernormBackward', x, { dx, dOut }, { mean, rstd }, { dWeight, dBias, weight });
  if (rows === 0) return;
  const L = rowLayout(C, WG);
  ctx.dispatch(ctx.kernel(lnBackwardSpec, L), { dx, dOut, x, weight, mean, rstd }, { rows, C }, rowGrid(ctx, rows, L.R));

  const rowsPerBlock = rowsPerBlockFor(rows);
  const blocks = Math.ceil(rows / rowsPerBlock);
  const partial = ctx.empty([blocks, 2 * C], 'f32', { label: 'layernorm dWeight/dBias partials' });
  ctx.dispatch(ctx.kernel(lnPartialSpec), { partial, dOut, x, mean, rstd }, { rows, C, rowsPerBlock }, [Math.ceil(C / COL_WG), blocks, 1]);
  reducePartials(ctx, dWeight, partial, C, blocks, 2 * C, 0);
  reducePartials(ctx, dBias, partial, C, blocks, 2 * C, C);
  partial.release();
}
