// The trainer: an objective (objectives/) × a method (methods.ts) with AdamW, the learning-rate schedule, gradient
// accumulation, clipping, a NaN/Inf guard, evaluation and checkpoints that a stopped run resumes from exactly. One
// step, the data order, LoRA dropout and activation checkpointing: docs/training.md. No Node imports here.
import type { GpuContext } from '../engine/context';
import { CodedError } from '../engine/errors';
import type { Tensor } from '../engine/tensor';
import { clipCoefficient, gradNorm } from '../engine/ops/grad-norm';
import { stepGate } from '../engine/ops/adamw';
import { balancedOrder, shuffled } from '../data/shuffle';
import type { Gradients } from '../model/gradients';
import type { CausalLM, LoraDropout } from '../model/transformer';
import { checkpointName, type CheckpointStore } from './checkpoint-store';
import { encodedDataHash, encodeCheckpoint, STATE_FORMAT, STATE_VERSION, type CheckpointData, type DataState, type ResumeChange, type TrainerState } from './checkpoint';
import { sumInto } from './loss';
import { estimateEta, type EvalRecord, type StepRecord, type TrainProgress } from './metrics';
import { setupMethod, type MethodSetup, type StartingAdapter, type TrainableParam } from './methods';
import { createObjective, type Objective, type StepPlan, type TrainExample, type TrainPair } from './objectives';
import { AdamW, readJoined, writeJoined } from './optimizer';
import { learningRateAt, resolveInterval, scheduleFor, stepsPerEpoch, type ScheduleParams } from './schedule';
import { SETTINGS_KEYS, SettingsError, type TrainSettings } from './settings';

export type { TrainExample, TrainPair } from './objectives';

export interface TrainerHooks {
  /**
   * Called with each micro-batch's dLogits just before its backward (testing: poison one with NaN to see the
   * step skipped). `step` counts from 1.
   */
  beforeBackward?(info: { step: number; micro: number; dLogits: readonly Tensor[]; ctx: GpuContext }): void;
}

export interface TrainerOptions {
  model: CausalLM;
  settings: TrainSettings;
  /**
   * Training items (unpadded), in file order: the trainer shuffles per epoch unless disable_shuffling.
   * stage "sft": sequences; "dpo" and "rm": preference pairs {chosen, rejected} of sequences
   * (src/data/preference.ts's preparePreferenceData makes them).
   */
  train: readonly TrainExample[] | readonly TrainPair[];
  /** Validation items (like train) for eval_loss. */
  val?: readonly TrainExample[] | readonly TrainPair[];
  /** The pad id of the right padding (its label is −100 and its attention mask 0, so any id works). */
  padTokenId: number;
  /** LoRA: the adapter to continue training (adapter_name_or_path), read and checked by src/model/adapter.ts. */
  startingAdapter?: StartingAdapter;
  /** Prompt tuning with prompt_tuning_init "text": the init text's token ids (tokenizer.encode with special tokens, as PEFT). */
  promptInitIds?: readonly number[];
  /** Where checkpoints go (every save_steps, at the end, and on stop). None: no checkpoints. */
  store?: CheckpointStore;
  /** A checkpoint of this run to continue from. */
  resume?: CheckpointData;
  hooks?: TrainerHooks;
  /**
   * DPO (sigmoid, hinge, ipo) with full or freeze training: a frozen copy of the starting model (a second
   * CausalLM on the same context) as the reference. Read only by prepare(), so it may be disposed after that.
   */
  reference?: CausalLM;
  /** RM: the head's initial std, config.json's initializer_range (default 0.02, Hugging Face's default). */
  initializerRange?: number;
  /**
   * Overlapped steps (default on): step n + 1 is recorded and submitted before step n's statistics are read
   * back, its update gated on the GPU, so the CPU's encoding overlaps the GPU's work; the results are the same
   * bits. Only where the objective allows it (Objective.lossSlot: not multi-task SFT); false: every step waits for
   * its readback (docs/training.md, "Overlapped steps").
   */
  overlap?: boolean;
}

/** A step whose work is submitted and whose statistics are on their way back (run()'s overlap). */
interface StartedStep {
  /** The step, 0-based. */
  index: number;
  plan: StepPlan;
  lr: number;
  /** When its recording began. */
  t0: number;
  /** The read of the step's statistics (undefined: the step had nothing to learn, nothing was submitted). */
  stats: Promise<Float32Array> | undefined;
  /** Its update was recorded gated on the GPU (gatedStep) before its statistics came back. */
  gated: boolean;
}

/** Pause and stop for a running trainer (the worker keeps one per run; the CLI stops it on Ctrl-C). */
export class TrainControl {
  private stopRequested = false;
  private pausedNow = false;
  private wake: (() => void) | undefined;

