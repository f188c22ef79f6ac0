// Causal self-attention with grouped-query heads and a key padding mask, tiled the FlashAttention-2 way (the score
// matrix never exists); the kernels and the two variants: docs/kernels.md ("Attention").
import { isSwiftShader } from '../adapter-info';
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { tensorText, type Tensor } from '../tensor';
import forwardSrc from '../../../shaders/flash_attention_forward.wgsl?raw';
import deltaSrc from '../../../shaders/attention_backward_delta.wgsl?raw';
import dqSrc from '../../../shaders/flash_attention_backward_dq.wgsl?raw';
import dkdvSrc from '../../../shaders/flash_attention_backward_dkdv.wgsl?raw';
import regForwardSrc from '../../../shaders/flash_attention_register_forward.wgsl?raw';
import regDqSrc from '../../../shaders/flash_attention_register_backward_dq.wgsl?raw';
import regDkdvSrc from '../../../shaders/flash_attention_register_backward_dkdv.wgsl?raw';
import { checkDistinct, checkOutput, dims, type Dims } from './attention-checks';

/** The lse written for a query that sees no key at all (its output is 0): "minus infinity", but finite. */
export const EMPTY_ROW_LSE = -1e30;

/** The largest head dim the kernels take (Gemma 3's 256; past it the per-invocation accumulators outgrow registers). */
export const FLASH_MAX_HEAD_DIM = 256;

/** Invocations per workgroup of the Δ row kernel. */
const DELTA_WG = 256;

/**
 * 'tiled': FlashAttention-2 as on GPUs, K/V (or Q/dOut) blocks shared through workgroup memory.
 * 'register': no workgroup memory and no barriers; each invocation owns 4 rows (or 4 keys) and computes
 * 4×4 blocks with matrix products on named values, reading K/V through the cache: what SwiftShader runs
 * fastest (there every barrier is a coroutine switch and every workgroup-memory load a gather).
 */
export type FlashVariant = 'tiled' | 'register';

/**
 * Block sizes of one kernel: a workgroup owns BR query rows (forward, dq) or BC keys (dk/dv) and steps over
 * the other side BC keys (BR queries) at a time; TPR invocations per row (per key). In the register variant
 * a workgroup of BR / 4 (BC / 4) invocations steps 16 at a time, and TPR is 1.
 */
export interface FlashBlocks {
  BR: number;
  BC: number;
  TPR: number;
}

export interface FlashAttentionConfig {
  variant: FlashVariant;
  forward: FlashBlocks;
  dq: FlashBlocks;
  dkdv: FlashBlocks;
}

const BLOCK_PARAMS = [
  ['T', 'u32'],
  ['S', 'u32'],
  ['H', 'u32'],
  ['Hkv', 'u32'],
  ['hasMask', 'u32'],
  ['nBlocks', 'u32'],
  ['nWork', 'u32'],
  ['scale', 'f32'],
  ['window', 'u32'],
] as const;

const forwardSpec: KernelSpec = {
  name: 'flash_attention_forward',
  source: forwardSrc,
  bindings: [rw('out'), rw('lse'), ro('q'), ro('k'), ro('v'), ro('keyMask', 'i32')],
  params: BLOCK_PARAMS,
};

const deltaSpec: KernelSpec = {
  name: 'attention_backward_delta',
  source: deltaSrc,
  bindings: [rw('stats'), ro('dOut'), ro('out'), ro('lse')],
  params: [
    ['T', 'u32'],
    ['H', 'u32'],
    ['D', 'u32'],
    ['n', 'u32'],
  ],
  defines: { WG: DELTA_WG },
};

/**
 * What the dq and dk/dv kernels read, after the gradients they write (here and in bench/row-attention.ts):
 * stats is attentionBackwardDelta's (lse, Δ) per query row.
 */
export const ATTENTION_BACKWARD_INPUTS = [ro('dOut'), ro('q'), ro('k'), ro('v'), ro('stats'), ro('keyMask', 'i32')];

const dqSpec: KernelSpec = {
  name: 'flash_attention_backward_dq',
  source: dqSrc,
  bindings: [rw('dq'), ...ATTENTION_BACKWARD_INPUTS],
  params: BLOCK_PARAMS,
};

const dkdvSpec: KernelSpec = {
  name: 'flash_attention_backward_dkdv',
  source: dkdvSrc,
  bindings: [rw('dk'), rw('dv'), ...ATTENTION_BACKWARD_INPUTS],
  params: BLOCK_PARAMS,
};

