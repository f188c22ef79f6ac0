// A training checkpoint: everything that continuing the same run needs, as plain files (the list of files and
// what resuming restores: docs/training.md, "Checkpoints").
import { exportBottleneckAdapter } from '../export/bottleneck-adapter';
import { exportPeftAdapter } from '../export/peft-adapter';
import { exportPromptTuning } from '../export/prompt-tuning';
import { PROMPT_EMBEDDINGS } from '../model/prompt-tuning';
import type { BottleneckConfig } from '../model/bottleneck';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../model/safetensors';
import { Sha256 } from '../hub/sha256';
import { CheckpointError } from './checkpoint-store';
import { bottleneckWeights, loraModuleWeights, type LoraSpec, type PromptSpec } from './methods';
import type { EvalRecord, StepRecord } from './metrics';
import type { AdamWState } from './optimizer';
import type { ScheduleParams } from './schedule';
import type { FinetuningType, TrainSettings } from './settings';

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const TRAINABLE_FILE = 'trainable.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FORMAT = 'graft-trainer-state';
export const STATE_VERSION = 1;

/** Where the data stream stands: enough to recompute the order of every epoch and the next micro-batch. */
export interface DataState {
  seed: number;
  shuffle: boolean;
  /** Training sequences. */
  num_examples: number;
  batch_size: number;
  gradient_accumulation_steps: number;
  batches_per_epoch: number;
  steps_per_epoch: number;
  /** The epoch the next step belongs to (0-based) and its step within that epoch. */
  epoch: number;
  step_in_epoch: number;
  /** That epoch's example order (indices into the training sequences). */
  order: number[];
  /**
   * SHA-256 of the encoded training and validation data (encodedDataHash): a resume with other records, or
   * records encoded differently (template, cutoff_len, ...), is told apart even with the same count. Absent in
   * checkpoints from before it was recorded.
   */
  hash?: string;
}

/** A resume that went ahead with differences (resume_allow_changes): at which step, and what differed. */
export interface ResumeChange {
  /** The step the run resumed after. */
  step: number;
  /** "learning_rate 0.0001 → 0.00005", "the encoded data (…)". */
  changes: string[];
}

export interface TrainerState {
  format: typeof STATE_FORMAT;
  version: number;
  /** Optimizer steps done (skipped ones included): the step the checkpoint was taken after. */
  global_step: number;
  total_steps: number;
  skipped_steps: number;
  elapsed_s: number;
  schedule: ScheduleParams;
  /** AdamW's own step count (skipped steps excluded): its bias corrections. */
  optimizer_step: number;
  data: DataState;
  /**
   * LoRA dropout's counter-based generator (trainer.ts): the seed, the first counter of the next step
   * (global_step · gradient_accumulation_steps · dropout_span) and the counters per micro-batch; both 0
   * without dropout. The offsets follow from the step, so a resume recomputes them; the span is checked.
   * dropout_span is absent in checkpoints from before LoRA dropout.
   */
  rng: { seed: number; dropout_offset: number; dropout_span?: number };
  method: {
    finetuning_type: FinetuningType;
    lora: LoraSpec | null;
    /** finetuning_type adapter: the bottleneck adapter's shape (absent in checkpoints of other methods). */
    bottleneck?: BottleneckConfig | null;
    /** finetuning_type prompt: the prompt-tuning settings (absent in checkpoints of other methods). */
    prompt?: PromptSpec | null;
    trainable: { name: string; shape: number[]; decay: boolean }[];
  };
  metrics: StepRecord[];
  eval_metrics: EvalRecord[];
  /**
   * The objective's own state (JSON), absent when it has none: multi-task SFT keeps {tasks: TaskWeightState}
   * (src/train/task-weights.ts: DWA's loss windows, uncertainty's s_t with their Adam moments and step counts).
   */
  objective?: unknown;
  settings: TrainSettings;
  /**
   * The setting keys that were unset (undefined, so absent from `settings` in JSON): with `settings` every key
   * the run had, so that a resume tells "unset then, set now" from a key this Graft did not know yet.
   */
  settings_unset?: string[];
  /** Resumes that went ahead with differences (resume_allow_changes), oldest first; absent when none did. */
  resumed_with_changes?: ResumeChange[];
  saved_at: string;
}

export interface CheckpointData {
  state: TrainerState;
  /** Trainable weights by name, the full tensor (row blocks joined). */
  weights: Map<string, Float32Array>;
  optimizer: AdamWState;
}

const encoder = new TextEncoder();

/** A sequence as the data hash reads it (TrainExample's fields). */
interface HashedSequence {
  inputIds: readonly number[];
  labels: readonly number[];
  task?: string;
}

/**
 * SHA-256 (hex) of the encoded examples in order — training, then validation —: each sequence's token ids,
 * labels and task, and for pairs the chosen and the rejected sequence. Any change in the records or in how they
 * are encoded changes it.
 */
export function encodedDataHash(train: readonly unknown[], val: readonly unknown[] = []): string {
  const h = new Sha256();
  const head = new Int32Array(3);
  const put = (x: HashedSequence) => {
    const task = encoder.encode(x.task ?? '');
    head[0] = x.inputIds.length;
    head[1] = x.labels.length;
    head[2] = task.length;
    h.update(new Uint8Array(head.buffer));
    h.update(task);
    h.update(new Uint8Array(Int32Array.from(x.inputIds).buffer));
    h.update(new Uint8Array(Int32Array.from(x.labels).buffer));
  };
  for (const [part, items] of [[1, train], [2, val]] as const) {
    h.update(new Uint8Array(Int32Array.of(part, items.length).buffer));
    for (const item of items) {
      const pair = item as { chosen?: HashedSequence; rejected?: HashedSequence };
      if (pair.chosen && pair.rejected) {
        put(pair.chosen);
        put(pair.rejected);
      } else put(item as HashedSequence);
    }
  }
  return h.hex();
}