  get stopped(): boolean {
    return this.stopRequested;
  }
  get paused(): boolean {
    return this.pausedNow;
  }
  /** Stops after the step in progress; the trainer saves a checkpoint (when it has a store) and returns. */
  stop(): void {
    this.stopRequested = true;
    this.release();
  }
  /** Holds the trainer between steps until resume() (or stop()). */
  pause(): void {
    this.pausedNow = true;
  }
  resume(): void {
    this.pausedNow = false;
    this.release();
  }
  private release(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
  /** @internal Resolves when not paused (or stopped). */
  waitWhilePaused(): Promise<void> {
    if (!this.pausedNow || this.stopRequested) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }
}

export interface RunOptions {
  /** Stops like control.stop() when aborted (an AbortSignal fits). */
  signal?: { readonly aborted: boolean };
  control?: TrainControl;
  onStep?(record: StepRecord): void;
  /** A sentence for the person while training goes on (the loss stopped moving with a zero gradient, ...). */
  onWarning?(text: string): void;
  onEval?(record: EvalRecord): void;
  onProgress?(progress: TrainProgress): void;
  /** After a checkpoint was written. */
  onCheckpoint?(step: number, location: string): void;
}

export interface TrainResult {
  status: 'completed' | 'stopped';
  globalStep: number;
  totalSteps: number;
  skippedSteps: number;
  metrics: StepRecord[];
  evalMetrics: EvalRecord[];
  /** Steps of the checkpoints this run wrote. */
  checkpoints: number[];
}

const bad = (key: keyof TrainSettings, message: string) => new SettingsError('the job', [{ key, message }]);

/**
 * Training that cannot go on: code 'non-finite' when the trainable weights (or the optimizer's moments) are no
 * longer finite numbers (the message says which update broke them, what was kept and what to do);
 * 'nothing-to-train' without a training example.
 */
export class TrainError extends CodedError<'non-finite' | 'nothing-to-train'> {
  constructor(code: 'non-finite' | 'nothing-to-train', message: string, options?: { cause?: unknown }) {
    super('TrainError', code, message, options);
  }
}

/**
 * Settings that may differ when a run resumes: they steer saving, logging, evaluation and prediction, not what
 * the training steps compute (strings: keys a later Graft adds are compared only when the checkpoint has them).
 */
const RESUME_FREE: ReadonlySet<string> = new Set([
  'resume_from_checkpoint', 'resume_allow_changes', 'overwrite_output_dir', 'output_dir', 'logging_steps', 'save_strategy', 'save_steps',
  'save_total_limit', 'eval_strategy', 'eval_steps', 'per_device_eval_batch_size', 'do_predict', 'predict_with_generate', 'eval_dataset',
  'max_new_tokens', 'do_sample', 'temperature', 'top_p', 'top_k', 'repetition_penalty',
]);
/** The run's length: a resume may train longer or shorter (a note says so). */
const RESUME_LENGTH: ReadonlySet<string> = new Set(['max_steps', 'num_train_epochs']);

/** Steps in a row whose loss or gradient is NaN/Inf before the run stops (nothing is being learned). */
export const NOT_FINITE_STOP = 10;

/** Applied steps in a row with a zero gradient norm and an unchanged loss before the run says so. */
export const FROZEN_STEPS = 3;

const lrText = (lr: number) => (lr !== 0 && (Math.abs(lr) >= 1e4 || Math.abs(lr) < 1e-3) ? lr.toExponential(2).replace(/\.?0+e/, 'e') : String(lr));

export class Trainer {
  readonly ctx: GpuContext;
  readonly method: MethodSetup;
  /** What the steps optimise: sft, dpo or rm (objectives/). */
  readonly objective: Objective;
  /** Every trainable parameter: the method's, then the objective's (the reward head), in checkpoint order. */
  readonly params: readonly TrainableParam[];
  readonly schedule: ScheduleParams;
  readonly totalSteps: number;
  readonly stepsPerEpoch: number;
  readonly batchesPerEpoch: number;
  /** Notes for the person (settings a starting adapter overrides, ...). */
  readonly notes: string[];

  private readonly grads: Gradients;
  private readonly optimizer: AdamW;
  /**
   * [loss sum, gradient norm, the objective's sums, the norm of the trainable weights]: the step's one
   * readback. The last slot (weightSlot) checks the weights the previous update left: NaN/Inf stop the run.
   */
  private readonly stepStats: Tensor;
  private readonly weightSlot: number;
  private readonly weightNorm: Tensor;
  private readonly norm: Tensor;
  private readonly clipScale: Tensor;
  /** Overlapped steps: the GPU's skip decision for the step (u32 [1], stepGate); undefined without overlap. */
  private readonly gate: Tensor | undefined;
  /** When the last step's statistics were handled (a step's time starts at its recording or here, the later). */
  private lastFinish = 0;
  private globalStep = 0;
  private skipped = 0;
  private elapsedBase = 0;
  private readonly metrics: StepRecord[] = [];
  private readonly evalMetrics: EvalRecord[] = [];
  private lastSaved = -1;
  /** The last update applied in this session (its step, 1-based, and learning rate), for the non-finite message. */
  private lastUpdate: { step: number; lr: number } | undefined;
  /** An update was applied whose weights no readback has checked yet (the step's readback or trainableWeights). */
  private unchecked = false;
  /** This session: updates applied, and steps in a row whose loss or gradient was not finite. */
  private appliedThisSession = 0;
  private notFiniteInARow = 0;
  /** Applied steps in a row with grad norm 0 and the same loss (to 1e-5), and whether the run said so already. */
  private frozen = { steps: 0, loss: Number.NaN, warned: false };
  /** LoRA dropout: p, the job's seed and each micro-batch's counter span (docs/training.md, "LoRA dropout"); null: none. */
  readonly dropout: { p: number; seed: number; span: number } | null;
  private orderCache: { epoch: number; order: number[] } | undefined;
  private hashCache: string | undefined;
  /** Resumes of this run that went ahead with differences (the checkpoint's, then this one's). */
  private readonly changes: ResumeChange[] = [];
  private disposed = false;