const registerSpecs = {
  forward: { ...forwardSpec, name: 'flash_attention_register_forward', source: regForwardSrc },
  dq: { ...dqSpec, name: 'flash_attention_register_backward_dq', source: regDqSrc },
  dkdv: { ...dkdvSpec, name: 'flash_attention_register_backward_dkdv', source: regDkdvSrc },
} satisfies Record<string, KernelSpec>;
const tiledSpecs = { forward: forwardSpec, dq: dqSpec, dkdv: dkdvSpec } satisfies Record<string, KernelSpec>;

/** What the register kernels step by (4 groups of 4 named 4×4 blocks). */
const REGISTER_STEP = 16;

// ---- block sizes ----------------------------------------------------------------------------------------

type Kind = 'forward' | 'dq' | 'dkdv';

/** Row stride in workgroup memory: the TPR slices cover it, and odd so that rows fall in different banks. */
function rowStride(D: number, TPR: number): number {
  const w = Math.ceil(D / TPR) * TPR;
  return w % 2 === 0 ? w + 1 : w;
}

/** Bytes of workgroup memory a tiled kernel declares (mirrors the `var<workgroup>` lines of its shader). */
export function flashWorkgroupBytes(kind: Kind, D: number, b: FlashBlocks): number {
  const hdp = rowStride(D, b.TPR);
  switch (kind) {
    case 'forward': // Qs, Ks, Vs, Ss, kVis
      return 4 * (b.BR * hdp + 2 * b.BC * hdp + b.BR * (b.BC + 1) + b.BC);
    case 'dq': // Qs, dOs, Ks, Vs, dSs, kVis
      return 4 * (2 * b.BR * hdp + 2 * b.BC * hdp + b.BR * (b.BC + 1) + b.BC);
    case 'dkdv': // Ks, Vs, Qs, dOs, Ps, dSs, rowLse, rowDelta
      return 4 * (2 * b.BC * hdp + 2 * b.BR * hdp + 2 * b.BC * (b.BR + 1) + 2 * b.BR);
  }
}

/** The side a workgroup owns (query rows; keys for dk/dv) and the side it steps over. */
const owned = (kind: Kind): 'BR' | 'BC' => (kind === 'dkdv' ? 'BC' : 'BR');
const stepped = (kind: Kind): 'BR' | 'BC' => (kind === 'dkdv' ? 'BR' : 'BC');

/** Invocations per workgroup. */
function invocations(variant: FlashVariant, kind: Kind, b: FlashBlocks): number {
  return variant === 'register' ? b[owned(kind)] / 4 : b[owned(kind)] * b.TPR;
}

function checkBlocks(variant: FlashVariant, kind: Kind, b: FlashBlocks): void {
  const positive = [b.BR, b.BC, b.TPR].every((x) => Number.isInteger(x) && x >= 1);
  // Tiled: each invocation takes every TPR-th column of a block. Register: 4 rows per invocation, steps of 16.
  const ok =
    variant === 'register'
      ? positive && b[owned(kind)] % 4 === 0 && b[stepped(kind)] === REGISTER_STEP && b.TPR === 1
      : positive && b[stepped(kind)] % b.TPR === 0;
  if (!ok) throw new Error(`flash attention ${variant} ${kind}: invalid blocks BR ${b.BR}, BC ${b.BC}, TPR ${b.TPR}`);
}

/**
 * Halves the larger block until the kernel fits the device's workgroup memory and invocation limits (the
 * register kernels use no workgroup memory); throws when even the smallest blocks do not.
 */
function fit(ctx: GpuContext, variant: FlashVariant, kind: Kind, D: number, want: FlashBlocks): FlashBlocks {
  const mem = ctx.limits.maxComputeWorkgroupStorageSize;
  const inv = ctx.limits.maxComputeInvocationsPerWorkgroup;
  const b = { ...want };
  checkBlocks(variant, kind, b);
  if (variant === 'register') {
    while (invocations(variant, kind, b) > inv) b[owned(kind)] /= 2;
    checkBlocks(variant, kind, b);
    return b;
  }
  while (flashWorkgroupBytes(kind, D, b) > mem || invocations(variant, kind, b) > inv) {
    const cols = stepped(kind);
    const rows = owned(kind);
    // The stepped side must stay a multiple of TPR; the owned side may go down to 1.
    const canCols = b[cols] / 2 >= b.TPR && (b[cols] / 2) % b.TPR === 0;
    const canRows = b[rows] >= 2;
    if (canCols && (b[cols] >= b[rows] || !canRows)) b[cols] /= 2;
    else if (canRows) b[rows] = Math.ceil(b[rows] / 2);
    else {
      throw new Error(
        `flash attention ${kind}: head dim ${D} does not fit ${mem} bytes of workgroup memory and ${inv} invocations`,
      );
    }
  }
  return b;
}

