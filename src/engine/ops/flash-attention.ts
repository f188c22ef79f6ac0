// Causal self-attention with grouped-query heads (GQA) and a key padding mask, tiled the FlashAttention-2 way:
// the T×S score matrix never exists, not even per row. Same API and semantics as attention.ts
// (attentionForward / attentionBackward), so either can serve the model.
//   forward: a workgroup owns BR query rows of one (b, h) and walks the key blocks of BC keys up to the causal
//            diagonal through workgroup memory with an online softmax; writes out and lse.
//   backward: Δ = rowsum(dOut ⊙ out) (a small row kernel, packed with lse), then one kernel over key blocks
//            (a workgroup owns BC keys of one (b, kv head), walks the query heads of the group and their query
//            blocks, and accumulates dk, dv in registers: no atomics) and one over query blocks for dq.
// Threads: TPR invocations per row (per key in the dk/dv kernel); each owns ceil(D / TPR) of the row's
// output dims (d ≡ j mod TPR) in registers and computes BC / TPR of the row's scores in each block.
// The head dim is compiled in (up to 128); block sizes are chosen per adapter (see flashAttentionConfig).
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import type { KernelSpec } from '../kernel';
import type { Tensor } from '../tensor';
import { EMPTY_ROW_LSE } from './attention';
import forwardSrc from '../../../shaders/flash_attention_forward.wgsl?raw';
import deltaSrc from '../../../shaders/flash_attention_backward_delta.wgsl?raw';
import dqSrc from '../../../shaders/flash_attention_backward_dq.wgsl?raw';
import dkdvSrc from '../../../shaders/flash_attention_backward_dkdv.wgsl?raw';

/** The largest head dim the kernels take (the per-thread accumulators are sized from it). */
export const FLASH_MAX_HEAD_DIM = 128;

/** Invocations per workgroup of the Δ row kernel. */
const DELTA_WG = 256;

/** Block sizes of one tiled kernel: BR query rows and BC keys per block, TPR invocations per row (or key). */
export interface FlashBlocks {
  BR: number;
  BC: number;
  TPR: number;
}

export interface FlashAttentionConfig {
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
] as const;

const forwardSpec: KernelSpec = {
  name: 'flash_attention_forward',
  source: forwardSrc,
  bindings: [
    { name: 'out', access: 'read_write', type: 'f32' },
    { name: 'lse', access: 'read_write', type: 'f32' },
    { name: 'q', access: 'read', type: 'f32' },
    { name: 'k', access: 'read', type: 'f32' },
    { name: 'v', access: 'read', type: 'f32' },
    { name: 'keyMask', access: 'read', type: 'i32' },
  ],
  params: BLOCK_PARAMS,
};

const deltaSpec: KernelSpec = {
  name: 'flash_attention_backward_delta',
  source: deltaSrc,
  bindings: [
    { name: 'stats', access: 'read_write', type: 'f32' },
    { name: 'dOut', access: 'read', type: 'f32' },
    { name: 'out', access: 'read', type: 'f32' },
    { name: 'lse', access: 'read', type: 'f32' },
  ],
  params: [
    ['T', 'u32'],
    ['H', 'u32'],
    ['D', 'u32'],
    ['rows', 'u32'],
  ],
  defines: { WG: DELTA_WG },
};

const dqSpec: KernelSpec = {
  name: 'flash_attention_backward_dq',
  source: dqSrc,
  bindings: [
    { name: 'dq', access: 'read_write', type: 'f32' },
    { name: 'dOut', access: 'read', type: 'f32' },
    { name: 'q', access: 'read', type: 'f32' },
    { name: 'k', access: 'read', type: 'f32' },
    { name: 'v', access: 'read', type: 'f32' },
    { name: 'stats', access: 'read', type: 'f32' },
    { name: 'keyMask', access: 'read', type: 'i32' },
  ],
  params: BLOCK_PARAMS,
};

const dkdvSpec: KernelSpec = {
  name: 'flash_attention_backward_dkdv',
  source: dkdvSrc,
  bindings: [
    { name: 'dk', access: 'read_write', type: 'f32' },
    { name: 'dv', access: 'read_write', type: 'f32' },
    { name: 'dOut', access: 'read', type: 'f32' },
    { name: 'q', access: 'read', type: 'f32' },
    { name: 'k', access: 'read', type: 'f32' },
    { name: 'v', access: 'read', type: 'f32' },
    { name: 'stats', access: 'read', type: 'f32' },
    { name: 'keyMask', access: 'read', type: 'i32' },
  ],
  params: BLOCK_PARAMS,
};

