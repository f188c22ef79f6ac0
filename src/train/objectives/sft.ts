// Supervised fine-tuning: the next-token cross-entropy over the labelled positions (src/train/loss.ts).
//
//   loss of a step = Σ NLL over the labelled positions of all its micro-batches / the number of those positions
//
// Each micro-batch adds its Σ NLL into stats[0]; its dLogits are the cross-entropy gradient scaled by
// 1 / (target tokens of the whole step).
import { collate, type EncodedExample } from '../../data/encode';
import type { GpuContext } from '../../engine/context';
import { releaseBatch, uploadBatch, type CausalLM } from '../../model/transformer';
import { countTargets, shiftedTargets, sftLossBackward, sftLossForward } from '../loss';
import type { EvalRecord } from '../metrics';
import { SettingsError, type TrainSettings } from '../settings';
import { checkSequence, type Objective, type StepPlan } from './objective';

/** A training sequence: token ids and labels of equal length (labels −100 where nothing is learned). */
export type TrainExample = Pick<EncodedExample, 'inputIds' | 'labels'>;

export interface SftObjectiveOptions {
  model: CausalLM;
  settings: TrainSettings;
  train: readonly TrainExample[];
  val?: readonly TrainExample[];
  padTokenId: number;
}

const tooLong = (maxPositions: number) => (n: number) =>
  new SettingsError('the job', [{ key: 'cutoff_len', message: `an example has ${n} tokens, more than the model instance holds (${maxPositions})` }]);

export class SftObjective implements Objective {
  readonly stage = 'sft' as const;
  readonly statsSize = 2;
  readonly extraParams = [];
  readonly notes: string[] = [];
  /** per_device_train_batch_size × the longest training sequence (a micro-batch pads to its longest). */
  readonly microTokenBound: number;
  private readonly ctx: GpuContext;

  constructor(private readonly o: SftObjectiveOptions) {
    this.ctx = o.model.ctx;
    let longest = 0;
    for (const [i, e] of o.train.entries()) {
      if (!Array.isArray(e.inputIds)) {
        throw new SettingsError('the job', [{ key: 'stage', message: `"sft" trains on sequences {inputIds, labels}, but item ${i} of the data is not one (preference pairs are for "dpo" or "rm")` }]);
      }
      checkSequence(`Training example ${i}`, e.inputIds, e.labels, o.model.maxPositions, tooLong(o.model.maxPositions));
      longest = Math.max(longest, e.inputIds.length);
    }
    this.microTokenBound = o.settings.per_device_train_batch_size * longest;
  }

  get size(): number {
    return this.o.train.length;
  }

  plan(batches: readonly (readonly number[])[]): StepPlan {
    const { o, ctx } = this;
    const prepared = batches.map((ix) => {
      const examples = ix.map((i) => o.train[i]!);
      const b = collate(examples, { padTokenId: o.padTokenId });
      const targets = shiftedTargets(b.labels);
      return { b, targets, inputTokens: examples.reduce((sum, e) => sum + e.inputIds.length, 0) };
    });
    const tokens = prepared.reduce((sum, p) => sum + countTargets(p.targets), 0);
    return {
      units: tokens,
      tokens,
      inputTokens: prepared.reduce((sum, p) => sum + p.inputTokens, 0),
      micro: prepared.map((p) => (env) => {
        const batch = uploadBatch(ctx, p.b.inputIds, p.b.attentionMask);
        const acts = o.model.forward(batch, { logits: 'chunks', ...(env.loraDropout ? { loraDropout: env.loraDropout } : {}) });
        const ce = sftLossForward(ctx, acts, p.targets, env.stats, 0);
        const dLogits = sftLossBackward(ctx, acts, ce, 1 / tokens);
        env.beforeBackward?.({ step: env.step, micro: env.micro, dLogits, ctx });
        o.model.backward(acts, dLogits, env.grads);
        for (const d of dLogits) d.release();
        ce.release();
        acts.release();
        releaseBatch(batch);
      }),
    };
  }

  summarize(stats: Float32Array, plan: StepPlan): { loss: number; fields: Record<string, number> } {
    return { loss: stats[0]! / plan.units, fields: {} };
  }

  async prepare(): Promise<void> {}

  /** eval_loss over the validation split (Σ NLL / target tokens), in batches of per_device_eval_batch_size. */
  async evaluate(step: number): Promise<EvalRecord | undefined> {
    const val = this.o.val ?? [];
    if (val.length === 0) return undefined;
    const { ctx, o } = this;
    const bs = o.settings.per_device_eval_batch_size;
    const acc = ctx.zeros([1], 'f32', { label: 'eval loss sum' });
    let tokens = 0;
    try {
      for (let i = 0; i < val.length; i += bs) {
        const b = collate(val.slice(i, i + bs), { padTokenId: o.padTokenId });
        const targets = shiftedTargets(b.labels);
        tokens += countTargets(targets);
        const batch = uploadBatch(ctx, b.inputIds, b.attentionMask);
        const acts = o.model.forward(batch, { logits: 'chunks', saveForBackward: false });
        sftLossForward(ctx, acts, targets, acc, 0).release();
        acts.release();
        releaseBatch(batch);
      }
      const [sum] = await ctx.readF32(acc);
      return { step, eval_loss: sum! / tokens, eval_tokens: tokens };
    } finally {
      acc.release();
    }
  }

  release(): void {}
}