  private constructor(private readonly opts: TrainerOptions) {
    const { model, settings: s } = opts;
    this.ctx = model.ctx;
    if (opts.train.length === 0) throw new TrainError('nothing-to-train', 'There is nothing to train on: the dataset has no usable example; check its records and cutoff_len.');
    const n = opts.train.length;
    this.batchesPerEpoch = Math.ceil(n / s.per_device_train_batch_size);
    this.stepsPerEpoch = stepsPerEpoch(n, s);
    this.schedule = scheduleFor(n, s);
    this.totalSteps = this.schedule.totalSteps;

    this.method = setupMethod(model, s, {
      ...(opts.startingAdapter ? { startingAdapter: opts.startingAdapter } : {}),
      ...(opts.promptInitIds ? { promptInitIds: opts.promptInitIds } : {}),
    });
    const made: { release(): void }[] = [];
    try {
      this.objective = createObjective({
        model,
        settings: s,
        method: this.method,
        train: opts.train,
        ...(opts.val ? { val: opts.val } : {}),
        padTokenId: opts.padTokenId,
        ...(opts.reference ? { reference: opts.reference } : {}),
        ...(opts.initializerRange !== undefined ? { initializerRange: opts.initializerRange } : {}),
      });
      made.push(this.objective);
      this.dropout = this.dropoutPlan();
      this.params = [...this.method.params, ...this.objective.extraParams];
      this.notes = [...this.method.notes, ...this.objective.notes];
      this.grads = model.createGradients(this.method.select);
      made.push(this.grads);
      for (const p of this.objective.extraParams) {
        this.grads.set(p.name, p.parts.map((t) => this.ctx.zeros(t.shape, 'f32', { persistent: true, label: `gradient of ${p.name}` })));
      }
      this.optimizer = new AdamW(this.ctx, this.params, {
        beta1: s.adam_beta1,
        beta2: s.adam_beta2,
        eps: s.adam_epsilon,
        weightDecay: s.weight_decay,
      });
      made.push(this.optimizer);
      this.weightSlot = this.objective.statsSize;
      this.stepStats = this.ctx.zeros([this.objective.statsSize + 1], 'f32', { persistent: true, label: 'step loss sum, gradient norm, metrics and weight norm' });
      this.norm = this.ctx.zeros([1], 'f32', { persistent: true, label: 'gradient norm' });
      this.weightNorm = this.ctx.zeros([1], 'f32', { persistent: true, label: 'trainable weight norm' });
      this.clipScale = this.ctx.zeros([1], 'f32', { persistent: true, label: 'clip coefficient' });
      made.push(this.stepStats, this.norm, this.weightNorm, this.clipScale);
      if (opts.overlap !== false && this.objective.lossSlot !== undefined) {
        this.gate = this.ctx.zeros([1], 'u32', { persistent: true, label: 'step gate' });
        made.push(this.gate);
      }
      if (opts.resume) this.restore(opts.resume);
    } catch (e) {
      for (const m of made) m.release();
      this.method.release();
      throw e;
    }
  }

  /** Sets the model up for the job (adapter, gradients, optimizer) and, with `resume`, restores the checkpoint. */
  static create(opts: TrainerOptions): Trainer {
    return new Trainer(opts);
  }

  get settings(): TrainSettings {
    return this.opts.settings;
  }

  /** Optimizer steps done so far (skipped ones included). */
  get step(): number {
    return this.globalStep;
  }

  get skippedSteps(): number {
    return this.skipped;
  }

  /** AdamW's step count (updates applied). */
  get optimizerSteps(): number {
    return this.optimizer.stepCount;
  }

  get history(): { metrics: StepRecord[]; evalMetrics: EvalRecord[] } {
    return { metrics: [...this.metrics], evalMetrics: [...this.evalMetrics] };
  }

  /** The LoRA dropout of the run (after the adapter is set up), or null without one. */
  private dropoutPlan(): { p: number; seed: number; span: number } | null {
    const { model, settings: s } = this.opts;
    if (this.method.kind !== 'lora' || s.lora_dropout <= 0) return null;
    const span = model.loraDropoutCounters(this.objective.microTokenBound);
    const micros = this.totalSteps * s.gradient_accumulation_steps;
    if (!Number.isSafeInteger(micros * span)) {
      throw bad('lora_dropout', `LoRA dropout draws ${span} random counters per micro-batch, and ${micros} micro-batches pass 2^53 of them; train fewer steps, or shorter sequences (cutoff_len)`);
    }
    return { p: s.lora_dropout, seed: s.seed, span };
  }

