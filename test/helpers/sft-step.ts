// SFT written out by hand, for the tests that check the model or the trainer against a direct computation:
// one micro-batch as the trainer does it (the forward with logits in chunks, the cross-entropy summed into a
// stats slot, the backward of loss · scale into the gradients), and the fixtures' mean next-token loss over
// full logits with its dLogits.
import type { GpuContext } from '../../src/engine/context';
import { crossEntropyChunkBackward, crossEntropyForward } from '../../src/engine/ops/cross-entropy';
import type { Tensor } from '../../src/engine/tensor';
import type { Activations } from '../../src/model/activations';
import type { ForwardOptions } from '../../src/model/forward-options';
import type { Gradients } from '../../src/model/gradients';
import { releaseBatch, uploadBatch, type CausalLM } from '../../src/model/transformer';
import { sftLossBackward, sftLossForward } from '../../src/train/loss';

/** Adds the SFT loss of `ids` (with `targets`, shifted) into stats[0] and its gradient · scale into `grads`. */
export function sftMicroStep(
  model: CausalLM,
  batch: { ids: number[][]; attentionMask?: number[][]; targets: Int32Array },
  stats: Tensor,
  scale: number,
  grads: Gradients,
  options: ForwardOptions = {},
): void {
  const ctx = model.ctx;
  const uploaded = uploadBatch(ctx, batch.ids, batch.attentionMask);
  const acts = model.forward(uploaded, { logits: 'chunks', ...options });
  const ce = sftLossForward(ctx, acts, batch.targets, stats, 0);
  const dLogits = sftLossBackward(ctx, acts, ce, scale);
  model.backward(acts, dLogits, grads);
  for (const d of dLogits) d.release();
  ce.release();
  acts.release();
  releaseBatch(uploaded);
}

export interface Loss {
  loss: number;
  count: number;
  stats: Tensor;
  targets: Tensor;
}

/** SFT loss as the fixtures define it: Σ next-token NLL over labelled positions / their count. */
export async function sftLoss(ctx: GpuContext, acts: Activations, labels: number[][]): Promise<Loss> {
  const T = labels[0]!.length;
  const targets = Int32Array.from(labels.flatMap((row) => row.map((_, t) => (t + 1 < T ? row[t + 1]! : -100))));
  const count = targets.filter((t) => t !== -100).length;
  const N = targets.length;
  const t = ctx.upload([N], targets, 'i32');
  const losses = ctx.empty([N]);
  const stats = ctx.empty([N, 2]);
  const targetLogit = ctx.empty([N]);
  crossEntropyForward(ctx, losses, stats, targetLogit, acts.logits, t);
  const perToken = await ctx.readF32(losses);
  losses.release();
  targetLogit.release();
  return { loss: perToken.reduce((a, b) => a + b, 0) / count, count, stats, targets: t };
}

/** dLogits [N, V] of the mean loss. */
export function dLogitsOf(ctx: GpuContext, acts: Activations, l: Loss, V: number): Tensor {
  const N = l.targets.size;
  const dLoss = ctx.upload([N], new Float32Array(N).fill(1 / l.count));
  const dLogits = ctx.zeros([N, V]);
  crossEntropyChunkBackward(ctx, dLogits, acts.logits, l.stats, l.targets, dLoss, 0);
  dLoss.release();
  return dLogits;
}