// ---- block sizes ----------------------------------------------------------------------------------------

type Kind = keyof FlashAttentionConfig;

/** Row stride in workgroup memory: the TPR slices cover it, and odd so that rows fall in different banks. */
function rowStride(D: number, TPR: number): number {
  const w = Math.ceil(D / TPR) * TPR;
  return w % 2 === 0 ? w + 1 : w;
}

/** Bytes of workgroup memory a kernel declares (mirrors the `var<workgroup>` lines of its shader). */
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

/** Invocations per workgroup: TPR per query row (forward, dq) or per key (dk/dv). */
function invocations(kind: Kind, b: FlashBlocks): number {
  return (kind === 'dkdv' ? b.BC : b.BR) * b.TPR;
}

/** The per-thread loop over a block's columns (keys, or queries for dk/dv) needs their count a multiple of TPR. */
function checkBlocks(kind: Kind, b: FlashBlocks): void {
  const cols = kind === 'dkdv' ? b.BR : b.BC;
  const ok = [b.BR, b.BC, b.TPR].every((x) => Number.isInteger(x) && x >= 1) && cols % b.TPR === 0;
  if (!ok) throw new Error(`flash attention ${kind}: invalid blocks BR ${b.BR}, BC ${b.BC}, TPR ${b.TPR}`);
}

/**
 * Halves the larger block (down to TPR) until the kernel fits the device's workgroup memory and invocation
 * limits; throws when even the smallest blocks do not.
 */
function fit(ctx: GpuContext, kind: Kind, D: number, want: FlashBlocks): FlashBlocks {
  const mem = ctx.limits.maxComputeWorkgroupStorageSize;
  const inv = ctx.limits.maxComputeInvocationsPerWorkgroup;
  const b = { ...want };
  checkBlocks(kind, b);
  while (flashWorkgroupBytes(kind, D, b) > mem || invocations(kind, b) > inv) {
    const colsKey = kind === 'dkdv' ? 'BR' : 'BC';
    const rowsKey = kind === 'dkdv' ? 'BC' : 'BR';
    // Columns must stay a multiple of TPR; rows may go down to 1.
    const canCols = b[colsKey] / 2 >= b.TPR && (b[colsKey] / 2) % b.TPR === 0;
    const canRows = b[rowsKey] >= 2;
    if (canCols && (b[colsKey] >= b[rowsKey] || !canRows)) b[colsKey] /= 2;
    else if (canRows) b[rowsKey] = Math.ceil(b[rowsKey] / 2);
    else {
      throw new Error(
        `flash attention ${kind}: head dim ${D} does not fit ${mem} bytes of workgroup memory and ${inv} invocations`,
      );
    }
  }
  return b;
}

const isSwiftShader = (ctx: GpuContext): boolean =>
  ctx.adapter.architecture === 'swiftshader' || /swiftshader/i.test(ctx.adapter.description);

/**
 * The block sizes for head dim D on this adapter. SwiftShader (a CPU: barriers are coroutine switches, and
 * registers are memory) does best with one invocation per row and large blocks; GPUs get FlashAttention-2's
 * usual 32-wide blocks with 4 invocations per row. Blocks shrink to fit the workgroup memory limit.
 */
export function flashAttentionConfig(ctx: GpuContext, D: number): FlashAttentionConfig {
  const want: FlashAttentionConfig = isSwiftShader(ctx)
    ? { forward: { BR: 32, BC: 32, TPR: 1 }, dq: { BR: 32, BC: 32, TPR: 1 }, dkdv: { BR: 32, BC: 32, TPR: 1 } }
    : { forward: { BR: 32, BC: 32, TPR: 4 }, dq: { BR: 32, BC: 16, TPR: 4 }, dkdv: { BR: 16, BC: 32, TPR: 4 } };
  return {
    forward: fit(ctx, 'forward', D, want.forward),
    dq: fit(ctx, 'dq', D, want.dq),
    dkdv: fit(ctx, 'dkdv', D, want.dkdv),
  };
}