  /**
   * The LoRA dropout of micro-batch `micro` of optimizer step `step` (both 0-based): offset = (step ·
   * gradient_accumulation_steps + micro) · span. Undefined without dropout.
   */
  loraDropoutAt(step: number, micro: number): LoraDropout | undefined {
    const d = this.dropout;
    if (!d) return undefined;
    return { p: d.p, seed: d.seed, offset: (step * this.opts.settings.gradient_accumulation_steps + micro) * d.span };
  }

  // ---- data order -----------------------------------------------------------------------------------------

  /** The example order of an epoch. */
  epochOrder(epoch: number): number[] {
    if (this.orderCache?.epoch === epoch) return this.orderCache.order;
    const idx = Array.from({ length: this.opts.train.length }, (_, i) => i);
    const { disable_shuffling: inOrder, seed, task_sampling: sampling } = this.opts.settings;
    const tasks = this.objective.tasks;
    const order =
      sampling === 'balanced' && tasks
        ? balancedOrder(tasks.ofExample, tasks.names.length, idx.length, (seed + epoch) >>> 0)
        : inOrder
          ? idx
          : shuffled(idx, (seed + epoch) >>> 0);
    this.orderCache = { epoch, order };
    return order;
  }

  /** The micro-batches (example indices) of optimizer step `step` (0-based), and its epoch. */
  microBatches(step: number): { epoch: number; batches: number[][] } {
    const { per_device_train_batch_size: bs, gradient_accumulation_steps: accum } = this.opts.settings;
    const epoch = Math.floor(step / this.stepsPerEpoch);
    const j = step % this.stepsPerEpoch;
    const order = this.epochOrder(epoch);
    const batches: number[][] = [];
    for (let b = j * accum; b < Math.min((j + 1) * accum, this.batchesPerEpoch); b++) batches.push(order.slice(b * bs, (b + 1) * bs));
    return { epoch, batches };
  }

  // ---- one step -------------------------------------------------------------------------------------------

  /** The work of step `index` (0-based): its micro-batches' plan. */
  private planOf(index: number): StepPlan {
    return this.objective.plan(this.microBatches(index).batches);
  }

  /**
   * Records step `index` (0-based) — forward, backward, gradient norm, clipping coefficient, the weight norm and,
   * with overlap, the GPU's skip gate — and submits it with the read of its statistics, not awaited. Its update
   * is recorded by finishStep (after the readback) or, overlapped, by run() as a gated step before it.
   */
  private startStep(index: number, plan: StepPlan = this.planOf(index)): StartedStep {
    const { ctx, opts } = this;
    const { settings: s } = opts;
    const t0 = now();
    const lr = learningRateAt(index, this.schedule);
    let stats: Promise<Float32Array> | undefined;
    if (plan.units > 0) {
      ctx.fill(this.stepStats, 0);
      this.grads.zero();
      const hook = opts.hooks?.beforeBackward?.bind(opts.hooks);
      plan.micro.forEach((run, micro) => {
        const loraDropout = this.loraDropoutAt(index, micro);
        run({
          grads: this.grads,
          stats: this.stepStats,
          step: index + 1,
          micro,
          ...(loraDropout ? { loraDropout } : {}),
          ...(s.gradient_checkpointing ? { checkpoint: true } : {}),
          ...(hook ? { beforeBackward: hook } : {}),
        });
      });
      gradNorm(ctx, this.norm, this.grads.tensors());
      sumInto(ctx, this.stepStats, 1, this.norm);
      clipCoefficient(ctx, this.clipScale, this.norm, s.max_grad_norm);
      // The weights as the previous update left them, in the same readback: NaN/Inf stop the run here.
      this.recordWeightNorm();
      // The trainer's skip rule (finishStep's `ok`, and the weights' check) on the GPU, for a gated update.
      if (this.gate) stepGate(ctx, this.gate, this.stepStats, { loss: this.objective.lossSlot!, norm: 1, weight: this.weightSlot });
      stats = ctx.readF32(this.stepStats);
      // A step recorded ahead may be dropped (a stop, an error): its read is then never awaited.
      stats.catch(() => undefined);
    }
    return { index, plan, lr, t0, stats, gated: false };
  }

