// A reward model (stage "rm"): a scalar head on the last token's hidden state, trained on preference pairs;
// docs/training.md ("Reward models").
import type { Tensor } from '../../engine/tensor';
import { SeededRandom } from '../../data/shuffle';
import { lastTokenRows, RewardHead, rewardBackward, rewardForward, SCORE_WEIGHT } from '../../model/reward-head';
import { releaseBatch, uploadBatch } from '../../model/transformer';
import type { EvalRecord } from '../metrics';
import type { TrainableParam } from '../methods';
import { pairFields } from './dpo';
import { backwardAndRelease, trainingForward, type Objective, type ObjectiveInputs, type StepPlan, type TrainingForward } from './objective';
import { evalPairSums, pairBatch, PairObjective, pairStep, type PairBatch } from './pairs';
import { preferenceLoss } from './preference-kernels';

export interface RewardObjectiveOptions extends ObjectiveInputs {
  /** The head's initial std: config.json's initializer_range (Hugging Face's default 0.02). */
  initializerRange?: number;
}

/** Hugging Face's PretrainedConfig default initializer_range. */
export const DEFAULT_INITIALIZER_RANGE = 0.02;

/** The head is drawn from its own stream of the job's seed (the LoRA init uses the seed itself). */
export const headSeed = (seed: number) => (seed + 0x9e3779b9) >>> 0;

export class RewardObjective extends PairObjective implements Objective {
  readonly stage = 'rm' as const;
  readonly extraParams: TrainableParam[];
  readonly head: RewardHead;

  constructor(private readonly o: RewardObjectiveOptions) {
    super('rm', o);
    const rng = new SeededRandom(headSeed(o.settings.seed));
    this.head = RewardHead.init(this.ctx, o.model.cfg.hiddenSize, { std: o.initializerRange ?? DEFAULT_INITIALIZER_RANGE, uniform: () => rng.next() });
    this.extraParams = [{ name: SCORE_WEIGHT, shape: [1, o.model.cfg.hiddenSize], parts: [this.head.weight], decay: true }];
  }

  async prepare(): Promise<void> {}

  /**
   * Rewards of one batch of pairs [2P] (chosen first) and what the backward needs. `train`: training
   * forwards only (LoRA dropout — chosen and rejected rows in one forward draw disjoint counters of it — and
   * checkpointing, trainingForward).
   */
  private rewardsOf(pb: PairBatch, save: boolean, train: TrainingForward = {}) {
    const { ctx, o } = this;
    const batch = uploadBatch(ctx, pb.padded.inputIds, pb.padded.attentionMask);
    const acts = o.model.forward(batch, { logits: 'none', saveForBackward: save, ...train });
    const rows = ctx.upload([2 * pb.P], lastTokenRows(pb.lengths, pb.T), 'u32', { label: 'last-token rows' });
    const rewards = ctx.empty([2 * pb.P], 'f32', { label: 'rewards' });
    rewardForward(ctx, rewards, acts.hidden, rows, this.head.weight);
    return { batch, acts, rows, rewards };
  }

  private loss(pb: PairBatch, rewards: Tensor, stats: Tensor, scale: number): Tensor {
    const { ctx } = this;
    const n = 2 * pb.P;
    const zeros = ctx.zeros([n], 'f32');
    const lens = ctx.upload([n], pb.lens, 'f32', { label: 'answer tokens' });
    const coef = ctx.empty([n], 'f32', { label: 'reward coefficients' });
    preferenceLoss(ctx, coef, stats, rewards, zeros, lens, { loss: 'reward', beta: 1, gamma: 0, ftx: 0, sign: 1, scale, lossSlot: 0, metricSlot: 2 });
    zeros.release();
    lens.release();
    return coef;
  }

  plan(batches: readonly (readonly number[])[]): StepPlan {
    const { ctx, o } = this;
    const prepared = batches.map((ix) => pairBatch(ix.map((i) => this.train[i]!), o.padTokenId));
    const totals = pairStep(prepared);
    return {
      ...totals,
      micro: prepared.map((pb) => (env) => {
        const { batch, acts, rows, rewards } = this.rewardsOf(pb, true, trainingForward(env));
        const coef = this.loss(pb, rewards, env.stats, 1 / totals.units);
        const dHidden = ctx.zeros(acts.hidden.shape, 'f32', { label: 'dHidden (reward head)' });
        rewardBackward(ctx, env.grads.get(SCORE_WEIGHT)?.[0], dHidden, coef, acts.hidden, rows, this.head.weight);
        backwardAndRelease(env, o.model, { batch, acts, dLogits: [], dHidden, release: [coef, dHidden, rows, rewards] });
      }),
    };
  }

  summarize(stats: Float32Array, plan: StepPlan): { loss: number; fields: Record<string, number> } {
    const f = pairFields(stats, plan.units, false);
    return {
      loss: stats[0]! / plan.units,
      fields: { pairs: f.pairs!, 'rewards/chosen': f['rewards/chosen']!, 'rewards/rejected': f['rewards/rejected']!, 'rewards/margins': f['rewards/margins']!, 'rewards/accuracies': f['rewards/accuracies']! },
    };
  }

  /** Rewards of sequences (token ids) with the current weights, read back. */
  score(sequences: readonly (readonly number[])[]): Promise<Float32Array> {
    return this.head.score(this.o.model, sequences, this.o.padTokenId);
  }

  async evaluate(step: number): Promise<EvalRecord | undefined> {
    if (this.val.length === 0) return undefined;
    const { sums: s, tokens } = await evalPairSums(this.o, this.val, this.statsSize, (pb, _ix, acc) => {
      const { batch, acts, rows, rewards } = this.rewardsOf(pb, false);
      this.loss(pb, rewards, acc, 1).release();
      rows.release();
      rewards.release();
      acts.release();
      releaseBatch(batch);
    });
    const n = this.val.length;
    const f = this.summarize(s, { units: n, tokens, inputTokens: 0, micro: [] }).fields;
    return { step, eval_loss: s[0]! / n, eval_tokens: tokens, ...Object.fromEntries(Object.entries(f).filter(([k]) => k !== 'pairs').map(([k, v]) => [`eval_${k}`, v])) };
  }

  release(): void {
    this.head.release();
  }
}
