// The SFT loss on the GPU, shaped for a training step with one readback:
//
//   loss of a step = Σ next-token NLL over the labelled positions of ALL its micro-batches
//                    / the number of those positions
//
// Each micro-batch adds its NLL sum into a scalar accumulator on the GPU (`sumInto`), and its dLogits are the
// cross-entropy gradient scaled by 1 / (target tokens of the whole step), a number known on the CPU before the
// step runs (the labels are). So 2 micro-batches of 2 give the same loss and gradients as one batch of 4, up to
// float rounding, and the step reads back one small buffer: [Σ NLL, gradient norm].
//
// Multi-task steps (src/train/task-weights.ts): the loss is Σ_t w_t · (Σ NLL over task t's target tokens / n_t),
// so dLoss is a per-token array (w_t / n_t at the token's task), and the per-task NLL sums land in the same stats
// buffer by `segmentSumInto` (acc[base + k] += Σ of the losses whose segment id is k), still one readback.
//
// Targets are the labels shifted by one (labels[t] is the token at t, as in Hugging Face; position t predicts
// labels[t + 1]); the last position of a row has no target.
import type { GpuContext } from '../engine/context';
import { WORKGROUP_SUM_WGSL } from '../engine/workgroup-sum';
import type { KernelSpec } from '../engine/kernel';
import type { Tensor } from '../engine/tensor';
import { crossEntropyChunk, crossEntropyChunkBackward, crossEntropyFinish, crossEntropyInit, IGNORE_INDEX } from '../engine/ops/cross-entropy';
import type { Activations } from '../model/transformer';

const WG = 256;

// acc[slot] += Σ x[0..n), one workgroup: a grid-stride sum per invocation, then a tree in workgroup memory.
// NaN and Inf propagate. Used for the loss sum (n = tokens of a micro-batch) and to copy the gradient norm
// next to it (n = 1 into a zeroed slot).
const SUM_INTO_WGSL = /* wgsl */ `
${WORKGROUP_SUM_WGSL}
@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  for (var i = lid.x; i < params.n; i += {{WG}}u) {
    s += x[i];
  }
  let total = workgroupSum(lid.x, s);
  if (lid.x == 0u) {
    acc[params.slot] = acc[params.slot] + total;
  }
}
`;

const sumIntoSpec: KernelSpec = {
  name: 'train_sum_into',
  source: SUM_INTO_WGSL,
  bindings: [
    { name: 'acc', access: 'read_write', type: 'f32' },
    { name: 'x', access: 'read', type: 'f32' },
  ],
  params: [
    ['n', 'u32'],
    ['slot', 'u32'],
  ],
  defines: { WG },
};

/** acc[slot] += Σ x (f32). acc and x must be different tensors. */
export function sumInto(ctx: GpuContext, acc: Tensor, slot: number, x: Tensor): void {
  if (acc.dtype !== 'f32' || x.dtype !== 'f32') throw new Error('sumInto: acc and x must be f32');
  if (!Number.isInteger(slot) || slot < 0 || slot >= acc.size) throw new Error(`sumInto: slot ${slot} is outside acc [${acc.shape.join(', ')}]`);
  if (acc.buffer === x.buffer) throw new Error('sumInto: acc and x must be different tensors');
  ctx.dispatch(ctx.kernel(sumIntoSpec), { acc, x }, { n: x.size, slot }, [1]);
}

// acc[base + k] += Σ x[i] over i with seg[i] == k, one workgroup per segment k (seg −1: in no segment). A
// grid-stride pass per invocation, then a tree in workgroup memory: no atomics, NaN and Inf propagate.
const SEGMENT_SUM_WGSL = /* wgsl */ `
${WORKGROUP_SUM_WGSL}
@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let k = i32(wid.x);
  var s = 0.0;
  for (var i = lid.x; i < params.n; i += {{WG}}u) {
    if (seg[i] == k) {
      s += x[i];
    }
  }
  let total = workgroupSum(lid.x, s);
  if (lid.x == 0u) {
    acc[params.base + wid.x] = acc[params.base + wid.x] + total;
  }
}
`;

const segmentSumSpec: KernelSpec = {
  name: 'train_segment_sum_into',
  source: SEGMENT_SUM_WGSL,
  bindings: [
    { name: 'acc', access: 'read_write', type: 'f32' },
    { name: 'x', access: 'read', type: 'f32' },
    { name: 'seg', access: 'read', type: 'i32' },
  ],
  params: [
    ['n', 'u32'],
    ['base', 'u32'],
  ],
  defines: { WG },
};

/**
 * acc[base + k] += Σ_{i : seg[i] = k} x[i] for k in [0, segments) (f32 x, i32 seg of x's size; seg −1 or ≥
 * segments: in none). acc and x must be different tensors.
 */
