// Supervised fine-tuning (stage "sft"): the next-token cross-entropy over the labelled positions (loss.ts), and
// multi-task steps weighted per task; docs/training.md ("SFT").
import { collate, type EncodedExample } from '../../data/encode';
import type { GpuContext } from '../../engine/context';
import { releaseBatch, uploadBatch } from '../../model/transformer';
import { countTargets, shiftedTargets, sftLossBackward, sftLossForward, targetSegments } from '../loss';
import type { EvalRecord } from '../metrics';
import { SettingsError, type TrainSettings } from '../settings';
import { TaskWeighter, type TaskWeightState } from '../task-weights';
import { backwardAndRelease, checkSequence, trainingForward, type Objective, type ObjectiveInputs, type StepPlan } from './objective';

/** A training sequence: token ids and labels of equal length (labels −100 where nothing is learned), and its task in multi-task runs. */
export type TrainExample = Pick<EncodedExample, 'inputIds' | 'labels' | 'task'>;

export type SftObjectiveOptions = ObjectiveInputs<TrainExample>;

const tooLong = (model: SftObjectiveOptions['model']) => (n: number) => {
  const room = model.maxSequenceLength;
  const virtual = room < model.maxPositions ? ` after the prompt adapter's ${model.maxPositions - room} virtual tokens` : '';
  return new SettingsError('the job', [{ key: 'cutoff_len', message: `an example has ${n} tokens, more than the model instance holds (${room}${virtual})` }]);
};

const badTasks = (key: keyof TrainSettings, message: string) => new SettingsError('the job', [{ key, message }]);

/** The sorted task names of examples, or undefined when none has a task; all or none must have one. */
function taskNames(examples: readonly TrainExample[], what: string): string[] | undefined {
  const withTask = examples.filter((e) => e.task !== undefined).length;
  if (withTask === 0) return undefined;
  const missing = examples.findIndex((e) => e.task === undefined);
  if (missing >= 0) {
    throw badTasks('task_weighting', `${withTask} of the ${what} examples name a task but example ${missing} does not; give every record a "task" (or none)`);
  }
  return [...new Set(examples.map((e) => e.task!))].sort();
}

/** Multi-task state of an SFT run. */
interface Tasks {
  names: string[];
  ofExample: number[];
  weighter: TaskWeighter;
  /** The last summarized step's L_t (undefined: no token of the task), until afterStep. */
  last?: (number | undefined)[];
}

/** Checks the job's multi-task settings against the tasks the data has (undefined: none) and makes the weighter. */
function setupTasks(s: TrainSettings, train: readonly TrainExample[]): Tasks | undefined {
  const names = taskNames(train, 'training');
  if (!names) {
    const set = s.task_weighting !== 'static' ? 'task_weighting' : s.task_weights !== undefined ? 'task_weights' : s.task_sampling !== 'proportional' ? 'task_sampling' : undefined;
    if (set) throw badTasks(set, 'is a multi-task setting, but no record of the dataset has a "task" field; add one to each record, or remove the setting');
    return undefined;
  }
  if (s.task_weights) {
    const unknown = Object.keys(s.task_weights).filter((t) => !names.includes(t));
    if (unknown.length) throw badTasks('task_weights', `names ${unknown.map((t) => `"${t}"`).join(', ')}, which no training record has; the tasks are ${names.map((t) => `"${t}"`).join(', ')}`);
    if (names.every((t) => s.task_weights![t] === 0)) throw badTasks('task_weights', 'gives every task of the dataset weight 0: nothing would be learned');
  }
  if (s.task_weighting !== 'static' && names.length < 2) {
    throw badTasks('task_weighting', `"${s.task_weighting}" balances several tasks, but the training records have one task ("${names[0]}"); use task_weighting static or add records of other tasks`);
  }
  const weighter = new TaskWeighter({
    tasks: names,
    weighting: s.task_weighting,
    ...(s.task_weights ? { staticWeights: s.task_weights } : {}),
    dwaTemperature: s.dwa_temperature,
    dwaWindow: s.dwa_window,
    adam: { beta1: s.adam_beta1, beta2: s.adam_beta2, eps: s.adam_epsilon },
  });
  return { names, ofExample: train.map((e) => names.indexOf(e.task!)), weighter };
}