/** The variant this adapter runs fastest: register-blocked on SwiftShader, tiled elsewhere. */
export function flashAttentionVariant(ctx: GpuContext): FlashVariant {
  return isSwiftShader(ctx) ? 'register' : 'tiled';
}

function defaultBlocks(variant: FlashVariant): Omit<FlashAttentionConfig, 'variant'> {
  return variant === 'register'
    ? // 4 invocations (one SIMD group of SwiftShader) per workgroup: the finest work split across CPU threads.
      { forward: { BR: 16, BC: 16, TPR: 1 }, dq: { BR: 16, BC: 16, TPR: 1 }, dkdv: { BR: 16, BC: 16, TPR: 1 } }
    : // FlashAttention-2's usual 32-wide blocks, 4 invocations per row (128 per workgroup), within 32 KiB.
      { forward: { BR: 32, BC: 32, TPR: 4 }, dq: { BR: 32, BC: 16, TPR: 4 }, dkdv: { BR: 16, BC: 32, TPR: 4 } };
}

/**
 * The variant and block sizes for head dim D on this adapter (see flashAttentionVariant); `override` picks
 * another variant or blocks (benchmarks, tests). Tiled blocks shrink to fit the workgroup memory limit.
 */
export function flashAttentionConfig(ctx: GpuContext, D: number, override: Partial<FlashAttentionConfig> = {}): FlashAttentionConfig {
  const variant = override.variant ?? flashAttentionVariant(ctx);
  const want = { ...defaultBlocks(variant), ...override };
  return {
    variant,
    forward: fit(ctx, variant, 'forward', D, want.forward),
    dq: fit(ctx, variant, 'dq', D, want.dq),
    dkdv: fit(ctx, variant, 'dkdv', D, want.dkdv),
  };
}

function kernelFor(ctx: GpuContext, cfg: FlashAttentionConfig, kind: Kind, D: number, window: number) {
  const b = cfg[kind];
  const empty = { EMPTY_LSE: EMPTY_ROW_LSE.toExponential() };
  const SLIDING = String(window > 0);
  if (cfg.variant === 'register') {
    const defines = { HD: D, NC: Math.ceil(D / 4), WG: invocations('register', kind, b), SLIDING, ...(kind === 'forward' ? empty : {}) };
    return ctx.kernel(registerSpecs[kind], defines);
  }
  const common = {
    SLIDING,
    HD: D,
    HDP: rowStride(D, b.TPR),
    BR: b.BR,
    BC: b.BC,
    TPR: b.TPR,
    DPT: Math.ceil(D / b.TPR),
    WG: invocations('tiled', kind, b),
  };
  const defines =
    kind === 'dkdv'
      ? { ...common, QPT: b.BR / b.TPR, PST: b.BR + 1 }
      : { ...common, KPT: b.BC / b.TPR, PST: b.BC + 1, ...(kind === 'forward' ? empty : {}) };
  return ctx.kernel(tiledSpecs[kind], defines);
}

// ---- validation: attention-checks.ts, plus the head-dim bound of these kernels -----------------------------

function flashDims(op: string, q: Tensor, k: Tensor, v: Tensor, keyMask: Tensor | null): Dims {
  const d = dims(op, q, k, v, keyMask);
  if (d.D > FLASH_MAX_HEAD_DIM) {
    throw new Error(`${op}: head dim ${d.D} above ${FLASH_MAX_HEAD_DIM}; got q ${tensorText(q)}`);
  }
  return d;
}

/** `blocks` workgroups per head × `heads` heads: [blocks, heads], or the grid1d layout past the per-dimension limit. */
function blockGrid(ctx: GpuContext, blocks: number, heads: number): [number, number, number] {
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  return blocks <= max && heads <= max ? [blocks, heads, 1] : grid1d(blocks * heads, 1, max);
}

function blockParams(d: Dims, hasMask: boolean, nBlocks: number, heads: number, scale: number, window: number): Record<string, number> {
  return { T: d.T, S: d.S, H: d.H, Hkv: d.Hkv, hasMask: hasMask ? 1 : 0, nBlocks, nWork: nBlocks * heads, scale, window };
}

function checkWindow(op: string, window: number): void {
  if (!Number.isInteger(window) || window < 0 || window > 0xffffffff) throw new Error(`${op}: the sliding window must be a whole number ≥ 0 (0: none), got ${window}`);
}

// ---- wrappers -------------------------------------------------------------------------------------------

/**
 * The first step of an attention backward: stats [B·H·T, 2] = (lse, Δ = Σ_d dOut·out) per query row
 * (b·H + h)·T + t, from dOut, out [B, T, H, D] and lse [B, H, T], one invocation per row. The later steps
 * (dk/dv and dq, here and in the row kernels of bench/row-attention.ts) read both numbers of a row from it.
 */