  /**
   * Awaits a started step's statistics, checks the weights it trained on, decides whether its update applies
   * (recording it now, or counting the gated one run() recorded) and makes its record.
   */
  private async finishStep(started: StartedStep, ro: RunOptions): Promise<StepRecord> {
    const { index: stepIndex, plan, lr } = started;
    let loss = Number.NaN;
    let norm = Number.NaN;
    let fields: Record<string, number> = {};
    if (started.stats) {
      const stats = await started.stats;
      if (!Number.isFinite(stats[this.weightSlot]!)) throw this.nonFinite(`before step ${stepIndex + 1}`);
      this.unchecked = false;
      ({ loss, fields } = this.objective.summarize(stats, plan));
      norm = stats[1]!;
    }
    const ok = plan.units > 0 && Number.isFinite(loss) && Number.isFinite(norm);
    if (ok) {
      // Gated: the GPU applied it already (its gate is this `ok`, Objective.lossSlot), only the count follows.
      // With overlap on, a step that was not overlapped records the same gated kernel (the gate still holds this
      // step's, 1), so that every step runs the same pipelines and bind groups.
      if (!started.gated && this.gate) this.optimizer.gatedStep(this.grads, lr, this.clipScale, this.gate);
      if (started.gated || this.gate) this.optimizer.applied();
      else this.optimizer.step(this.grads, lr, this.clipScale);
      this.lastUpdate = { step: stepIndex + 1, lr };
      this.unchecked = true;
      this.appliedThisSession++;
      this.notFiniteInARow = 0;
    } else {
      this.skipped++;
      if (plan.units > 0) this.notFiniteInARow++;
    }
    if (plan.units > 0) this.objective.afterStep?.(ok, lr);
    this.globalStep++;
    const end = now();
    const seconds = Math.max(end - Math.max(started.t0, this.lastFinish), 1e-9) / 1000;
    this.lastFinish = end;
    const record: StepRecord = {
      step: this.globalStep,
      epoch: this.globalStep / this.stepsPerEpoch,
      loss,
      learning_rate: lr,
      grad_norm: norm,
      tokens: plan.tokens,
      input_tokens: plan.inputTokens,
      tokens_per_second: plan.inputTokens / seconds,
      elapsed_s: 0, // set by run()
      skipped_steps: this.skipped,
      ...fields,
    };
    if (!ok) {
      record.skipped = true;
      record.skip_reason = plan.units > 0 ? 'not_finite' : 'no_target';
    }
    if (ok) this.watchFrozen(record, ro);
    return record;
  }

  /** weightNorm = ‖trainable weights‖ into the stats buffer's last slot (recorded, not submitted). */
  private recordWeightNorm(): void {
    gradNorm(this.ctx, this.weightNorm, this.params.flatMap((p) => p.parts));
    sumInto(this.ctx, this.stepStats, this.weightSlot, this.weightNorm);
  }

  /** The error of weights (or moments) that are no longer finite: which update broke them, what is kept. */
  private nonFinite(when: string, what = 'the trainable weights'): TrainError {
    const store = this.opts.store;
    const kept =
      store && this.lastSaved > 0
        ? `the last good checkpoint, ${store.location}/${checkpointName(this.lastSaved)}, is kept and nothing after it was saved`
        : 'nothing of this run was saved';
    const cause = this.lastUpdate
      ? `the update of step ${this.lastUpdate.step} (learning rate ${lrText(this.lastUpdate.lr)}) made ${what} NaN or infinite`
      : `${what} were already NaN or infinite when training started (the starting adapter, checkpoint or model holds them)`;
    const todo = this.lastUpdate ? 'lower learning_rate (or set max_grad_norm) and train again' : 'start from an adapter or checkpoint whose values are finite';
    return new TrainError('non-finite', `Training stopped ${when}: ${cause}; ${kept}: ${todo}.`);
  }

  /** The error of a run whose loss or gradient stays NaN/Inf: nothing is learned, so it stops. */
  private neverFinite(when: string, which: string): TrainError {
    const store = this.opts.store;
    const kept = store && this.lastSaved > 0 ? `; ${store.location}/${checkpointName(this.lastSaved)} is kept` : '';
    return new TrainError(
      'non-finite',
      `Training stopped ${when}: the loss or gradient norm was NaN or infinite at ${which}, so those steps were skipped and nothing was learned from them${kept}: ` +
        'check the model and the starting adapter for NaN or infinite weights, and lower learning_rate (or set max_grad_norm).',
    );
  }

  /**
   * Says once when FROZEN_STEPS applied steps in a row had a gradient norm of exactly 0 and the same loss: the
   * weights no longer change the loss (saturated by a far too high learning rate, or nothing trains).
   */
  private watchFrozen(record: StepRecord, ro: RunOptions): void {
    const f = this.frozen;
    // "Not moved": within float rounding of the step's sums (the batches differ, the model's answer does not).
    if (record.grad_norm === 0 && (f.steps === 0 || Math.abs(record.loss - f.loss) <= 1e-5 * Math.abs(f.loss))) f.steps++;
    else f.steps = record.grad_norm === 0 ? 1 : 0;
    f.loss = record.loss;
    if (f.steps < FROZEN_STEPS || f.warned) return;
    f.warned = true;
    ro.onWarning?.(
      `the loss has stayed at ${record.loss.toFixed(4)} with a gradient norm of 0 for ${f.steps} steps (up to step ${record.step}): the model has stopped learning, ` +
        `most likely because learning_rate ${lrText(record.learning_rate)} is far too high and the weights saturated; lower it and train again`,
    );
  }

  // ---- evaluation -----------------------------------------------------------------------------------------

  /**
   * The validation split's loss, in batches of per_device_eval_batch_size: eval_loss = Σ NLL / target tokens
   * (SFT) or the mean pair loss with eval_rewards/... (DPO, RM). Undefined without a validation split.
   */
  async evaluate(): Promise<EvalRecord | undefined> {
    this.alive();
    await this.objective.prepare();
    return this.objective.evaluate(this.globalStep);
  }