export class SftObjective implements Objective {
  readonly stage = 'sft' as const;
  readonly statsSize: number;
  /** Single-task: the loss is stats[0] / target tokens (Objective.lossSlot); multi-task weighs the tasks' sums. */
  readonly lossSlot?: number;
  readonly extraParams = [];
  readonly notes: string[] = [];
  /** per_device_train_batch_size × the longest training sequence (a micro-batch pads to its longest). */
  readonly microTokenBound: number;
  private readonly ctx: GpuContext;
  private readonly multi: Tasks | undefined;

  constructor(private readonly o: SftObjectiveOptions) {
    this.ctx = o.model.ctx;
    let longest = 0;
    for (const [i, e] of o.train.entries()) {
      if (!Array.isArray(e.inputIds)) {
        throw new SettingsError('the job', [{ key: 'stage', message: `"sft" trains on sequences {inputIds, labels}, but item ${i} of the data is not one (preference pairs are for "dpo" or "rm")` }]);
      }
      checkSequence(`Training example ${i}`, e.inputIds, e.labels, o.model.maxSequenceLength, tooLong(o.model));
      longest = Math.max(longest, e.inputIds.length);
    }
    this.microTokenBound = o.settings.per_device_train_batch_size * longest;
    this.multi = setupTasks(o.settings, o.train);
    this.statsSize = 2 + (this.multi?.names.length ?? 0);
    if (!this.multi) this.lossSlot = 0;
  }

  get tasks(): { names: readonly string[]; ofExample: readonly number[] } | undefined {
    return this.multi;
  }

  get size(): number {
    return this.o.train.length;
  }

  plan(batches: readonly (readonly number[])[]): StepPlan {
    const { o, ctx, multi } = this;
    const K = multi?.names.length ?? 0;
    const prepared = batches.map((ix) => {
      const examples = ix.map((i) => o.train[i]!);
      const b = collate(examples, { padTokenId: o.padTokenId });
      const targets = shiftedTargets(b.labels);
      const segments = multi ? targetSegments(targets, ix.map((i) => multi.ofExample[i]!), b.inputIds[0]?.length ?? 0) : undefined;
      return { b, targets, segments, inputTokens: examples.reduce((sum, e) => sum + e.inputIds.length, 0) };
    });
    const tokens = prepared.reduce((sum, p) => sum + countTargets(p.targets), 0);
    // Multi-task: n_t over the whole step, and each target token's dLoss w_t / n_t.
    const taskTokens = new Array<number>(K).fill(0);
    for (const p of prepared) for (const t of p.segments ?? []) if (t >= 0) taskTokens[t]!++;
    const weights = multi?.weighter.weights() ?? [];
    const scaleOf = (segments: Int32Array) => Float32Array.from(segments, (t) => (t >= 0 ? weights[t]! / taskTokens[t]! : 0));
    return {
      units: tokens,
      tokens,
      inputTokens: prepared.reduce((sum, p) => sum + p.inputTokens, 0),
      ...(multi ? { tasks: { tokens: taskTokens, weights } } : {}),
      micro: prepared.map((p) => (env) => {
        const batch = uploadBatch(ctx, p.b.inputIds, p.b.attentionMask);
        const acts = o.model.forward(batch, { logits: 'chunks', ...trainingForward(env) });
        const ce = sftLossForward(ctx, acts, p.targets, env.stats, 0, p.segments ? { ids: p.segments, base: 2, count: K } : undefined);
        const dLogits = sftLossBackward(ctx, acts, ce, p.segments ? scaleOf(p.segments) : 1 / tokens);
        backwardAndRelease(env, o.model, { batch, acts, dLogits, release: [ce] });
      }),
    };
  }

