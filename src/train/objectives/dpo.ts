// Direct preference optimisation and its variants (stage "dpo"): the step on the GPU and the reference log-probs
// computed once; docs/training.md ("DPO"). The formulas are in preference-loss.ts.
import type { Tensor } from '../../engine/tensor';
import { crossEntropyChunkBackward } from '../../engine/ops/cross-entropy';
import { formatBytes } from '../../engine/errors';
import { releaseBatch, uploadBatch, type CausalLM } from '../../model/transformer';
import type { EvalRecord } from '../metrics';
import type { MethodSetup } from '../methods';
import { SettingsError } from '../settings';
import { backwardAndRelease, trainingForward, type Objective, type ObjectiveInputs, type StepPlan, type TrainingForward } from './objective';
import { tokenLosses } from '../loss';
import { chunks, evalPairSums, pairBatch, PairObjective, pairStep, withAdapter, type PairBatch, type TrainPair } from './pairs';
import { expandRows, preferenceLoss, rowSums } from './preference-kernels';
import { usesReference, type PreferenceLossParams } from './preference-loss';

export interface DpoObjectiveOptions extends ObjectiveInputs {
  method: MethodSetup;
  /** Full / freeze training with a reference-based loss: a frozen copy of the starting weights. */
  reference?: CausalLM;
}

/** LLaMA-Factory's default simpo_gamma. */
export const DEFAULT_SIMPO_GAMMA = 0.5;

/** Reference log-prob sums per pair. */
interface RefCache {
  chosen: Float64Array;
  rejected: Float64Array;
}

export class DpoObjective extends PairObjective implements Objective {
  readonly stage = 'dpo' as const;
  readonly extraParams = [];
  readonly loss: PreferenceLossParams;
  private refTrain: RefCache | undefined;
  private refVal: RefCache | undefined;
  private prepared = false;

  constructor(private readonly o: DpoObjectiveOptions) {
    super('dpo', o);
    const s = o.settings;
    this.loss = { loss: s.pref_loss, beta: s.pref_beta, gamma: s.simpo_gamma ?? DEFAULT_SIMPO_GAMMA, ftx: s.pref_ftx };
    if (usesReference(s.pref_loss)) {
      if (o.reference) {
        if (o.reference.ctx !== o.model.ctx) throw new Error('The reference model must live on the same GPU context as the model');
        if (o.reference.cfg.vocabSize !== o.model.cfg.vocabSize) throw new Error('The reference model has another vocabulary than the model');
        const bytes = o.reference.parameters().reduce((sum, p) => sum + 4 * p.shape.reduce((a, b) => a * b, 1), 0);
        this.notes.push(
          `DPO's reference is a frozen copy of the model: ${formatBytes(bytes)} more GPU memory until its log-probs are computed (once, before the first step)`,
        );
      } else if (o.method.kind === 'full' || o.method.kind === 'freeze') {
        throw new SettingsError('the job', [
          {
            key: 'finetuning_type',
            message: `DPO with pref_loss "${s.pref_loss}" compares against a reference model; with finetuning_type "${o.method.kind}" that is a frozen copy of the model, which the trainer takes as \`reference\` (graft train loads one). LoRA, bottleneck adapters and prompt tuning need none: their reference is the model with the adapter switched off`,
          },
        ]);
      }
    }
  }

  get usesReference(): boolean {
    return usesReference(this.loss.loss);
  }

  /** The cached reference log-prob sums of the training pairs (after prepare), by pair index. */
  get referenceLogps(): { chosen: Float64Array; rejected: Float64Array } | undefined {
    return this.refTrain;
  }

  async prepare(): Promise<void> {
    if (this.prepared) return;
    if (this.usesReference) {
      this.refTrain = await this.sequenceLogps('reference', this.train);
      this.refVal = await this.sequenceLogps('reference', this.val);
    }
    this.prepared = true;
  }

  /**
   * Σ log p of each pair's answers under the policy (the model as it is now) or the reference (the `reference`
   * model, or with LoRA or bottleneck adapters the model with the adapter switched off), in batches of per_device_eval_batch_size
   * pairs; by default of the training pairs. One readback per batch.
   */
  async sequenceLogps(which: 'policy' | 'reference', pairs: readonly TrainPair[] = this.train): Promise<RefCache> {
    const { ctx, o } = this;
    const model = which === 'reference' && o.reference ? o.reference : o.model;
    const adapter = which === 'policy' || o.reference ? model.adapter : null;
    const out: RefCache = { chosen: new Float64Array(pairs.length), rejected: new Float64Array(pairs.length) };
    for (const ix of chunks(pairs.length, o.settings.per_device_eval_batch_size)) {
      const pb = pairBatch(ix.map((i) => pairs[i]!), o.padTokenId);
      const sums = withAdapter(model, adapter, () => {
        const batch = uploadBatch(ctx, pb.padded.inputIds, pb.padded.attentionMask);
        const acts = model.forward(batch, { logits: 'chunks', saveForBackward: false });
        const { losses, ce } = tokenLosses(ctx, acts, pb.targets);
        const t = ctx.empty([2 * pb.P], 'f32', { label: 'sequence NLL sums' });
        rowSums(ctx, t, losses, pb.T);
        losses.release();
        ce.release();
        acts.release();
        releaseBatch(batch);
        return t;
      });
      try {
        const v = await ctx.readF32(sums);
        ix.forEach((i, p) => {
          out.chosen[i] = -v[p]!;
          out.rejected[i] = -v[pb.P + p]!;
        });
      } finally {
        sums.release();
      }
    }
    return out;
  }