  /**
   * Work before the first step: DPO's reference log-probs (computed once and cached; afterwards a `reference`
   * model may be disposed). run() calls it; calling it earlier is allowed.
   */
  async prepare(): Promise<void> {
    this.alive();
    await this.objective.prepare();
  }

  // ---- the loop ---------------------------------------------------------------------------------------------

  /** Trains until total steps, or until stopped (then a checkpoint is saved when there is a store). */
  async run(ro: RunOptions = {}): Promise<TrainResult> {
    this.alive();
    const s = this.opts.settings;
    const saved: number[] = [];
    const sessionStart = now();
    const sessionStartStep = this.globalStep;
    const saveEvery = s.save_strategy === 'steps' ? resolveInterval(s.save_steps, this.totalSteps) : 0;
    const evalEvery = s.eval_strategy === 'steps' ? resolveInterval(s.eval_steps ?? s.logging_steps, this.totalSteps) : 0;
    const stopRequested = () => ro.signal?.aborted === true || ro.control?.stopped === true;
    const progress = (phase: TrainProgress['phase']) => {
      const done = this.globalStep - sessionStartStep;
      const eta = estimateEta(this.globalStep, this.totalSteps, (now() - sessionStart) / 1000, done);
      const p: TrainProgress = { step: this.globalStep, totalSteps: this.totalSteps, epoch: this.globalStep / this.stepsPerEpoch, phase };
      const last = this.metrics[this.metrics.length - 1];
      if (last) p.last = last;
      if (eta !== undefined) p.etaSeconds = eta;
      ro.onProgress?.(p);
    };
    const save = async () => {
      if (!this.opts.store || this.lastSaved === this.globalStep || this.globalStep === 0) return;
      progress('checkpoint');
      await this.saveCheckpoint();
      saved.push(this.globalStep);
      ro.onCheckpoint?.(this.globalStep, `${this.opts.store.location}/${checkpointName(this.globalStep)}`);
    };
    const result = (status: TrainResult['status']): TrainResult => ({
      status,
      globalStep: this.globalStep,
      totalSteps: this.totalSteps,
      skippedSteps: this.skipped,
      metrics: [...this.metrics],
      evalMetrics: [...this.evalMetrics],
      checkpoints: saved,
    });

    // After step `done` (1-based) the run evaluates, saves or ends: the weights must then be those after it, so
    // the next step is not recorded ahead.
    const byEpoch = s.eval_strategy === 'epoch' || s.save_strategy === 'epoch';
    const boundary = (done: number) =>
      done >= this.totalSteps || (evalEvery > 0 && done % evalEvery === 0) || (saveEvery > 0 && done % saveEvery === 0) || (byEpoch && done % this.stepsPerEpoch === 0);

    await this.objective.prepare();
    progress('train');
    // Overlapped steps (docs/training.md): `ahead` is step globalStep, recorded and submitted (with the gated
    // update of the step before it) while that step's statistics were on their way back.
    let ahead: StartedStep | undefined;
    while (this.globalStep < this.totalSteps) {
      if (ro.control?.paused) await ro.control.waitWhilePaused();
      if (stopRequested()) {
        // A step recorded ahead changed gradients and statistics only (its update was never recorded): the
        // weights and moments are those after step globalStep, which the checkpoint holds.
        ahead = undefined;
        await this.ctx.sync();
        await save();
        return result('stopped');
      }
      const started = ahead ?? this.startStep(this.globalStep);
      ahead = undefined;
      if (this.gate && started.stats && !boundary(started.index + 1) && !stopRequested() && !ro.control?.paused) {
        const plan = this.planOf(started.index + 1);
        if (plan.units > 0) {
          this.optimizer.gatedStep(this.grads, started.lr, this.clipScale, this.gate);
          started.gated = true;
          ahead = this.startStep(started.index + 1, plan);
        }
      }
      const record = await this.finishStep(started, ro);
      record.elapsed_s = this.elapsedBase + (now() - sessionStart) / 1000;
      this.metrics.push(record);
      ro.onStep?.(record);
      if (this.notFiniteInARow >= NOT_FINITE_STOP) throw this.neverFinite(`after step ${this.globalStep}`, `the last ${NOT_FINITE_STOP} steps`);
      progress('train');
      const endOfEpoch = this.globalStep % this.stepsPerEpoch === 0;
      if ((evalEvery > 0 && this.globalStep % evalEvery === 0) || (s.eval_strategy === 'epoch' && endOfEpoch)) {
        progress('eval');
        const e = await this.evaluate();
        if (e) {
          this.evalMetrics.push(e);
          ro.onEval?.(e);
        }
      }
      if ((saveEvery > 0 && this.globalStep % saveEvery === 0) || (s.save_strategy === 'epoch' && endOfEpoch)) await save();
    }
    await this.ctx.sync();
    if (this.appliedThisSession === 0 && this.notFiniteInARow > 0) throw this.neverFinite(`after step ${this.globalStep}`, 'every step that had something to learn');
    if (s.save_strategy !== 'no') await save();
    return result('completed');
  }

