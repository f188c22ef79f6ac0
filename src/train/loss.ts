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
// Targets are the labels shifted by one (labels[t] is the token at t, as in Hugging Face; position t predicts
// labels[t + 1]); the last position of a row has no target.
import type { GpuContext } from '../engine/context';
import type { KernelSpec } from '../engine/kernel';
import type { Tensor } from '../engine/tensor';
import { crossEntropyChunk, crossEntropyChunkBackward, crossEntropyFinish, crossEntropyInit, IGNORE_INDEX } from '../engine/ops/cross-entropy';
import type { Activations } from '../model/transformer';

const WG = 256;

// acc[slot] += Σ x[0..n), one workgroup: a grid-stride sum per invocation, then a tree in workgroup memory.
// NaN and Inf propagate. Used for the loss sum (n = tokens of a micro-batch) and to copy the gradient norm
// next to it (n = 1 into a zeroed slot).
const SUM_INTO_WGSL = /* wgsl */ `
var<workgroup> sums: array<f32, {{WG}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  for (var i = lid.x; i < params.n; i += {{WG}}u) {
    s += x[i];
  }
  sums[lid.x] = s;
  workgroupBarrier();
  for (var k = {{WG}}u / 2u; k > 0u; k >>= 1u) {
    if (lid.x < k) {
      sums[lid.x] += sums[lid.x + k];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    acc[params.slot] = acc[params.slot] + sums[0];
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

/**
 * Cross-entropy of every position of `acts` (over its vocabulary chunks) against `targets`; adds Σ NLL to
 * acc[slot]. Returns what the backward needs.
 */
export function sftLossForward(ctx: GpuContext, acts: Activations, targetsCpu: Int32Array, acc: Tensor, slot: number): CrossEntropyState {
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
 * dLogits of (Σ NLL) · scale, one tensor per vocabulary chunk of `acts` (for CausalLM.backward). `scale` is
 * 1 / (target tokens of the optimizer step). The caller releases the returned tensors after the backward.
 */
export function sftLossBackward(ctx: GpuContext, acts: Activations, ce: CrossEntropyState, scale: number): Tensor[] {
  const N = acts.batch.B * acts.batch.T;
  if (!Number.isFinite(scale)) throw new Error(`sftLossBackward: scale ${scale} is not finite`);
  const dLoss = ctx.upload([N], new Float32Array(N).fill(scale), 'f32', { label: 'dLoss' });
  const out = acts.logitChunks.map((c) => {
    const d = ctx.zeros(c.logits.shape, 'f32', { label: 'dLogits' });
    crossEntropyChunkBackward(ctx, d, c.logits, ce.stats, ce.targets, dLoss, c.vocabStart);
    return d;
  });
  dLoss.release();
  return out;
}