  summarize(stats: Float32Array, plan: StepPlan): { loss: number; fields: Record<string, number> } {
    const { multi } = this;
    if (!multi || !plan.tasks) return { loss: stats[0]! / plan.units, fields: {} };
    const { tokens, weights } = plan.tasks;
    const losses = multi.names.map((_, t) => (tokens[t]! > 0 ? stats[2 + t]! / tokens[t]! : undefined));
    multi.last = losses;
    let loss = 0;
    const fields: Record<string, number> = {};
    multi.names.forEach((name, t) => {
      const l = losses[t];
      if (l !== undefined) {
        loss += weights[t]! * l;
        fields[`task_loss/${name}`] = l;
      }
    });
    multi.names.forEach((name, t) => (fields[`task_weight/${name}`] = weights[t]!));
    return { loss, fields };
  }

  /** Multi-task: an applied step's L_t move the weights of the next steps (dwa, uncertainty). */
  afterStep(applied: boolean, learningRate: number): void {
    const m = this.multi;
    if (!m?.last) return;
    if (applied) m.weighter.observe(m.last, learningRate);
    m.last = undefined;
  }

  exportState(): unknown {
    return this.multi ? { tasks: this.multi.weighter.exportState() } : undefined;
  }

  importState(state: unknown): void {
    const saved = (state as { tasks?: TaskWeightState } | undefined)?.tasks;
    if (!this.multi) {
      if (saved) throw badTasks('resume_from_checkpoint', `the checkpoint's run trained the tasks ${saved.tasks.join(', ')}, but this job's records have no "task"`);
      return;
    }
    if (!saved) throw badTasks('resume_from_checkpoint', 'the checkpoint\'s run was not a multi-task run, this job\'s records have tasks');
    try {
      this.multi.weighter.importState(saved);
    } catch (e) {
      throw badTasks('resume_from_checkpoint', `${(e as Error).message}; resuming continues the same run, so use its tasks and task_weighting (or start a new run in another output_dir)`);
    }
  }

  async prepare(): Promise<void> {}

  /** eval_loss over the validation split (Σ NLL / target tokens), in batches of per_device_eval_batch_size. */
  async evaluate(step: number): Promise<EvalRecord | undefined> {
    const val = this.o.val ?? [];
    if (val.length === 0) return undefined;
    const { ctx, o } = this;
    const bs = o.settings.per_device_eval_batch_size;
    // Multi-task: the validation records' tasks (the training ones and any others), sums in acc[1 + t].
    const names = this.multi ? [...new Set([...this.multi.names, ...(taskNames(val, 'validation') ?? [])])].sort() : [];
    const K = names.length;
    const acc = ctx.zeros([1 + K], 'f32', { label: 'eval loss sums' });
    const taskTokens = new Array<number>(K).fill(0);
    let tokens = 0;
    try {
      for (let i = 0; i < val.length; i += bs) {
        const examples = val.slice(i, i + bs);
        const b = collate(examples, { padTokenId: o.padTokenId });
        const targets = shiftedTargets(b.labels);
        tokens += countTargets(targets);
        const segments = K > 0 ? targetSegments(targets, examples.map((e) => names.indexOf(e.task!)), b.inputIds[0]?.length ?? 0) : undefined;
        for (const t of segments ?? []) if (t >= 0) taskTokens[t]!++;
        const batch = uploadBatch(ctx, b.inputIds, b.attentionMask);
        const acts = o.model.forward(batch, { logits: 'chunks', saveForBackward: false });
        sftLossForward(ctx, acts, targets, acc, 0, segments ? { ids: segments, base: 1, count: K } : undefined).release();
        acts.release();
        releaseBatch(batch);
      }
      const sums = await ctx.readF32(acc);
      const record: EvalRecord = { step, eval_loss: sums[0]! / tokens, eval_tokens: tokens };
      names.forEach((name, t) => {
        if (taskTokens[t]! > 0) (record as unknown as Record<string, number>)[`eval_task_loss/${name}`] = sums[1 + t]! / taskTokens[t]!;
      });
      return record;
    } finally {
      acc.release();
    }
  }

  release(): void {}
}