  // ---- weights and checkpoints ------------------------------------------------------------------------------

  /** The trainable weights (the method's and the objective's, e.g. score.weight), read back (row blocks joined), by name. */
  async trainableWeights(): Promise<Map<string, Float32Array>> {
    this.alive();
    const out = new Map<string, Float32Array>();
    for (const p of this.params) out.set(p.name, await readJoined(this.ctx, p.parts));
    // The last update of a run is checked here, where its weights are read for the result or a checkpoint
    // (earlier updates were checked in the next step's readback): nothing non-finite is ever handed on.
    if (this.unchecked) {
      for (const [name, w] of out) if (!allFinite(w)) throw this.nonFinite(`after step ${this.globalStep}`, `the weights of ${name}`);
      this.unchecked = false;
    }
    return out;
  }

  /**
   * The gradients of the last step as the backward left them (before clipping), read back, by parameter name
   * (for checks against reference gradients).
   */
  async gradients(): Promise<Map<string, Float32Array>> {
    this.alive();
    const out = new Map<string, Float32Array>();
    for (const p of this.params) out.set(p.name, await readJoined(this.ctx, this.grads.get(p.name)!));
    return out;
  }

  private dataState(): DataState {
    const s = this.opts.settings;
    const epoch = Math.floor(this.globalStep / this.stepsPerEpoch);
    return {
      seed: s.seed,
      shuffle: !s.disable_shuffling,
      num_examples: this.opts.train.length,
      batch_size: s.per_device_train_batch_size,
      gradient_accumulation_steps: s.gradient_accumulation_steps,
      batches_per_epoch: this.batchesPerEpoch,
      steps_per_epoch: this.stepsPerEpoch,
      epoch,
      step_in_epoch: this.globalStep % this.stepsPerEpoch,
      order: [...this.epochOrder(epoch)],
      hash: this.dataHash(),
    };
  }

  /** Everything a checkpoint holds, read back from the GPU. */
  async checkpointData(): Promise<CheckpointData> {
    this.alive();
    const state: TrainerState = {
      format: STATE_FORMAT,
      version: STATE_VERSION,
      global_step: this.globalStep,
      total_steps: this.totalSteps,
      skipped_steps: this.skipped,
      elapsed_s: this.metrics[this.metrics.length - 1]?.elapsed_s ?? this.elapsedBase,
      schedule: { ...this.schedule },
      optimizer_step: this.optimizer.stepCount,
      data: this.dataState(),
      rng: { seed: this.opts.settings.seed, dropout_offset: this.loraDropoutAt(this.globalStep, 0)?.offset ?? 0, dropout_span: this.dropout?.span ?? 0 },
      method: {
        finetuning_type: this.method.kind,
        lora: this.method.lora,
        ...(this.method.bottleneck ? { bottleneck: this.method.bottleneck } : {}),
        ...(this.method.prompt ? { prompt: this.method.prompt } : {}),
        trainable: this.params.map((p) => ({ name: p.name, shape: p.shape, decay: p.decay })),
      },
      metrics: [...this.metrics],
      eval_metrics: [...this.evalMetrics],
      settings: this.opts.settings,
      settings_unset: SETTINGS_KEYS.filter((k) => this.opts.settings[k] === undefined),
      ...(this.changes.length ? { resumed_with_changes: this.changes.map((c) => ({ step: c.step, changes: [...c.changes] })) } : {}),
      saved_at: new Date().toISOString(),
    };
    const objectiveState = this.objective.exportState?.();
    if (objectiveState !== undefined) state.objective = objectiveState;
    const weights = await this.trainableWeights();
    const optimizer = await this.optimizer.exportState();
    // Nothing non-finite is ever written: the weights and moments are all here on the CPU anyway.
    for (const [name, w] of weights) if (!allFinite(w)) throw this.nonFinite(`at step ${this.globalStep}`, `the weights of ${name}`);
    for (const [name, o] of optimizer.params) {
      if (!allFinite(o.expAvg) || !allFinite(o.expAvgSq)) throw this.nonFinite(`at step ${this.globalStep}`, `AdamW's moments of ${name}`);
    }
    return { state, weights, optimizer };
  }

  /** Writes a checkpoint of the current step to the store, and removes the oldest beyond save_total_limit. */
  async saveCheckpoint(): Promise<void> {
    const store = this.opts.store;
    if (!store) throw new Error('saveCheckpoint: the trainer has no checkpoint store');
    const files = encodeCheckpoint(await this.checkpointData());
    await store.write(this.globalStep, files);
    this.lastSaved = this.globalStep;
    const limit = this.opts.settings.save_total_limit;
    if (limit !== undefined) {
      const steps = await store.list();
      for (const step of steps.slice(0, Math.max(0, steps.length - limit))) await store.delete(step);
    }
  }

  /** SHA-256 of the encoded training and validation data, computed once (checkpoint.ts's encodedDataHash). */
  dataHash(): string {
    return (this.hashCache ??= encodedDataHash(this.opts.train, this.opts.val ?? []));
  }

  /** The differences a resume went ahead with (resume_allow_changes), this one last; empty when none. */
  get resumeChanges(): readonly ResumeChange[] {
    return this.changes;
  }

