// What a training objective is to the trainer (the Objective interface, the step's stats buffer, a micro-batch's
// environment) and what every objective shares. docs/training.md ("Objectives").
import type { GpuContext } from '../../engine/context';
import type { Tensor } from '../../engine/tensor';
import type { Activations } from '../../model/activations';
import { releaseBatch, type Batch } from '../../model/batch';
import type { Gradients } from '../../model/gradients';
import type { ForwardOptions, LoraDropout } from '../../model/forward-options';
import type { CausalLM } from '../../model/transformer';
import type { EvalRecord } from '../metrics';
import type { TrainableParam } from '../methods';
import type { Stage, TrainSettings } from '../settings-types';

/** What every objective is made from: the model, the job's settings and the data (SFT: sequences; DPO / RM: pairs of sequences). */
export interface ObjectiveInputs<T = unknown> {
  model: CausalLM;
  settings: TrainSettings;
  train: readonly T[];
  val?: readonly T[];
  padTokenId: number;
}

export interface BackwardHookInfo {
  step: number;
  micro: number;
  dLogits: readonly Tensor[];
  ctx: GpuContext;
}

/** What one micro-batch's work needs from the trainer. */
export interface MicroStepEnv {
  grads: Gradients;
  /** The step's stats buffer (docs/training.md, "Objectives"). */
  stats: Tensor;
  /** The optimizer step, counting from 1. */
  step: number;
  micro: number;
  /**
   * LoRA dropout for the micro-batch's training forward(s) (docs/training.md, "LoRA dropout"); absent when nothing is
   * dropped (lora_dropout 0, or no LoRA), and then no forward gets the option.
   */
  loraDropout?: LoraDropout;
  /** Activation checkpointing for the micro-batch's training forward(s) (gradient_checkpointing; docs/training.md, "Activation checkpointing"). */
  checkpoint?: boolean;
  /** Called with the micro-batch's dLogits just before its backward (the trainer's hook). */
  beforeBackward?(info: BackwardHookInfo): void;
}

/** The training options of a forward that a backward follows: env's LoRA dropout and checkpointing, when set. */
export type TrainingForward = Pick<ForwardOptions, 'loraDropout' | 'checkpoint'>;

export function trainingForward(env: MicroStepEnv): TrainingForward {
  return { ...(env.loraDropout ? { loraDropout: env.loraDropout } : {}), ...(env.checkpoint ? { checkpoint: true } : {}) };
}

/**
 * The end of a training micro-batch's work: the trainer's hook, the model's backward from dLogits (and dHidden,
 * for a head on the hidden states), then the release of dLogits, of `release` in order, of the activations and
 * of the batch.
 */
export function backwardAndRelease(
  env: MicroStepEnv,
  model: CausalLM,
  work: { batch: Batch; acts: Activations; dLogits: Tensor[]; dHidden?: Tensor; release: readonly { release(): void }[] },
): void {
  const { batch, acts, dLogits } = work;
  env.beforeBackward?.({ step: env.step, micro: env.micro, dLogits, ctx: model.ctx });
  model.backward(acts, dLogits, env.grads, work.dHidden);
  for (const d of dLogits) d.release();
  for (const r of work.release) r.release();
  acts.release();
  releaseBatch(batch);
}

/** One optimizer step's work, planned on the CPU. */
export interface StepPlan {
  /** The loss's denominator over the whole step: target tokens (SFT) or pairs (DPO, RM). 0: nothing to learn. */
  units: number;
  /** Target (answer) tokens of the step. */
  tokens: number;
  /** Non-padding input tokens of the step. */
  inputTokens: number;
  /** One entry per micro-batch: records its forward, its loss (into env.stats) and its backward (into env.grads). */
  micro: ((env: MicroStepEnv) => void)[];
  /** Multi-task SFT: target tokens n_t of each task in the whole step, and the weights w_t the step uses. */
  tasks?: { tokens: number[]; weights: number[] };
}

export interface Objective {
  readonly stage: Stage;
  /** Length of the step's stats buffer (at least 2). */
  readonly statsSize: number;
  /** Trainable parameters the objective adds to the method's (the reward head); the trainer makes their gradients. */
  readonly extraParams: readonly TrainableParam[];
  /** Remarks for the person (memory taken by a reference model, ...). */
  readonly notes: readonly string[];
  /** Training items (sequences or pairs) in file order. */
  readonly size: number;
  /**
   * The most tokens (rows × padded length, summed over its training forwards) that one training micro-batch
   * of per_device_train_batch_size items can run through the model: it sizes each micro-batch's range of
   * LoRA dropout counters. A function of the settings and the training data only.
   */
  readonly microTokenBound: number;
  /** Multi-task runs: the task names and each training item's task index (balanced sampling reads them). */
  readonly tasks?: { readonly names: readonly string[]; readonly ofExample: readonly number[] };
  /**
   * Called after each step that had something to learn, with whether its update was applied (not skipped) and
   * its learning rate: multi-task weighting observes the step's losses here.
   */
  afterStep?(applied: boolean, learningRate: number): void;
  /**
   * Set where the step's loss is stats[lossSlot] / units, so that it is finite exactly when that slot is, and
   * nothing of a step's plan depends on the steps before it (afterStep does nothing): the trainer can then decide
   * a step's skip on the GPU and record the next step before this one's statistics are read back (overlap).
   */
  readonly lossSlot?: number;
  /** State beyond weights and moments that a checkpoint keeps (JSON; multi-task weights), and its restore. */
  exportState?(): unknown;
  importState?(state: unknown): void;
  /** The work of the step whose micro-batches hold these item indices. */
  plan(batches: readonly (readonly number[])[]): StepPlan;
  /** The step record's loss and the objective's own fields, from the read-back stats buffer. */
  summarize(stats: Float32Array, plan: StepPlan): { loss: number; fields: Record<string, number> };
  /** Work before the first step (DPO: the reference log-probs, computed once). Runs once; later calls return at once. */
  prepare(): Promise<void>;
  /** The validation split's loss (and metrics), or undefined without a validation split. */
  evaluate(step: number): Promise<EvalRecord | undefined>;
  release(): void;
}

/** A problem with the examples: which one and why. */
export function checkSequence(what: string, ids: readonly number[], labels: readonly number[], maxPositions: number, tooLong: (n: number) => Error): void {
  if (ids.length === 0 || ids.length !== labels.length) throw new Error(`${what} has ${ids.length} ids and ${labels.length} labels`);
  if (ids.length > maxPositions) throw tooLong(ids.length);
}