export function segmentSumInto(ctx: GpuContext, acc: Tensor, base: number, x: Tensor, seg: Tensor, segments: number): void {
  if (acc.dtype !== 'f32' || x.dtype !== 'f32' || seg.dtype !== 'i32') throw new Error('segmentSumInto: acc and x must be f32, seg i32');
  if (seg.size !== x.size) throw new Error(`segmentSumInto: seg [${seg.shape.join(', ')}] and x [${x.shape.join(', ')}] differ in size`);
  if (!Number.isInteger(segments) || segments < 1 || !Number.isInteger(base) || base < 0 || base + segments > acc.size) {
    throw new Error(`segmentSumInto: slots ${base}..${base + segments - 1} are outside acc [${acc.shape.join(', ')}]`);
  }
  if (acc.buffer === x.buffer) throw new Error('segmentSumInto: acc and x must be different tensors');
  ctx.dispatch(ctx.kernel(segmentSumSpec), { acc, x, seg }, { n: x.size, base }, [segments]);
}

/** Per-task segments of a micro-batch: the task index of each position with a target, −1 elsewhere. */
export function targetSegments(targets: Int32Array, rowTask: readonly number[], T: number): Int32Array {
  const out = new Int32Array(targets.length).fill(-1);
  for (let i = 0; i < targets.length; i++) if (targets[i] !== IGNORE_INDEX) out[i] = rowTask[Math.floor(i / T)]!;
  return out;
}

/** Next-token targets of labels [B][T]: targets[b·T + t] = labels[b][t + 1], −100 at t = T − 1. */
export function shiftedTargets(labels: readonly (readonly number[])[]): Int32Array {
  const B = labels.length;
  const T = labels[0]?.length ?? 0;
  const out = new Int32Array(B * T).fill(IGNORE_INDEX);
  labels.forEach((row, b) => {
    if (row.length !== T) throw new Error('shiftedTargets: rows must have equal length');
    for (let t = 0; t + 1 < T; t++) out[b * T + t] = row[t + 1]!;
  });
  return out;
}

/** The number of positions that have a target (the loss's denominator contribution). */
export function countTargets(targets: Int32Array): number {
  let n = 0;
  for (const t of targets) if (t !== IGNORE_INDEX) n++;
  return n;
}

/** The forward's cross-entropy state, kept for the backward. Release it after. */
export interface CrossEntropyState {
  targets: Tensor; // i32 [N]
  stats: Tensor; // [N, 2]
  release(): void;
}

/** Per-task sums of a forward: segment ids per position (targetSegments) and where the K sums go in acc. */
export interface LossSegments {
  ids: Int32Array;
  base: number;
  count: number;
}

/**
 * Cross-entropy of every position of `acts` (over its vocabulary chunks) against `targets`; adds Σ NLL to
 * acc[slot], and with `segments` each segment's Σ NLL to acc[segments.base + k]. Returns what the backward needs.
 */
export function sftLossForward(ctx: GpuContext, acts: Activations, targetsCpu: Int32Array, acc: Tensor, slot: number, segments?: LossSegments): CrossEntropyState {
  const N = acts.batch.B * acts.batch.T;
  if (targetsCpu.length !== N) throw new Error(`sftLossForward: ${targetsCpu.length} targets for ${N} positions`);
  const targets = ctx.upload([N], targetsCpu, 'i32', { label: 'loss targets' });
  const stats = ctx.empty([N, 2], 'f32', { label: 'cross-entropy state' });
  const targetLogit = ctx.empty([N], 'f32');
  const losses = ctx.empty([N], 'f32', { label: 'per-token loss' });
  crossEntropyInit(ctx, stats, targetLogit);
  for (const c of acts.logitChunks) crossEntropyChunk(ctx, stats, targetLogit, c.logits, targets, c.vocabStart);
  crossEntropyFinish(ctx, losses, stats, targetLogit, targets);
  sumInto(ctx, acc, slot, losses);
  if (segments) {
    if (segments.ids.length !== N) throw new Error(`sftLossForward: ${segments.ids.length} segment ids for ${N} positions`);
    const seg = ctx.upload([N], segments.ids, 'i32', { label: 'loss segments' });
    segmentSumInto(ctx, acc, segments.base, losses, seg, segments.count);
    seg.release();
  }
  // Safe before the recorded work runs: the pool hands these out again only to work recorded later.
  losses.release();
  targetLogit.release();
  return {
    targets,
    stats,
    release() {
      targets.release();
      stats.release();
    },
  };
}

/**
 * dLogits of Σ_t NLL_t · scale_t, one tensor per vocabulary chunk of `acts` (for CausalLM.backward). `scale` is
 * one number, 1 / (target tokens of the optimizer step), or one per position (multi-task: w_t / n_t of the
 * position's task). The caller releases the returned tensors after the backward.
 */
export function sftLossBackward(ctx: GpuContext, acts: Activations, ce: CrossEntropyState, scale: number | Float32Array): Tensor[] {
  const N = acts.batch.B * acts.batch.T;
  const perToken = typeof scale === 'number' ? new Float32Array(N).fill(scale) : scale;
  if (perToken.length !== N) throw new Error(`sftLossBackward: ${perToken.length} scales for ${N} positions`);
  if (!perToken.every(Number.isFinite)) throw new Error(`sftLossBackward: a scale is not finite`);
  const dLoss = ctx.upload([N], perToken, 'f32', { label: 'dLoss' });
  const out = acts.logitChunks.map((c) => {
    const d = ctx.zeros(c.logits.shape, 'f32', { label: 'dLogits' });
    crossEntropyChunkBackward(ctx, d, c.logits, ce.stats, ce.targets, dLoss, c.vocabStart);
    return d;
  });
  dLoss.release();
  return out;
}