  /**
   * What differs between the checkpoint's run and this job: every setting (but those that only steer saving,
   * logging and evaluation, and the run's length), the number of sequences and the encoded data's hash.
   */
  private differences(st: TrainerState): { changes: string[]; length: string[] } {
    const s = this.opts.settings as unknown as Record<string, unknown>;
    const was = st.settings as unknown as Record<string, unknown>;
    const changes: string[] = [];
    const length: string[] = [];
    const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));
    // Every key the checkpoint's run had (set, or listed as unset); a key its Graft did not know is no difference.
    for (const key of new Set([...Object.keys(was), ...(st.settings_unset ?? [])])) {
      if (RESUME_FREE.has(key)) continue;
      if (JSON.stringify(was[key]) === JSON.stringify(s[key])) continue;
      (RESUME_LENGTH.has(key) ? length : changes).push(`${key} ${show(was[key])} → ${show(s[key])}`);
    }
    if (st.data.num_examples !== this.opts.train.length) {
      changes.push(`the dataset: the checkpoint's run trained on ${st.data.num_examples} sequences, this job has ${this.opts.train.length}`);
    } else if (st.data.hash !== undefined && st.data.hash !== this.dataHash()) {
      changes.push(`the encoded data: the records, or how they are encoded, changed (sha256 ${st.data.hash.slice(0, 12)}… in the checkpoint, ${this.dataHash().slice(0, 12)}… now)`);
    }
    return { changes, length };
  }

  /** Restores a checkpoint of this run: weights, moments, step counts, metrics. Checks that it is this run. */
  private restore(c: CheckpointData): void {
    const st = c.state;
    const s = this.opts.settings;
    const was = st.settings;
    // The objective's own state first: it names what does not fit it (multi-task weighting) in its own words.
    this.objective.importState?.(st.objective);
    const { changes, length } = this.differences(st);
    if (changes.length && !s.resume_allow_changes) {
      throw bad(
        'resume_from_checkpoint',
        `the checkpoint's run differs from this job in ${changes.length === 1 ? 'one respect' : `${changes.length} respects`}: ${changes.join('; ')}; ` +
          'resuming continues the same run, so set them back, train in another output_dir (or with overwrite_output_dir), or set resume_allow_changes: true to resume anyway (the differences are recorded)',
      );
    }
    const mine = this.params.map((p) => `${p.name} [${p.shape.join(', ')}]`);
    const theirs = st.method.trainable.map((p) => `${p.name} [${p.shape.join(', ')}]`);
    if (mine.join('\n') !== theirs.join('\n')) {
      const diff = mine.find((x) => !theirs.includes(x)) ?? theirs.find((x) => !mine.includes(x));
      throw bad('resume_from_checkpoint', `the checkpoint trains other tensors than this job (first difference: ${diff}); the method settings changed, and its weights cannot be restored into this job even with resume_allow_changes`);
    }
    if (!s.resume_allow_changes) {
      const span = st.rng.dropout_span;
      if (this.dropout && was.lora_dropout > 0 && span !== undefined && span !== this.dropout.span) {
        throw bad('resume_from_checkpoint', `the checkpoint's LoRA dropout drew ${span} counters per micro-batch, this job ${this.dropout.span}: the adapter targets or the training sequences changed`);
      }
      const epoch = st.data.epoch;
      const order = this.epochOrder(epoch);
      if (order.length !== st.data.order.length || order.some((v, i) => v !== st.data.order[i])) {
        throw bad('resume_from_checkpoint', `the data order of epoch ${epoch} differs from the checkpoint's: the dataset or the seed changed`);
      }
    }
    for (const p of this.params) writeJoined(this.ctx, p.parts, c.weights.get(p.name)!, p.name);
    this.optimizer.importState(c.optimizer);
    this.globalStep = st.global_step;
    this.skipped = st.skipped_steps;
    this.elapsedBase = st.elapsed_s;
    this.metrics.push(...st.metrics);
    this.evalMetrics.push(...st.eval_metrics);
    this.lastSaved = st.global_step;
    this.changes.push(...(st.resumed_with_changes ?? []));
    if (changes.length) {
      this.changes.push({ step: st.global_step, changes });
      this.notes.push(`resume_allow_changes: resuming after step ${st.global_step} with ${changes.join('; ')} (recorded in the checkpoints)`);
    }
    if (st.total_steps !== this.totalSteps) this.notes.push(`the run now has ${this.totalSteps} steps (the checkpoint's had ${st.total_steps})${length.length ? `: ${length.join(', ')}` : ''}`);
  }

  private alive(): void {
    if (this.disposed) throw new Error('The trainer was disposed');
  }

  /** Frees gradients, optimizer state and the trained adapter (export it first). Base weights stay the model's. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.grads.release();
    this.optimizer.release();
    this.objective.release();
    this.stepStats.release();
    this.norm.release();
    this.weightNorm.release();
    this.clipScale.release();
    this.gate?.release();
    this.method.release();
  }
}

function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}

function now(): number {
  return globalThis.performance?.now() ?? Date.now();
}