function blockDefines(kind: Kind, D: number, b: FlashBlocks): Record<string, number | string> {
  const dpt = Math.ceil(D / b.TPR);
  const common = { HD: D, HDP: rowStride(D, b.TPR), BR: b.BR, BC: b.BC, TPR: b.TPR, DPT: dpt, WG: invocations(kind, b) };
  switch (kind) {
    case 'forward':
      return { ...common, KPT: b.BC / b.TPR, PST: b.BC + 1, EMPTY_LSE: EMPTY_ROW_LSE.toExponential() };
    case 'dq':
      return { ...common, KPT: b.BC / b.TPR, PST: b.BC + 1 };
    case 'dkdv':
      return { ...common, QPT: b.BR / b.TPR, PST: b.BR + 1 };
  }
}

// ---- validation (the same rules and messages as attention.ts) ---------------------------------------------

interface Dims {
  B: number;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  D: number;
}

const fmt = (t: Tensor | null): string => (t ? `[${t.shape.join(', ')}] ${t.dtype}` : 'null');
const sameShape = (t: Tensor, shape: readonly number[]): boolean =>
  t.dtype === 'f32' && t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);

function dims(op: string, q: Tensor, k: Tensor, v: Tensor, keyMask: Tensor | null): Dims {
  const [B, T, H, D] = q.shape;
  const [Bk, S, Hkv, Dk] = k.shape;
  const shapes = `q ${fmt(q)}, k ${fmt(k)}, v ${fmt(v)}, keyMask ${fmt(keyMask)}`;
  if (
    q.shape.length !== 4 ||
    k.shape.length !== 4 ||
    q.dtype !== 'f32' ||
    k.dtype !== 'f32' ||
    B === undefined ||
    T === undefined ||
    H === undefined ||
    D === undefined ||
    S === undefined ||
    Hkv === undefined ||
    Bk !== B ||
    Dk !== D ||
    !sameShape(v, k.shape)
  ) {
    throw new Error(`${op}: expected q f32 [B, T, H, D] and k, v f32 [B, S, Hkv, D]; got ${shapes}`);
  }
  if (B === 0 || T === 0 || H === 0 || D === 0 || Hkv === 0 || H % Hkv !== 0) {
    throw new Error(`${op}: need non-empty shapes and H a multiple of Hkv; got ${shapes}`);
  }
  if (D > FLASH_MAX_HEAD_DIM) throw new Error(`${op}: head dim ${D} above ${FLASH_MAX_HEAD_DIM}; got ${shapes}`);
  if (S < T) throw new Error(`${op}: fewer keys than queries (S ${S} < T ${T}); got ${shapes}`);
  if (keyMask) {
    const m = keyMask.shape;
    const ok = m.length === 2 ? m[0] === B && m[1] === S : m.length === 1 && m[0] === B * S;
    if (!ok || (keyMask.dtype !== 'i32' && keyMask.dtype !== 'u32')) {
      throw new Error(`${op}: keyMask must be i32 [B, S] = [${B}, ${S}] (or flat [${B * S}]); got ${shapes}`);
    }
  }
  return { B, T, S, H, Hkv, D };
}

function checkOutput(op: string, name: string, t: Tensor, shape: readonly number[]): void {
  if (!sameShape(t, shape)) throw new Error(`${op}: ${name} ${fmt(t)} must be f32 [${shape.join(', ')}]`);
}

/** A writable binding may not share its buffer with any other binding of the dispatch. */
function checkDistinct(op: string, written: Record<string, Tensor>, read: Record<string, Tensor | null>): void {
  const all = Object.entries({ ...read, ...written });
  for (const [w, t] of Object.entries(written)) {
    for (const [r, u] of all) {
      if (r !== w && u && u.buffer === t.buffer) throw new Error(`${op}: ${w} and ${r} must be different tensors`);
    }
  }
}

/** `blocks` workgroups per head × `heads` heads: [blocks, heads], or the grid1d layout past the per-dimension limit. */
function blockGrid(ctx: GpuContext, blocks: number, heads: number): [number, number, number] {
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  return blocks <= max && heads <= max ? [blocks, heads, 1] : grid1d(blocks * heads, 1, max);
}

function blockParams(d: Dims, hasMask: boolean, nBlocks: number, heads: number, scale: number): Record<string, number> {
  return { T: d.T, S: d.S, H: d.H, Hkv: d.Hkv, hasMask: hasMask ? 1 : 0, nBlocks, nWork: nBlocks * heads, scale };
}

