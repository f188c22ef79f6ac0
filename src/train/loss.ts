// The SFT loss on the GPU, shaped for a training step with one readback: the shifted targets, the cross-entropy
// forward with its sums into the step's stats, and dLogits; docs/training.md ("SFT").
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { crossEntropyChunk, crossEntropyChunkBackward, crossEntropyFinish, crossEntropyInit, IGNORE_INDEX } from '../engine/ops/cross-entropy';
import { segmentSumInto, sumInto } from '../engine/ops/sum-into';
import type { Activations } from '../model/transformer';

export { segmentSumInto, sumInto };

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
 * The per-token NLL of every position of `acts` against `targets` (0 where −100), over its vocabulary chunks:
 * the losses [N], the target logits [N] and the cross-entropy state the backward needs. The caller releases all
 * three. `op` names the caller in errors.
 */
function crossEntropyLosses(ctx: GpuContext, acts: Activations, targetsCpu: Int32Array, op: string): { losses: Tensor; targetLogit: Tensor; ce: CrossEntropyState } {
  const N = acts.batch.B * acts.batch.T;
  if (targetsCpu.length !== N) throw new Error(`${op}: ${targetsCpu.length} targets for ${N} positions`);
  const targets = ctx.upload([N], targetsCpu, 'i32', { label: 'loss targets' });
  const stats = ctx.empty([N, 2], 'f32', { label: 'cross-entropy state' });
  const targetLogit = ctx.empty([N], 'f32');
  const losses = ctx.empty([N], 'f32', { label: 'per-token loss' });
  crossEntropyInit(ctx, stats, targetLogit);
  for (const c of acts.logitChunks) crossEntropyChunk(ctx, stats, targetLogit, c.logits, targets, c.vocabStart);
  crossEntropyFinish(ctx, losses, stats, targetLogit, targets);
  const ce: CrossEntropyState = {
    targets,
    stats,
    release() {
      targets.release();
      stats.release();
    },
  };
  return { losses, targetLogit, ce };
}

/**
 * The per-token NLL of every position of `acts` against `targets` (0 where −100), over the vocabulary chunks;
 * returns the losses [N] and the cross-entropy state the backward needs. The caller releases both.
 */
export function tokenLosses(ctx: GpuContext, acts: Activations, targetsCpu: Int32Array): { losses: Tensor; ce: CrossEntropyState } {
  const { losses, targetLogit, ce } = crossEntropyLosses(ctx, acts, targetsCpu, 'tokenLosses');
  targetLogit.release();
  return { losses, ce };
}

/**
 * Cross-entropy of every position of `acts` (over its vocabulary chunks) against `targets`; adds Σ NLL to
 * acc[slot], and with `segments` each segment's Σ NLL to acc[segments.base + k]. Returns what the backward needs.
 */
export function sftLossForward(ctx: GpuContext, acts: Activations, targetsCpu: Int32Array, acc: Tensor, slot: number, segments?: LossSegments): CrossEntropyState {
  const N = acts.batch.B * acts.batch.T;
  const { losses, targetLogit, ce } = crossEntropyLosses(ctx, acts, targetsCpu, 'sftLossForward');
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
  return ce;
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