  /** The reference sums of a micro-batch's rows [2P] (zeros for losses without a reference). */
  private refRows(ix: readonly number[], cache: RefCache | undefined): Float32Array {
    const P = ix.length;
    const out = new Float32Array(2 * P);
    if (!this.usesReference) return out;
    if (!cache) throw new Error('DPO: the reference log-probs are not computed yet; call prepare() (Trainer.run does)');
    ix.forEach((i, p) => {
      out[p] = cache.chosen[i]!;
      out[P + p] = cache.rejected[i]!;
    });
    return out;
  }

  /**
   * Records the policy forward of one batch of pairs, its loss (into stats) and, with `backward`, the
   * per-token dLoss and dLogits; returns what the caller releases. `train`: training forwards only (LoRA
   * dropout and checkpointing, trainingForward).
   */
  private lossOf(pb: PairBatch, ref: Float32Array, stats: Tensor, scale: number, save: boolean, train: TrainingForward = {}) {
    const { ctx, o } = this;
    const batch = uploadBatch(ctx, pb.padded.inputIds, pb.padded.attentionMask);
    const acts = o.model.forward(batch, { logits: 'chunks', saveForBackward: save, ...train });
    const { losses, ce } = tokenLosses(ctx, acts, pb.targets);
    const rows = 2 * pb.P;
    const sums = ctx.empty([rows], 'f32', { label: 'sequence NLL sums' });
    rowSums(ctx, sums, losses, pb.T);
    losses.release();
    const refT = ctx.upload([rows], ref, 'f32', { label: 'reference log-prob sums' });
    const lens = ctx.upload([rows], pb.lens, 'f32', { label: 'answer tokens' });
    const coef = ctx.empty([rows], 'f32', { label: 'sequence coefficients' });
    preferenceLoss(ctx, coef, stats, sums, refT, lens, { ...this.loss, sign: -1, scale, lossSlot: 0, metricSlot: 2 });
    for (const t of [sums, refT, lens]) t.release();
    return { batch, acts, ce, coef };
  }

  plan(batches: readonly (readonly number[])[]): StepPlan {
    const { ctx, o } = this;
    const prepared = batches.map((ix) => ({ ix, pb: pairBatch(ix.map((i) => this.train[i]!), o.padTokenId) }));
    const totals = pairStep(prepared.map((p) => p.pb));
    return {
      ...totals,
      micro: prepared.map(({ ix, pb }) => (env) => {
        const { batch, acts, ce, coef } = this.lossOf(pb, this.refRows(ix, this.refTrain), env.stats, 1 / totals.units, true, trainingForward(env));
        const N = 2 * pb.P * pb.T;
        const dLoss = ctx.empty([N], 'f32', { label: 'dLoss per token' });
        expandRows(ctx, dLoss, coef, pb.T);
        coef.release();
        const dLogits = acts.logitChunks.map((c) => {
          const d = ctx.zeros(c.logits.shape, 'f32', { label: 'dLogits' });
          crossEntropyChunkBackward(ctx, d, c.logits, ce.stats, ce.targets, dLoss, c.vocabStart);
          return d;
        });
        dLoss.release();
        backwardAndRelease(env, o.model, { batch, acts, dLogits, release: [ce] });
      }),
    };
  }

  summarize(stats: Float32Array, plan: StepPlan): { loss: number; fields: Record<string, number> } {
    return { loss: stats[0]! / plan.units, fields: pairFields(stats, plan.units, this.loss.loss === 'orpo') };
  }

  /** The validation pairs' mean loss and metrics (eval_loss, eval_rewards/...). */
  async evaluate(step: number): Promise<EvalRecord | undefined> {
    if (this.val.length === 0) return undefined;
    await this.prepare();
    const { sums: s, tokens } = await evalPairSums(this.o, this.val, this.statsSize, (pb, ix, acc) => {
      const { batch, acts, ce, coef } = this.lossOf(pb, this.refRows(ix, this.refVal), acc, 1, false);
      coef.release();
      ce.release();
      acts.release();
      releaseBatch(batch);
    });
    const n = this.val.length;
    const fields = pairFields(s, n, this.loss.loss === 'orpo');
    return { step, eval_loss: s[0]! / n, eval_tokens: tokens, ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [`eval_${k}`, v])) };
  }

  release(): void {}
}

/** The record fields of the pair metrics (TRL's names), from the stats sums over `pairs` pairs. */
export function pairFields(stats: Float32Array, pairs: number, orpo: boolean): Record<string, number> {
  const mean = (i: number) => stats[2 + i]! / pairs;
  const fields: Record<string, number> = {
    pairs,
    'rewards/chosen': mean(0),
    'rewards/rejected': mean(1),
    'rewards/margins': mean(0) - mean(1),
    'rewards/accuracies': mean(2),
    'logps/chosen': mean(3),
    'logps/rejected': mean(4),
  };
  if (orpo) {
    fields.sft_loss = mean(5);
    fields.odds_ratio_loss = mean(6);
  }
  return fields;
}