function resolveConfig(ctx: GpuContext, D: number, config?: Partial<FlashAttentionConfig>): FlashAttentionConfig {
  const auto = flashAttentionConfig(ctx, D);
  return {
    forward: config?.forward ? fit(ctx, 'forward', D, config.forward) : auto.forward,
    dq: config?.dq ? fit(ctx, 'dq', D, config.dq) : auto.dq,
    dkdv: config?.dkdv ? fit(ctx, 'dkdv', D, config.dkdv) : auto.dkdv,
  };
}

// ---- wrappers -------------------------------------------------------------------------------------------

/**
 * out [B, T, H, D], lse [B, H, T] = causal attention of q [B, T, H, D] over k, v [B, S, Hkv, D], S ≥ T
 * (the queries are the last T positions: query t sees keys s ≤ t + S − T). keyMask i32 [B, S] (or [B·S]):
 * 0 marks padding, never attended; null attends to every key. A query that sees no key gets out = 0 and
 * lse = EMPTY_ROW_LSE. D ≤ 128. `config` overrides the adapter's block sizes (benchmarks, tests).
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
): void {
  const op = 'flashAttentionForward';
  const d = dims(op, q, k, v, keyMask);
  checkOutput(op, 'out', out, q.shape);
  checkOutput(op, 'lse', lse, [d.B, d.H, d.T]);
  checkDistinct(op, { out, lse }, { q, k, v, keyMask });
  const blocks = resolveConfig(ctx, d.D, config).forward;
  const nBlocks = Math.ceil(d.T / blocks.BR);
  ctx.dispatch(
    ctx.kernel(forwardSpec, blockDefines('forward', d.D, blocks)),
    { out, lse, q, k, v, keyMask: keyMask ?? q },
    blockParams(d, keyMask !== null, nBlocks, d.B * d.H, scale),
    blockGrid(ctx, nBlocks, d.B * d.H),
  );
}

/**
 * dq [B, T, H, D], dk and dv [B, S, Hkv, D] += the gradients of flashAttentionForward (or attentionForward)
 * given dOut [B, T, H, D] and the forward's out and lse (accumulates; zero the gradients first). dk/dv sum
 * over the query heads that share each kv head.
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
): void {
  const op = 'flashAttentionBackward';
  const d = dims(op, q, k, v, keyMask);
  checkOutput(op, 'dq', dq, q.shape);
  checkOutput(op, 'dk', dk, k.shape);
  checkOutput(op, 'dv', dv, k.shape);
  checkOutput(op, 'dOut', dOut, q.shape);
  checkOutput(op, 'out', out, q.shape);
  checkOutput(op, 'lse', lse, [d.B, d.H, d.T]);
  checkDistinct(op, { dq, dk, dv }, { dOut, q, k, v, out, lse, keyMask });
  const cfg = resolveConfig(ctx, d.D, config);

  const rows = d.B * d.H * d.T;
  const stats = ctx.empty([rows, 2], 'f32', { label: 'flash attention backward lse and Δ' });
  ctx.dispatch(
    ctx.kernel(deltaSpec),
    { stats, dOut, out, lse },
    { T: d.T, H: d.H, D: d.D, rows },
    grid1d(rows, DELTA_WG, ctx.limits.maxComputeWorkgroupsPerDimension),
  );
  const mask = keyMask ?? q;
  const hasMask = keyMask !== null;
  const nKeyBlocks = Math.ceil(d.S / cfg.dkdv.BC);
  ctx.dispatch(
    ctx.kernel(dkdvSpec, blockDefines('dkdv', d.D, cfg.dkdv)),
    { dk, dv, dOut, q, k, v, stats, keyMask: mask },
    blockParams(d, hasMask, nKeyBlocks, d.B * d.Hkv, scale),
    blockGrid(ctx, nKeyBlocks, d.B * d.Hkv),
  );
  const nRowBlocks = Math.ceil(d.T / cfg.dq.BR);
  ctx.dispatch(
    ctx.kernel(dqSpec, blockDefines('dq', d.D, cfg.dq)),
    { dq, dOut, q, k, v, stats, keyMask: mask },
    blockParams(d, hasMask, nRowBlocks, d.B * d.H, scale),
    blockGrid(ctx, nRowBlocks, d.B * d.H),
  );
  // Back to the pool now: whoever takes it next writes it in a later dispatch, after these have read it.
  stats.release();
}