/** The files of a checkpoint. */
export function encodeCheckpoint(data: CheckpointData): Map<string, Uint8Array> {
  const { state, weights, optimizer } = data;
  const trainable: TensorToWrite[] = [];
  const moments: TensorToWrite[] = [];
  for (const t of state.method.trainable) {
    const w = weights.get(t.name);
    const o = optimizer.params.get(t.name);
    if (!w || !o) throw new Error(`encodeCheckpoint: ${t.name} has no ${w ? 'optimizer state' : 'weights'}`);
    trainable.push({ name: t.name, dtype: 'F32', shape: t.shape, data: w });
    moments.push({ name: `${t.name}.exp_avg`, dtype: 'F32', shape: t.shape, data: o.expAvg });
    moments.push({ name: `${t.name}.exp_avg_sq`, dtype: 'F32', shape: t.shape, data: o.expAvgSq });
  }
  const files = new Map<string, Uint8Array>();
  files.set(TRAINABLE_FILE, writeSafetensors(trainable, { format: 'pt' }));
  files.set(OPTIMIZER_FILE, writeSafetensors(moments, { format: 'pt', optimizer: 'AdamW', step: String(optimizer.step) }));
  const lora = state.method.lora;
  if (lora) {
    const modules = loraModuleWeights(lora, weights);
    const adapter = exportPeftAdapter({
      baseModel: state.settings.model_name_or_path,
      ...(state.settings.model_revision !== 'main' ? { revision: state.settings.model_revision } : {}),
      r: lora.r,
      alpha: lora.alpha,
      useRslora: lora.useRslora,
      dropout: state.settings.lora_dropout,
      targetModules: lora.targetModules,
      modules,
    });
    for (const [name, bytes] of adapter) files.set(name, bytes);
  }
  const bottleneck = state.method.bottleneck;
  if (bottleneck) {
    const adapter = exportBottleneckAdapter({ adapter: bottleneckWeights(bottleneck, weights), baseModel: state.settings.model_name_or_path });
    for (const [name, bytes] of adapter) files.set(name, bytes);
  }
  const prompt = state.method.prompt;
  if (prompt) {
    const embeddings = weights.get(PROMPT_EMBEDDINGS);
    if (!embeddings) throw new Error(`encodeCheckpoint: a prompt-tuning run without ${PROMPT_EMBEDDINGS}`);
    const adapter = exportPromptTuning({
      baseModel: state.settings.model_name_or_path,
      ...(state.settings.model_revision !== 'main' ? { revision: state.settings.model_revision } : {}),
      ...prompt,
      embeddings,
    });
    for (const [name, bytes] of adapter) files.set(name, bytes);
  }
  files.set(TRAINER_STATE_FILE, encoder.encode(`${JSON.stringify({ ...state, optimizer_step: optimizer.step }, null, 1)}\n`));
  return files;
}

/** Reads a checkpoint's files back; `where` names it in errors. */
export function decodeCheckpoint(files: ReadonlyMap<string, Uint8Array>, where: string): CheckpointData {
  const need = (name: string): Uint8Array => {
    const f = files.get(name);
    if (!f) throw new CheckpointError(`The checkpoint ${where} lacks ${name}; it is not a complete Graft checkpoint.`);
    return f;
  };
  let state: TrainerState;
  try {
    state = JSON.parse(new TextDecoder().decode(need(TRAINER_STATE_FILE))) as TrainerState;
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`The checkpoint ${where}: ${TRAINER_STATE_FILE} is not valid JSON.`, { cause: e });
  }
  if (state.format !== STATE_FORMAT) throw new CheckpointError(`The checkpoint ${where} was not written by Graft (${TRAINER_STATE_FILE} has no "format": "${STATE_FORMAT}").`);
  if (state.version !== STATE_VERSION) throw new CheckpointError(`The checkpoint ${where} has format version ${state.version}; this Graft reads version ${STATE_VERSION}.`);
  let trainable: SafetensorsFile;
  let optimizer: SafetensorsFile;
  try {
    trainable = new SafetensorsFile(need(TRAINABLE_FILE), TRAINABLE_FILE);
    optimizer = new SafetensorsFile(need(OPTIMIZER_FILE), OPTIMIZER_FILE);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`The checkpoint ${where} is damaged: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const weights = new Map<string, Float32Array>();
  const params = new Map<string, { expAvg: Float32Array; expAvgSq: Float32Array }>();
  const names = new Set(trainable.names);
  for (const t of state.method.trainable) {
    if (!names.has(t.name)) throw new CheckpointError(`The checkpoint ${where} lacks the weights of ${t.name}.`);
    weights.set(t.name, trainable.float32(t.name));
    params.set(t.name, { expAvg: optimizer.float32(`${t.name}.exp_avg`), expAvgSq: optimizer.float32(`${t.name}.exp_avg_sq`) });
  }
  return { state, weights, optimizer: { step: state.optimizer_step, params } };
}