export function attentionBackwardDelta(ctx: GpuContext, stats: Tensor, dOut: Tensor, out: Tensor, lse: Tensor, d: Dims): void {
  const rows = d.B * d.H * d.T;
  ctx.dispatch(
    ctx.kernel(deltaSpec),
    { stats, dOut, out, lse },
    { T: d.T, H: d.H, D: d.D, n: rows },
    grid1d(rows, DELTA_WG, ctx.limits.maxComputeWorkgroupsPerDimension),
  );
}

/**
 * out [B, T, H, D], lse [B, H, T] = causal attention of q [B, T, H, D] over k, v [B, S, Hkv, D], S ≥ T
 * (the queries are the last T positions: query t sees keys s ≤ t + S − T). keyMask i32 [B, S] (or [B·S]):
 * 0 marks padding, never attended; null attends to every key. `window` > 0: sliding-window attention, query t
 * sees only keys s > t + S − T − window (Gemma's local layers: transformers' kv_idx > q_idx − sliding_window).
 * A query that sees no key gets out = 0 and lse = EMPTY_ROW_LSE. D ≤ 256. `config` overrides the adapter's
 * block sizes (benchmarks, tests).
 */
export function flashAttentionForward(
  ctx: GpuContext,
  out: Tensor,
  lse: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  keyMask: Tensor | null,
  scale: number,
  config?: Partial<FlashAttentionConfig>,
  window = 0,
): void {
  const op = 'flashAttentionForward';
  const d = flashDims(op, q, k, v, keyMask);
  checkWindow(op, window);
  checkOutput(op, 'out', out, q.shape);
  checkOutput(op, 'lse', lse, [d.B, d.H, d.T]);
  checkDistinct(op, { out, lse }, { q, k, v, keyMask });
  const cfg = flashAttentionConfig(ctx, d.D, config);
  const nBlocks = Math.ceil(d.T / cfg.forward.BR);
  ctx.dispatch(
    kernelFor(ctx, cfg, 'forward', d.D, window),
    { out, lse, q, k, v, keyMask: keyMask ?? q },
    blockParams(d, keyMask !== null, nBlocks, d.B * d.H, scale, window),
    blockGrid(ctx, nBlocks, d.B * d.H),
  );
}

/**
 * dq [B, T, H, D], dk and dv [B, S, Hkv, D] += the gradients of flashAttentionForward (or attentionForward)
 * given dOut [B, T, H, D] and the forward's out and lse (accumulates; zero the gradients first). dk/dv sum
 * over the query heads that share each kv head. `window`: the forward's.
 */
export function flashAttentionBackward(
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
  config?: Partial<FlashAttentionConfig>,
  window = 0,
): void {
  const op = 'flashAttentionBackward';
  const d = flashDims(op, q, k, v, keyMask);
  checkWindow(op, window);
  checkOutput(op, 'dq', dq, q.shape);
  checkOutput(op, 'dk', dk, k.shape);
  checkOutput(op, 'dv', dv, k.shape);
  checkOutput(op, 'dOut', dOut, q.shape);
  checkOutput(op, 'out', out, q.shape);
  checkOutput(op, 'lse', lse, [d.B, d.H, d.T]);
  checkDistinct(op, { dq, dk, dv }, { dOut, q, k, v, out, lse, keyMask });
  const cfg = flashAttentionConfig(ctx, d.D, config);

  const stats = ctx.empty([d.B * d.H * d.T, 2], 'f32', { label: 'flash attention backward lse and Δ' });
  attentionBackwardDelta(ctx, stats, dOut, out, lse, d);
  const mask = keyMask ?? q;
  const hasMask = keyMask !== null;
  const nKeyBlocks = Math.ceil(d.S / cfg.dkdv.BC);
  ctx.dispatch(
    kernelFor(ctx, cfg, 'dkdv', d.D, window),
    { dk, dv, dOut, q, k, v, stats, keyMask: mask },
    blockParams(d, hasMask, nKeyBlocks, d.B * d.Hkv, scale, window),
    blockGrid(ctx, nKeyBlocks, d.B * d.Hkv),
  );
  const nRowBlocks = Math.ceil(d.T / cfg.dq.BR);
  ctx.dispatch(
    kernelFor(ctx, cfg, 'dq', d.D, window),
    { dq, dOut, q, k, v, stats, keyMask: mask },
    blockParams(d, hasMask, nRowBlocks, d.B * d.H, scale, window),
    blockGrid(ctx, nRowBlocks, d.B * d.H),
  );
  // Back to the pool now: whoever takes it next writes it in a later dispatch, after these have read it.
  stats.release();
}
