// Causal self-attention with grouped-query heads (GQA) and a key padding mask, the straightforward way:
// one workgroup per query row for the forward pass and for dq, one per key row for dk/dv (no float
// atomics). Scores are recomputed, never stored, so memory is O(B·H·T) besides the inputs.
// The model runs the tiled kernels (src/engine/ops/flash-attention.ts, same API and semantics); these row
// kernels stay as the benchmark's baseline (bench/attention.ts) and as a second implementation the flash
// tests compare with. Their shaders are in bench/shaders/; the backward's first step (lse and Δ per row) is
// the engine's attentionBackwardDelta, which the flash backward uses too.
import type { GpuContext } from '../src/engine/context';
import { grid1d } from '../src/engine/grid';
import { ro, rw, type KernelSpec } from '../src/engine/kernel';
import type { Tensor } from '../src/engine/tensor';
import { checkDistinct, checkOutput, dims, type Dims } from '../src/engine/ops/attention-checks';
import { ATTENTION_BACKWARD_INPUTS, attentionBackwardDelta, EMPTY_ROW_LSE } from '../src/engine/ops/flash-attention';
import forwardSrc from './shaders/attention_forward.wgsl?raw';
import dqSrc from './shaders/attention_backward_dq.wgsl?raw';
import dkdvSrc from './shaders/attention_backward_dkdv.wgsl?raw';

export { EMPTY_ROW_LSE };

/** Invocations per workgroup of the row kernels (a power of two: the forward reduces over it as a tree). */
const WG = 64;

const SHAPE_PARAMS = [
  ['B', 'u32'],
  ['T', 'u32'],
  ['S', 'u32'],
  ['H', 'u32'],
  ['Hkv', 'u32'],
  ['D', 'u32'],
  ['hasMask', 'u32'],
  ['rows', 'u32'],
  ['scale', 'f32'],
] as const;

const DEFINES = { WG, MAXD: 64, SLOTS: 64, EMPTY_LSE: EMPTY_ROW_LSE.toExponential() };

const forwardSpec: KernelSpec = {
  name: 'attention_forward',
  source: forwardSrc,
  bindings: [rw('out'), rw('lse'), ro('q'), ro('k'), ro('v'), ro('keyMask', 'i32')],
  params: SHAPE_PARAMS,
  defines: DEFINES,
};

const dqSpec: KernelSpec = {
  name: 'attention_backward_dq',
  source: dqSrc,
  bindings: [rw('dq'), ...ATTENTION_BACKWARD_INPUTS],
  params: SHAPE_PARAMS,
  defines: DEFINES,
};

const dkdvSpec: KernelSpec = {
  name: 'attention_backward_dkdv',
  source: dkdvSrc,
  bindings: [rw('dk'), rw('dv'), ...ATTENTION_BACKWARD_INPUTS],
  params: SHAPE_PARAMS,
  defines: DEFINES,
};

function defines(D: number): Record<string, number> {
  const maxD = Math.max(32, 2 ** Math.ceil(Math.log2(D)));
  return { MAXD: maxD, SLOTS: Math.max(WG, maxD) };
}

/**
 * The grid for `outer` × `inner` rows, one workgroup each: [inner, outer] (e.g. [T, B·H]), whose flat index
 * wid.x + wid.y·nwg.x is the row index; past the per-dimension limit, the equivalent grid1d layout.
 */
function rowGrid(ctx: GpuContext, inner: number, outer: number): [number, number, number] {
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  return inner <= max && outer <= max ? [inner, outer, 1] : grid1d(inner * outer, 1, max);
}

function params(d: Dims, rows: number, hasMask: boolean, scale: number): Record<string, number> {
  return { B: d.B, T: d.T, S: d.S, H: d.H, Hkv: d.Hkv, D: d.D, hasMask: hasMask ? 1 : 0, rows, scale };
}

/**
 * out [B, T, H, D], lse [B, H, T] = causal attention of q [B, T, H, D] over k, v [B, S, Hkv, D], S ≥ T
 * (the queries are the last T positions: query t sees keys s ≤ t + S − T). keyMask i32 [B, S] (or [B·S]):
 * 0 marks padding, never attended; null attends to every key. A query that sees no key gets out = 0 and
 * lse = EMPTY_ROW_LSE.
 */
export function attentionForward(
  ctx: GpuContext,
  out: Tensor,
  lse: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  keyMask: Tensor | null,
  scale: number,
): void {
  const op = 'attentionForward';
  const d = dims(op, q, k, v, keyMask);
  checkOutput(op, 'out', out, q.shape);
  checkOutput(op, 'lse', lse, [d.B, d.H, d.T]);
  checkDistinct(op, { out, lse }, { q, k, v, keyMask });
  const rows = d.B * d.H * d.T;
  ctx.dispatch(
    ctx.kernel(forwardSpec, defines(d.D)),
    { out, lse, q, k, v, keyMask: keyMask ?? q },
    params(d, rows, keyMask !== null, scale),
    rowGrid(ctx, d.T, d.B * d.H),
  );
}

/**
 * dq [B, T, H, D], dk and dv [B, S, Hkv, D] += the gradients of attentionForward given dOut [B, T, H, D]
 * and the forward's out and lse (accumulates; zero the gradients first). dk/dv sum over the query heads
 * that share each kv head.
 */
export function attentionBackward(
  ctx: GpuContext,
  dq: Tensor,
  dk: Tensor,
  dv: Tensor,
  dOut: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  keyMask: Tensor | null,
  scale: number,
): void {
  const op = 'attentionBackward';
  const d = dims(op, q, k, v, keyMask);
  checkOutput(op, 'dq', dq, q.shape);
  checkOutput(op, 'dk', dk, k.shape);
  checkOutput(op, 'dv', dv, k.shape);
  checkOutput(op, 'dOut', dOut, q.shape);
  checkOutput(op, 'out', out, q.shape);
  checkOutput(op, 'lse', lse, [d.B, d.H, d.T]);
  checkDistinct(op, { dq, dk, dv }, { dOut, q, k, v, out, lse, keyMask });

  const rows = d.B * d.H * d.T;
  const stats = ctx.empty([rows, 2], 'f32', { label: 'attention backward lse and Δ' });
  attentionBackwardDelta(ctx, stats, dOut, out, lse, d);
  const mask = keyMask ?? q;
  const hasMask = keyMask !== null;
  ctx.dispatch(
    ctx.kernel(dqSpec, defines(d.D)),
    { dq, dOut, q, k, v, stats, keyMask: mask },
    params(d, rows, hasMask, scale),
    rowGrid(ctx, d.T, d.B * d.H),
  );
  ctx.dispatch(
    ctx.kernel(dkdvSpec, defines(d.D)),
    { dk, dv, dOut, q, k, v, stats, keyMask: mask },
    params(d, d.B * d.Hkv * d.S, hasMask, scale),
    rowGrid(ctx, d.S, d.B * d.Hkv),
  );
  // Back to the pool now: whoever takes it next writes it in a later dispatch, after these have read it.
  stats.release();
}
