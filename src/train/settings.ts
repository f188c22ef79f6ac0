// Training job settings under LLaMA-Factory's argument names, so that one job file runs in Graft and in
// LLaMA-Factory (`llamafactory-cli train job.yaml`) unchanged. Defaults are LLaMA-Factory's, and where it
// leaves a setting to Hugging Face's TrainingArguments, transformers' (checked against LLaMA-Factory's
// hparams/*.py and transformers' training_args.py):
//
//   lora_rank 8, lora_alpha = 2 · lora_rank, lora_dropout 0, lora_target "all", freeze_trainable_layers 2,
//   freeze_trainable_modules "all", cutoff_len 2048, val_size 0, pref_beta 0.1 (LLaMA-Factory);
//   learning_rate 5e-5, lr_scheduler_type "linear", warmup 0, per_device_train_batch_size 8,
//   gradient_accumulation_steps 1, max_grad_norm 1.0, num_train_epochs 3.0, max_steps -1, weight_decay 0,
//   adam_beta1 0.9, adam_beta2 0.999, adam_epsilon 1e-8, seed 42, logging_steps 500, save_steps 500,
//   eval_strategy "no", output_dir "trainer_output", gradient_checkpointing false (transformers).
//
// gradient_checkpointing (TrainingArguments' name): every training forward that a backward follows keeps only
// each layer's input and the backward recomputes the layer (ForwardOptions.checkpoint in
// src/model/transformer.ts) — the same losses and weights bit for bit, less memory, one more forward of the
// layers per step. LLaMA-Factory checkpoints by default (its disable_gradient_checkpointing turns it off);
// Graft's default is off, and its LLaMA-Factory export writes disable_gradient_checkpointing to match.
//
// Graft's own keys, which LLaMA-Factory lacks and its job files never get: the multi-task settings
// task_weighting (static), task_weights, dwa_temperature (2.0), dwa_window (10) and task_sampling (proportional),
// see src/train/task-weights.ts; `dataset` may list several files for stage sft, each a task.
// For finetuning_type "adapter" (bottleneck adapters, src/model/bottleneck.ts): adapter_placement "pfeiffer"
// (after the MLP output) or "houlsby" (after attention and MLP outputs), reduction_factor 16 (bottleneck size =
// hidden_size / reduction_factor), adapter_non_linearity "relu".
//
// Every key of a job is accounted for, never dropped in silence:
// - the keys of TrainSettings are honoured;
// - keys that only steer LLaMA-Factory's machinery (worker counts, report_to, plot_loss, ...) are accepted
//   and listed in `notes` with a word on what Graft does instead;
// - LLaMA-Factory keys that would change the result and that Graft cannot honour (deepspeed, quantization_bit,
//   bf16: true, ...) are refused with a sentence on what Graft does instead; `false`/null values of such keys
//   ask for nothing and pass;
// - anything else is refused as unknown, with "did you mean" for near misses.
//
// Prompt tuning (finetuning_type "prompt", PEFT's PROMPT_TUNING) is Graft's, not LLaMA-Factory's: its keys
// num_virtual_tokens (default 20), prompt_tuning_init ("random", or "text" — the default when
// prompt_tuning_init_text is given) and prompt_tuning_init_text are PEFT's PromptTuningConfig names.
//
// Values may be strings (command-line flags): "true", "1e-3" and "8" are converted as the type asks.
// This file runs in the browser worker too: no Node imports.
import { isMap, isScalar, LineCounter, parseDocument, type Pair } from 'yaml';
import type { TaskWeighting } from './task-weights';

export type Stage = 'sft' | 'dpo' | 'rm';
export type PrefLossType = 'sigmoid' | 'hinge' | 'ipo' | 'orpo' | 'simpo';
export type FinetuningType = 'lora' | 'full' | 'freeze' | 'adapter' | 'prompt';
export type AdapterPlacement = 'houlsby' | 'pfeiffer';
export type AdapterNonLinearity = 'relu' | 'silu' | 'gelu';
export type PromptTuningInitSetting = 'random' | 'text';
export type LrSchedulerType = 'constant' | 'constant_with_warmup' | 'linear' | 'cosine';
export type IntervalStrategy = 'no' | 'steps' | 'epoch';
export type TaskSampling = 'proportional' | 'balanced';
export type { TaskWeighting } from './task-weights';

/** A training job. Field names and meanings are LLaMA-Factory's (see the file comment for defaults). */
export interface TrainSettings {
  // model
  /** A hub model id ("HuggingFaceTB/SmolLM2-135M-Instruct") or a local folder (command line). */
  model_name_or_path: string;
  /** Branch, tag or commit of the model on the hub. Default "main". */
  model_revision: string;
  /** A PEFT LoRA adapter to start from (hub id or folder). Only with finetuning_type "lora". */
  adapter_name_or_path?: string;

  // method
  /** "sft" (supervised fine-tuning), "dpo" (preference optimisation) or "rm" (a reward model). */
  stage: Stage;
  finetuning_type: FinetuningType;
  lora_rank: number;
  /** Default 2 · lora_rank. */
  lora_alpha: number;
  lora_dropout: number;
  /** Module names (q_proj, v_proj, ...) or ["all"] for every linear layer of the blocks. */
  lora_target: string[];
  /** Scale the LoRA update by alpha / sqrt(r) instead of alpha / r. */
  use_rslora: boolean;
  /** Freeze tuning: a positive n trains the last n layers, a negative n the first |n|. Default 2. */
  freeze_trainable_layers: number;
  /** Which modules of the trainable layers train: ["all"] or names such as "mlp", "self_attn". */
  freeze_trainable_modules: string[];
  /** Modules outside the hidden layers that train too (e.g. "embed_tokens", "norm"). */
  freeze_extra_modules?: string[];
  /** Bottleneck adapters (Graft's key): "pfeiffer" (after the MLP output, default) or "houlsby" (attention and MLP). */
  adapter_placement: AdapterPlacement;
  /** Bottleneck adapters: bottleneck size = hidden_size / reduction_factor (must divide it). Default 16. */
  reduction_factor: number;
  /** Bottleneck adapters: the non-linearity between down- and up-projection. Default "relu". */
  adapter_non_linearity: AdapterNonLinearity;
  /** Prompt tuning: the number of virtual tokens in front of every sequence. Default 20. */
  num_virtual_tokens: number;
  /** Prompt tuning: "random" (N(0, 1)) or "text" (the embeddings of prompt_tuning_init_text's tokens). */
  prompt_tuning_init: PromptTuningInitSetting;
  /** Prompt tuning: the text whose token embeddings start the virtual tokens (prompt_tuning_init "text"). */
  prompt_tuning_init_text?: string;
  /** DPO: beta of the preference loss. */
  pref_beta: number;
  /** DPO: the loss (LLaMA-Factory's pref_loss): sigmoid (DPO), hinge, ipo, orpo, simpo. */
  pref_loss: PrefLossType;
  /** DPO with pref_loss simpo: SimPO's target reward margin gamma. Default 0.5 (LLaMA-Factory's). */
  simpo_gamma?: number;
  /** DPO: weight of an added SFT loss on the chosen answers. */
  pref_ftx: number;

  // dataset
  /**
   * A dataset file (command line), a hub dataset id, or a name in dataset_dir/dataset_info.json. Stage sft
   * takes a comma list too: each dataset is then a task of a multi-task run (datasetNames).
   */
  dataset: string;
  dataset_dir: string;
  /** LLaMA-Factory's chat template name. Graft renders with the model's own chat template; see settingsNotes. */
  template?: string;
  cutoff_len: number;
  train_on_prompt: boolean;
  /** Multi-turn records: train on the last answer only. */
  mask_history: boolean;
  packing: boolean;
  /** A fraction in [0, 1) or a whole number of examples held out for evaluation. */
  val_size: number;
  /** Use at most this many records of the dataset. */
  max_samples?: number;
  /** Train in file order (no shuffle). */
  disable_shuffling: boolean;

  // multi-task (Graft's own settings: LLaMA-Factory has none; see src/train/task-weights.ts). Tasks are the
  // `task` field of the records; a run without one is single-task and these settings must stay unset.
  /** How the per-task mean losses are weighted: static (task_weights), dwa or uncertainty. Default static. */
  task_weighting: TaskWeighting;
  /** static: weight per task ("qa:1,summarise:0.5" or a mapping); tasks not named weigh 1. */
  task_weights?: Record<string, number>;
  /** dwa: the softmax temperature T. Default 2.0 (Liu et al. 2019). */
  dwa_temperature: number;
  /** dwa: optimizer steps per loss window (the paper's epoch). Default 10. */
  dwa_window: number;
  /** proportional: the usual shuffle; balanced: each task equally likely per example. Default proportional. */
  task_sampling: TaskSampling;

  // training
  learning_rate: number;
  lr_scheduler_type: LrSchedulerType;
  warmup_steps: number;
  warmup_ratio: number;
  per_device_train_batch_size: number;
  gradient_accumulation_steps: number;
  /** Clip the global gradient norm to this; 0 turns clipping off. */
  max_grad_norm: number;
  num_train_epochs: number;
  /** When > 0, the number of optimizer steps, overriding num_train_epochs. -1: use the epochs. */
  max_steps: number;
  weight_decay: number;
  adam_beta1: number;
  adam_beta2: number;
  adam_epsilon: number;
  seed: number;
  /** Recompute each layer's forward in the backward instead of keeping its activations (see the file comment). */
  gradient_checkpointing: boolean;

  // evaluation
  eval_strategy: IntervalStrategy;
  /** Default: logging_steps (as transformers). A value below 1 is a fraction of the total steps. */
  eval_steps?: number;
  per_device_eval_batch_size: number;

  // output
  output_dir: string;
  overwrite_output_dir: boolean;
  /** A checkpoint folder to continue from. */
  resume_from_checkpoint?: string;
  /** A value below 1 is a fraction of the total steps (as transformers). */
  logging_steps: number;
  save_strategy: IntervalStrategy;
  save_steps: number;
  save_total_limit?: number;
}

/** A job that cannot run, with every problem found (not only the first). */
export class SettingsError extends Error {
  readonly code = 'bad-settings';
  constructor(
    readonly source: string,
    readonly problems: SettingsProblem[],
  ) {
    super(
      problems.length === 1
        ? `${source}: ${formatProblem(problems[0]!)}`
        : `${source} has ${problems.length} problems:\n${problems.map((p) => `  - ${formatProblem(p)}`).join('\n')}`,
    );
    this.name = 'SettingsError';
  }
}

export interface SettingsProblem {
  /** The key concerned; undefined for problems of the file as a whole. */
  key?: string;
  /** 1-based line in the job file, when the settings came from one. */
  line?: number;
  message: string;
}

function formatProblem(p: SettingsProblem): string {
  const where = [p.line !== undefined ? `line ${p.line}` : '', p.key ?? ''].filter(Boolean).join(', ');
  return where ? `${where}: ${p.message}` : p.message;
}

export interface ParsedSettings {
  settings: TrainSettings;
  /** Keys that were accepted but change nothing in Graft, each with what Graft does instead. Show them. */
  notes: string[];
}

// Parsers per key -------------------------------------------------------------------------------------------

class Bad extends Error {}
const bad = (message: string): never => {
  throw new Bad(message);
};

const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? `a list` : String(v));

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v.trim());
    if (!Number.isNaN(n)) return n;
  }
  return bad(`must be a number, not ${show(v)}`);
}

function num(opts: { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean } = {}) {
  return (v: unknown): number => {
    const n = toNumber(v);
    if (!Number.isFinite(n)) bad(`must be a finite number, not ${show(v)}`);
    const { min, max, minExclusive, maxExclusive } = opts;
    if (min !== undefined && (minExclusive ? n <= min : n < min)) bad(`must be ${minExclusive ? 'greater than' : 'at least'} ${min}, not ${n}`);
    if (max !== undefined && (maxExclusive ? n >= max : n > max)) bad(`must be ${maxExclusive ? 'less than' : 'at most'} ${max}, not ${n}`);
    return n;
  };
}

function int(opts: { min?: number; max?: number } = {}) {
  const check = num(opts);
  return (v: unknown): number => {
    const n = toNumber(v);
    if (!Number.isInteger(n)) bad(`must be a whole number, not ${show(v)}`);
    if (!Number.isSafeInteger(n)) bad(`is too large (${n})`);
    return check(n);
  };
}

const TRUE = new Set(['true', 'yes', 'y', 't', 'on', '1']);
const FALSE = new Set(['false', 'no', 'n', 'f', 'off', '0']);

/** Booleans as transformers' string_to_bool reads them (plus on/off, which YAML 1.1 reads as booleans). */
function toBool(v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 1 || v === 0) return v === 1;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (TRUE.has(s)) return true;
    if (FALSE.has(s)) return false;
  }
  return bad(`must be true or false, not ${show(v)}`);
}

function str(v: unknown): string {
  if (typeof v === 'string') {
    if (v.trim() === '') bad('must not be empty');
    return v.trim();
  }
  if (typeof v === 'number') return String(v);
  return bad(`must be a string, not ${show(v)}`);
}

function oneOf<T extends string>(values: readonly T[], hint?: (v: string) => string | undefined) {
  return (v: unknown): T => {
    const s = str(v);
    if ((values as readonly string[]).includes(s)) return s as T;
    return bad(hint?.(s) ?? `must be one of ${values.map((x) => `"${x}"`).join(', ')}, not "${s}"`);
  };
}

/** A comma-separated string or a list of strings → names (LLaMA-Factory's split_arg). */
function names(v: unknown): string[] {
  const parts = Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? x : bad(`must list names, and ${show(x)} is not one`))) : str(v).split(',');
  const out = parts.map((s) => s.trim()).filter((s) => s !== '');
  if (out.length === 0) bad('must name at least one module');
  for (const n of out) if (!/^[A-Za-z0-9_.*-]+$/.test(n)) bad(`"${n}" is not a module name`);
  if (out.includes('all') && out.length > 1) bad('"all" already means every module; list names or "all", not both');
  return out;
}

/** task_weights: "qa:1,summarise:0.5" or a mapping {qa: 1, summarise: 0.5} → weight by task; each ≥ 0, not all 0. */
function taskWeights(v: unknown): Record<string, number> {
  const entries: [string, unknown][] =
    typeof v === 'string'
      ? v.split(',').map((part) => {
          const i = part.lastIndexOf(':');
          if (i <= 0) return bad(`must list task:weight pairs such as "qa:1,summarise:0.5", and "${part.trim()}" is not one`);
          return [part.slice(0, i).trim(), part.slice(i + 1).trim()];
        })
      : typeof v === 'object' && v !== null && !Array.isArray(v)
        ? Object.entries(v)
        : bad(`must be task:weight pairs ("qa:1,summarise:0.5") or a mapping of task names to weights, not ${show(v)}`);
  const out: Record<string, number> = {};
  for (const [task, w] of entries) {
    if (task === '') bad('names a task with an empty name');
    if (task in out) bad(`names task "${task}" twice`);
    let n: number;
    try {
      n = num({ min: 0 })(w);
    } catch (e) {
      return bad(`weight of task "${task}" ${(e as Error).message}`);
    }
    out[task] = n;
  }
  if (Object.keys(out).length === 0) bad('names no task');
  if (Object.values(out).every((w) => w === 0)) bad('gives every task weight 0: nothing would be learned');
  return out;
}

type Parser = (v: unknown) => unknown;

const LR_SCHEDULERS = ['constant', 'constant_with_warmup', 'linear', 'cosine'] as const;
const HF_OTHER_SCHEDULERS = ['cosine_with_restarts', 'polynomial', 'inverse_sqrt', 'reduce_lr_on_plateau', 'cosine_with_min_lr', 'cosine_warmup_with_min_lr', 'warmup_stable_decay'];

/** Parser and default per honoured key. `undefined` default: the key is optional (left out when not set). */
const SPEC: { [K in keyof TrainSettings]-?: { parse: Parser; default: TrainSettings[K] | undefined | ((s: Partial<TrainSettings>) => TrainSettings[K]) } } = {
  model_name_or_path: { parse: str, default: undefined },
  model_revision: { parse: str, default: 'main' },
  adapter_name_or_path: {
    parse: (v) => {
      const s = str(v);
      if (s.includes(',')) bad('Graft starts from one adapter; merging several adapters (a comma list) is not supported');
      return s;
    },
    default: undefined,
  },
  stage: {
    parse: oneOf(['sft', 'dpo', 'rm'] as const, (s) =>
      ['pt', 'ppo', 'kto'].includes(s)
        ? `"${s}" training is not available in Graft; it runs "sft" (supervised fine-tuning), "dpo" (preference optimisation) and "rm" (reward models)`
        : undefined,
    ),
    default: 'sft',
  },
  finetuning_type: {
    parse: oneOf(['lora', 'full', 'freeze', 'adapter', 'prompt'] as const, (s) => (s === 'oft' ? 'OFT is not available in Graft; use "lora", "freeze", "full", "adapter" or "prompt"' : undefined)),
    default: 'lora',
  },
  lora_rank: { parse: int({ min: 1 }), default: 8 },
  lora_alpha: { parse: num({ min: 0, minExclusive: true }), default: (s) => 2 * (s.lora_rank ?? 8) },
  lora_dropout: { parse: num({ min: 0, max: 1, maxExclusive: true }), default: 0 },
  lora_target: { parse: names, default: ['all'] },
  use_rslora: { parse: toBool, default: false },
  freeze_trainable_layers: {
    parse: (v) => {
      const n = int()(v);
      if (n === 0) bad('must not be 0: a positive n trains the last n layers, a negative n the first |n|');
      return n;
    },
    default: 2,
  },
  freeze_trainable_modules: { parse: names, default: ['all'] },
  freeze_extra_modules: { parse: names, default: undefined },
  adapter_placement: { parse: oneOf(['houlsby', 'pfeiffer'] as const), default: 'pfeiffer' },
  reduction_factor: { parse: int({ min: 1 }), default: 16 },
  adapter_non_linearity: { parse: oneOf(['relu', 'silu', 'gelu'] as const), default: 'relu' },
  num_virtual_tokens: { parse: int({ min: 1 }), default: 20 },
  prompt_tuning_init: {
    // PEFT writes the enum's values in capitals (PromptTuningInit.TEXT = "TEXT").
    parse: (v) => {
      const s = str(v).toLowerCase();
      if (s === 'random' || s === 'text') return s;
      return bad(
        ['sample_vocab', 'random_discrete'].includes(s)
          ? `"${str(v)}" (embeddings of random vocabulary tokens) is not available in Graft; use "random" or "text"`
          : `must be "random" or "text", not "${str(v)}"`,
      );
    },
    default: (s) => (s.prompt_tuning_init_text !== undefined ? 'text' : 'random'),
  },
  prompt_tuning_init_text: { parse: str, default: undefined },
  pref_beta: { parse: num({ min: 0, minExclusive: true }), default: 0.1 },
  pref_loss: {
    parse: oneOf(['sigmoid', 'hinge', 'ipo', 'orpo', 'simpo'] as const, (s) =>
      s === 'kto_pair' ? `the "kto_pair" preference loss is not available in Graft; use "sigmoid" (DPO), "hinge", "ipo", "orpo" or "simpo"` : undefined,
    ),
    default: 'sigmoid',
  },
  simpo_gamma: { parse: num({ min: 0 }), default: undefined },
  pref_ftx: { parse: num({ min: 0 }), default: 0 },
  dataset: {
    // A comma list (LLaMA-Factory's way of naming several): for stage sft each dataset is a task of a
    // multi-task run (datasetNames); other stages take one.
    parse: (v) => {
      const list = (Array.isArray(v) ? v.map((x) => str(x)) : str(v).split(',')).map((x) => x.trim());
      if (list.some((x) => x === '')) bad('names an empty dataset in its list');
      const dup = list.find((x, i) => list.indexOf(x) !== i);
      if (dup !== undefined) bad(`names "${dup}" twice`);
      return list.join(',');
    },
    default: undefined,
  },
  dataset_dir: { parse: str, default: 'data' },
  template: { parse: str, default: undefined },
  cutoff_len: { parse: int({ min: 1 }), default: 2048 },
  train_on_prompt: { parse: toBool, default: false },
  mask_history: { parse: toBool, default: false },
  packing: { parse: toBool, default: false },
  val_size: {
    parse: (v) => {
      const n = num({ min: 0 })(v);
      if (n >= 1 && !Number.isInteger(n)) bad(`must be a fraction in [0, 1) or a whole number of examples, not ${n}`);
      return n;
    },
    default: 0,
  },
  max_samples: { parse: int({ min: 1 }), default: undefined },
  disable_shuffling: { parse: toBool, default: false },
  task_weighting: { parse: oneOf(['static', 'dwa', 'uncertainty'] as const), default: 'static' },
  task_weights: { parse: taskWeights, default: undefined },
  dwa_temperature: { parse: num({ min: 0, minExclusive: true }), default: 2.0 },
  dwa_window: { parse: int({ min: 1 }), default: 10 },
  task_sampling: { parse: oneOf(['proportional', 'balanced'] as const), default: 'proportional' },
  learning_rate: { parse: num({ min: 0, minExclusive: true }), default: 5e-5 },
  lr_scheduler_type: {
    parse: oneOf(LR_SCHEDULERS, (s) =>
      HF_OTHER_SCHEDULERS.includes(s)
        ? `the "${s}" schedule is not available in Graft; use one of ${LR_SCHEDULERS.map((x) => `"${x}"`).join(', ')}`
        : undefined,
    ),
    default: 'linear',
  },
  warmup_steps: { parse: int({ min: 0 }), default: 0 },
  warmup_ratio: { parse: num({ min: 0, max: 1 }), default: 0 },
  per_device_train_batch_size: { parse: int({ min: 1 }), default: 8 },
  gradient_accumulation_steps: { parse: int({ min: 1 }), default: 1 },
  max_grad_norm: { parse: num({ min: 0 }), default: 1.0 },
  num_train_epochs: { parse: num({ min: 0, minExclusive: true }), default: 3.0 },
  max_steps: {
    parse: (v) => {
      const n = int()(v);
      if (n === 0 || n < -1) bad(`must be a positive number of steps, or -1 to train for num_train_epochs; not ${n}`);
      return n;
    },
    default: -1,
  },
  weight_decay: { parse: num({ min: 0 }), default: 0 },
  adam_beta1: { parse: num({ min: 0, max: 1, maxExclusive: true }), default: 0.9 },
  adam_beta2: { parse: num({ min: 0, max: 1, maxExclusive: true }), default: 0.999 },
  adam_epsilon: { parse: num({ min: 0, minExclusive: true }), default: 1e-8 },
  seed: { parse: int({ min: 0, max: 2 ** 32 - 1 }), default: 42 },
  gradient_checkpointing: { parse: toBool, default: false },
  eval_strategy: { parse: oneOf(['no', 'steps', 'epoch'] as const), default: 'no' },
  eval_steps: { parse: num({ min: 0, minExclusive: true }), default: undefined },
  per_device_eval_batch_size: { parse: int({ min: 1 }), default: 8 },
  output_dir: { parse: str, default: 'trainer_output' },
  overwrite_output_dir: { parse: toBool, default: false },
  resume_from_checkpoint: { parse: str, default: undefined },
  logging_steps: { parse: num({ min: 0, minExclusive: true }), default: 500 },
  save_strategy: { parse: oneOf(['no', 'steps', 'epoch'] as const), default: 'steps' },
  save_steps: { parse: num({ min: 0, minExclusive: true }), default: 500 },
  save_total_limit: { parse: int({ min: 1 }), default: undefined },
};

/** The true/false settings (a bare command-line flag turns one on). */
export const BOOLEAN_SETTINGS: ReadonlySet<keyof TrainSettings> = new Set((Object.keys(SPEC) as (keyof TrainSettings)[]).filter((k) => SPEC[k].parse === toBool));

/** Graft's multi-task settings (not LLaMA-Factory's: they are never written to its job files). */
export const TASK_KEYS = ['task_weighting', 'task_weights', 'dwa_temperature', 'dwa_window', 'task_sampling'] as const;

/** The keys Graft honours, in the order job files list them. */
export const SETTINGS_KEYS = Object.keys(SPEC) as (keyof TrainSettings)[];

// Keys of LLaMA-Factory / transformers that Graft does not honour -------------------------------------------

/** Accepted, with a note: they steer machinery that Graft does not have, and do not change what is learned. */
const NO_EFFECT: Record<string, string> = {
  trust_remote_code: 'Graft never runs code from a model repository; it reads config.json and the weights only',
  overwrite_cache: 'Graft keeps no tokenized-dataset cache; the dataset is tokenized for each run',
  preprocessing_num_workers: 'Graft tokenizes in one worker',
  preprocessing_batch_size: 'Graft tokenizes in one worker',
  dataloader_num_workers: 'Graft batches in the training worker',
  dataloader_pin_memory: 'Graft batches in the training worker',
  plot_loss: 'Graft always charts the loss',
  report_to: 'Graft logs to its own charts and the command line, not to wandb/tensorboard',
  logging_dir: 'Graft logs to its own charts and the command line',
  run_name: 'Graft names runs itself',
  ddp_timeout: 'Graft trains on one GPU, without distributed processes',
  ddp_find_unused_parameters: 'Graft trains on one GPU, without distributed processes',
  save_only_model: 'Graft checkpoints hold what resuming needs',
  disable_gradient_checkpointing: 'Graft checkpoints activations only with gradient_checkpointing: true (its default is false)',
  use_reentrant_gc: 'Graft\'s checkpointing recomputes each layer in its backward; there is nothing reentrant to choose',
  low_cpu_mem_usage: 'Graft streams weights to the GPU as it loads them',
  use_fast_tokenizer: 'Graft uses the tokenizer.json of the model',
  cache_dir: 'Graft keeps downloads in its own store (GRAFT_CACHE on the command line)',
  include_num_input_tokens_seen: 'Graft counts tokens itself',
  include_tokens_per_second: 'Graft reports tokens per second itself',
  include_effective_tokens_per_second: 'Graft reports tokens per second itself',
  disable_tqdm: 'Graft draws its own progress',
  logging_first_step: 'Graft logs the first step',
  upcast_layernorm: 'Graft computes in float32 throughout',
  upcast_lmhead_output: 'Graft computes in float32 throughout',
  ignore_pad_token_for_loss: 'Graft never trains on padding',
  print_param_status: 'Graft shows the trainable parameters in its summary',
  do_eval: 'Graft evaluates on the val_size split when eval_strategy asks for it',
};

/** Refused with a reason when set to anything but a "no" value (false, null, none, empty). */
const CANNOT: Record<string, string> = {
  deepspeed: 'Graft trains on one GPU in one process; DeepSpeed is for LLaMA-Factory on several GPUs. Remove `deepspeed` here (keep it in the LLaMA-Factory copy of the job)',
  fsdp: 'Graft trains on one GPU in one process; remove `fsdp`',
  fsdp_config: 'Graft trains on one GPU in one process; remove `fsdp_config`',
  quantization_bit: 'Graft trains with unquantized weights (F32 on the GPU); 4/8-bit QLoRA is not available. Remove `quantization_bit`, and pick a smaller model if memory is short',
  quantization_method: 'Graft trains with unquantized weights; remove `quantization_method`',
  export_quantization_bit: 'Graft exports unquantized models; remove `export_quantization_bit`',
  bf16: 'Graft computes in float32 on WebGPU (F16/BF16 weights are widened to F32 when loaded), so mixed precision is not available. Remove `bf16` or set it to false',
  fp16: 'Graft computes in float32 on WebGPU (F16/BF16 weights are widened to F32 when loaded), so mixed precision is not available. Remove `fp16` or set it to false',
  pure_bf16: 'Graft computes in float32 on WebGPU; remove `pure_bf16` or set it to false',
  tf32: 'TF32 is an NVIDIA matmul mode; Graft computes in float32 on WebGPU. Remove `tf32`',
  use_unsloth: 'Graft runs its own WebGPU kernels; remove `use_unsloth`',
  use_unsloth_gc: 'Graft runs its own WebGPU kernels; remove `use_unsloth_gc`',
  enable_liger_kernel: 'Graft runs its own WebGPU kernels; remove `enable_liger_kernel`',
  use_dora: 'DoRA is not available in Graft; use plain LoRA (remove `use_dora`)',
  pissa_init: 'PiSSA initialisation is not available in Graft; LoRA starts as PEFT initialises it',
  pissa_convert: 'PiSSA is not available in Graft',
  loraplus_lr_ratio: 'LoRA+ (a separate learning rate for lora_B) is not available in Graft; remove `loraplus_lr_ratio`',
  additional_target: 'Graft trains only the LoRA matrices in LoRA mode; use finetuning_type "freeze" with freeze_extra_modules to train whole modules',
  create_new_adapter: 'Graft continues the adapter given in adapter_name_or_path; it does not stack a new one on it',
  use_galore: 'GaLore is not available in Graft; the optimizer is AdamW',
  use_apollo: 'APOLLO is not available in Graft; the optimizer is AdamW',
  use_badam: 'BAdam is not available in Graft; the optimizer is AdamW',
  use_adam_mini: 'Adam-mini is not available in Graft; the optimizer is AdamW',
  use_muon: 'Muon is not available in Graft; the optimizer is AdamW',
  use_llama_pro: 'LLaMA Pro block expansion is not available in Graft',
  use_mca: 'Megatron is not available in Graft',
  use_dft_loss: 'The DFT loss is not available in Graft; SFT uses the cross-entropy loss',
  shift_attn: 'Shift short attention (LongLoRA) is not available in Graft',
  rope_scaling: 'Graft takes RoPE scaling from the model config.json; remove `rope_scaling`',
  mixture_of_depths: 'Mixture-of-depths is not available in Graft',
  train_from_scratch: 'Graft fine-tunes pretrained weights; it does not train from random weights',
  neat_packing: 'Graft packs sequences with `packing: true`, with attention across packed examples as LLaMA-Factory does; neat_packing is not available',
  streaming: 'Graft reads the whole dataset into memory; streaming is not available',
  tokenized_path: 'Graft tokenizes for each run; a pre-tokenized dataset cannot be loaded',
  eval_dataset: 'Graft evaluates on a split of the training dataset: use `val_size`',
  interleave_probs: 'Graft trains on one dataset at a time',
  ref_model: 'Graft\'s DPO reference is the base model with the adapter switched off; another reference model is not available',
  ref_model_adapters: 'Graft\'s DPO reference is the base model with the adapter switched off',
  reward_model: 'PPO is not available in Graft',
  lr_scheduler_kwargs: 'Graft\'s schedules take no extra arguments (cosine uses half a cycle, as transformers by default)',
  hf_hub_token: 'Do not put tokens in job files: Graft reads HF_TOKEN on the command line and the token in the app\'s settings',
  push_to_hub: 'Graft does not upload; export the adapter or model and upload it yourself',
  do_predict: 'Graft does not run batch prediction; chat with the model after training',
  predict_with_generate: 'Graft does not run batch prediction; chat with the model after training',
  use_swanlab: 'Graft logs to its own charts',
  fp8: 'Graft computes in float32 on WebGPU; FP8 is not available',
  torch_compile: 'Graft runs its own WebGPU kernels',
  optim: '', // checked below: AdamW names pass
  flash_attn: '', // checked below: auto/disabled pass
  do_train: '', // checked below: true passes
  mix_strategy: '', // checked below: concat passes
  eval_on_each_dataset: 'Graft trains on one dataset at a time',
  gradient_checkpointing_kwargs: 'Graft\'s gradient_checkpointing takes no extra arguments; remove `gradient_checkpointing_kwargs`',
};

const ADAMW_NAMES = ['adamw_torch', 'adamw_hf', 'adamw_torch_fused'];

/** A "no" value: the key asks for nothing. */
function isOff(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0) return true;
  if (typeof v === 'string') return ['', 'false', 'no', 'n', 'f', 'off', '0', 'none', 'null'].includes(v.trim().toLowerCase());
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v as object).length === 0;
  return false;
}

/** The reason a known-but-unsupported key is refused, or undefined when its value is fine (maybe with a note). */
function checkForeignKey(key: string, value: unknown, notes: string[]): string | undefined {
  switch (key) {
    case 'optim': {
      const s = typeof value === 'string' ? value.trim() : '';
      if (value === null || ADAMW_NAMES.includes(s)) return undefined;
      return `Graft's optimizer is AdamW with PyTorch's semantics (adamw_torch); "${String(value)}" is not available. Use "adamw_torch" or remove \`optim\``;
    }
    case 'flash_attn': {
      if (value === null) return undefined;
      const s = typeof value === 'string' ? value.trim() : String(value);
      if (s === 'auto' || s === 'disabled' || isOff(value)) {
        notes.push('flash_attn: Graft uses its own attention kernel');
        return undefined;
      }
      return `Graft uses its own WebGPU attention kernel; "${s}" attention is not available. Remove \`flash_attn\` or set it to "auto"`;
    }
    case 'do_train':
      if (value === null || value === undefined) return undefined;
      try {
        if (toBool(value)) return undefined;
      } catch {
        return 'must be true or false';
      }
      return 'Graft runs a job to train it; do_train: false asks for nothing to be done';
    case 'mix_strategy':
      if (value === 'concat' || isOff(value)) return undefined;
      return 'Graft trains on one dataset at a time; only "concat" applies';
  }
  if (isOff(value)) return undefined;
  return CANNOT[key];
}

// Did you mean ---------------------------------------------------------------------------------------------

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** Aliases people type for a setting (names from other trainers). */
const ALIASES: Record<string, string> = {
  lr: 'learning_rate',
  epochs: 'num_train_epochs',
  num_epochs: 'num_train_epochs',
  batch_size: 'per_device_train_batch_size',
  train_batch_size: 'per_device_train_batch_size',
  micro_batch_size: 'per_device_train_batch_size',
  lora_r: 'lora_rank',
  r: 'lora_rank',
  target_modules: 'lora_target',
  lora_target_modules: 'lora_target',
  model: 'model_name_or_path',
  base_model: 'model_name_or_path',
  max_seq_length: 'cutoff_len',
  max_length: 'cutoff_len',
  seq_len: 'cutoff_len',
  warmup: 'warmup_steps',
  scheduler: 'lr_scheduler_type',
  lr_scheduler: 'lr_scheduler_type',
  grad_accum: 'gradient_accumulation_steps',
  gradient_accumulation: 'gradient_accumulation_steps',
  shuffle: 'disable_shuffling',
  evaluation_strategy: 'eval_strategy',
  data_path: 'dataset',
  adapter: 'adapter_name_or_path',
};

function suggestion(key: string): string | undefined {
  if (ALIASES[key]) return ALIASES[key];
  const candidates = [...SETTINGS_KEYS, ...Object.keys(NO_EFFECT), ...Object.keys(CANNOT)];
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(key.toLowerCase(), c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 4)) ? best : undefined;
}

// Parsing ---------------------------------------------------------------------------------------------------

/**
 * Validates a job's settings and fills in the defaults; returns the settings and the notes on accepted keys
 * that change nothing in Graft. Throws SettingsError listing every problem. `source` names where the settings
 * came from in messages ("train.yaml", "the command line").
 */
export function parseSettingsWithNotes(input: Record<string, unknown>, source: string, lineOf?: (key: string) => number | undefined): ParsedSettings {
  const problems: SettingsProblem[] = [];
  const notes: string[] = [];
  const at = (key: string): { key: string; line?: number } => {
    const line = lineOf?.(key);
    return line !== undefined ? { key, line } : { key };
  };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SettingsError(source, [{ message: 'the settings must be a mapping of keys to values' }]);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if (key in SPEC) {
      if (value === null || value === undefined) continue; // null: the default (LLaMA-Factory files write `resume_from_checkpoint: null`)
      try {
        out[key] = SPEC[key as keyof TrainSettings].parse(value);
      } catch (e) {
        if (!(e instanceof Bad)) throw e;
        problems.push({ ...at(key), message: e.message });
      }
    } else if (key in NO_EFFECT) {
      notes.push(`${key}: ${NO_EFFECT[key]}`);
    } else if (key in CANNOT) {
      const reason = checkForeignKey(key, value, notes);
      if (reason !== undefined) problems.push({ ...at(key), message: reason });
    } else {
      const near = suggestion(key);
      problems.push({ ...at(key), message: `unknown setting${near ? `; did you mean "${near}"?` : ''} (Graft reads LLaMA-Factory's argument names)` });
    }
  }

  for (const key of ['model_name_or_path', 'dataset'] as const) {
    if (out[key] === undefined && !problems.some((p) => p.key === key)) {
      problems.push({ key, message: key === 'dataset' ? 'is missing: name the dataset file or hub dataset to train on' : 'is missing: name the model (a hub id such as HuggingFaceTB/SmolLM2-135M-Instruct)' });
    }
  }
  if (problems.length) throw new SettingsError(source, problems);

  for (const key of SETTINGS_KEYS) {
    if (out[key] !== undefined) continue;
    const d = SPEC[key].default;
    const v = typeof d === 'function' ? (d as (s: Partial<TrainSettings>) => unknown)(out as Partial<TrainSettings>) : d;
    if (v !== undefined) out[key] = Array.isArray(v) ? [...v] : v;
  }
  const s = out as unknown as TrainSettings;

  // Rules across keys (LLaMA-Factory's own, where it has them).
  if (s.finetuning_type !== 'lora') {
    for (const key of ['use_rslora', 'adapter_name_or_path'] as const) {
      if (key === 'adapter_name_or_path' && s.finetuning_type === 'adapter') continue; // continues a bottleneck adapter
      if (key in input && !isOff(input[key])) {
        const valid = key === 'adapter_name_or_path' ? 'finetuning_type "lora" or "adapter"' : 'finetuning_type "lora"';
        problems.push({ ...at(key), message: `is only valid with ${valid} (this job has "${s.finetuning_type}")` });
      }
    }
  }
  if (s.finetuning_type !== 'adapter') {
    for (const key of ['adapter_placement', 'reduction_factor', 'adapter_non_linearity'] as const) {
      if (key in input && !isOff(input[key])) problems.push({ ...at(key), message: `is only valid with finetuning_type "adapter" (this job has "${s.finetuning_type}")` });
    }
  } else if (s.stage === 'rm') {
    // The reward model is saved as a sequence-classification folder of the model's own weights (LoRA merged
    // in); a bottleneck adapter has no place there, so the trained adapter would be lost.
    problems.push({ ...at('finetuning_type'), message: '"adapter" cannot train a reward model (it is saved as a sequence-classification model, which has no bottleneck adapters); use "lora", "freeze" or "full"' });
  }
  if (s.finetuning_type !== 'prompt') {
    for (const key of ['num_virtual_tokens', 'prompt_tuning_init', 'prompt_tuning_init_text'] as const) {
      if (key in input && input[key] !== null) problems.push({ ...at(key), message: `is only valid with finetuning_type "prompt" (this job has "${s.finetuning_type}")` });
    }
  } else {
    if (s.prompt_tuning_init === 'text' && s.prompt_tuning_init_text === undefined) {
      problems.push({ ...at('prompt_tuning_init'), message: 'is "text", so prompt_tuning_init_text must give the text whose token embeddings start the virtual tokens' });
    }
    if (s.stage === 'rm') {
      problems.push({ ...at('finetuning_type'), message: '"prompt" cannot train a reward model (it is written as a sequence-classification model, which has no virtual tokens); use "lora", "freeze" or "full"' });
    }
  }
  if (s.train_on_prompt && s.mask_history) problems.push({ ...at('mask_history'), message: 'cannot be combined with train_on_prompt' });
  if (s.packing && s.stage !== 'sft') problems.push({ ...at('packing'), message: `packing applies to "sft" only (this job has stage "${s.stage}")` });
  if (datasetNames(s).length > 1 && s.stage !== 'sft') {
    problems.push({ ...at('dataset'), message: `stage "${s.stage}" trains on one dataset at a time (several datasets are the tasks of a multi-task "sft" run); merge the files into one, or give one name` });
  }
  for (const key of TASK_KEYS) {
    if (!(key in input) || input[key] === null || input[key] === undefined) continue;
    if (s.stage !== 'sft') problems.push({ ...at(key), message: `multi-task training applies to stage "sft" (this job has stage "${s.stage}")` });
    else if (key === 'task_weights' && s.task_weighting !== 'static') problems.push({ ...at(key), message: `gives static weights, but task_weighting is "${s.task_weighting}", which sets the weights itself; remove task_weights or use task_weighting static` });
    else if ((key === 'dwa_temperature' || key === 'dwa_window') && s.task_weighting !== 'dwa') problems.push({ ...at(key), message: `applies to task_weighting "dwa" (this job has "${s.task_weighting}")` });
  }
  if (s.task_sampling === 'balanced' && s.disable_shuffling) {
    problems.push({ ...at('task_sampling'), message: 'balanced task sampling draws examples at random; it cannot be combined with disable_shuffling (use task_sampling proportional to train in file order)' });
  }
  if (problems.length) throw new SettingsError(source, problems);
  return { settings: s, notes };
}

/** The datasets of a job: one, or several (stage sft: each a task of a multi-task run). */
export function datasetNames(s: Pick<TrainSettings, 'dataset'>): string[] {
  return s.dataset.split(',');
}

/** Validates settings and fills in defaults. Throws SettingsError. Notes on no-effect keys: parseSettingsWithNotes. */
export function parseSettings(input: Record<string, unknown>, source: string): TrainSettings {
  return parseSettingsWithNotes(input, source).settings;
}

/**
 * Reads a LLaMA-Factory job file (YAML, read as YAML 1.1 like LLaMA-Factory's PyYAML, so `yes`/`on` are
 * booleans). Syntax errors, duplicate keys and bad values name their line.
 */
export function parseJobYaml(text: string, fileName: string): ParsedSettings {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true, prettyErrors: false, lineCounter });
  if (doc.errors.length) {
    throw new SettingsError(
      fileName,
      doc.errors.map((e) => {
        const line = e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line;
        return { line, message: `not valid YAML: ${e.message.split('\n')[0]}` };
      }),
    );
  }
  const contents = doc.contents;
  if (contents === null || (isScalar(contents) && (contents.value === null || contents.value === ''))) {
    throw new SettingsError(fileName, [{ message: 'is empty; a job file lists settings as `key: value` lines' }]);
  }
  if (!isMap(contents)) {
    throw new SettingsError(fileName, [{ line: lineCounter.linePos(contents.range?.[0] ?? 0).line, message: 'must be a mapping of `key: value` lines' }]);
  }
  const lines = new Map<string, number>();
  for (const item of contents.items as Pair[]) {
    const k = isScalar(item.key) ? String(item.key.value) : String(item.key);
    const start = isScalar(item.key) ? item.key.range?.[0] : undefined;
    if (start !== undefined) lines.set(k, lineCounter.linePos(start).line);
  }
  const value = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
  return parseSettingsWithNotes(value, fileName, (k) => lines.get(k));
}

/**
 * Remarks on settings that are valid but probably not what was meant (the trainer or the app shows them):
 * warm-up with the "constant" schedule (ignored, as in transformers), a held-out split that is never evaluated.
 */
export function settingsWarnings(s: TrainSettings): string[] {
  const w: string[] = [];
  if (s.lr_scheduler_type === 'constant' && (s.warmup_steps > 0 || s.warmup_ratio > 0)) {
    w.push('lr_scheduler_type "constant" ignores warm-up (as transformers does); use "constant_with_warmup" to warm up');
  }
  if (s.val_size > 0 && s.eval_strategy === 'no') {
    w.push('val_size holds examples out of training, but eval_strategy is "no", so they are never evaluated during training');
  }
  if (s.eval_strategy !== 'no' && s.val_size === 0) w.push(`eval_strategy is "${s.eval_strategy}" but val_size is 0: there is nothing to evaluate on`);
  if (s.template !== undefined) {
    w.push(`template "${s.template}" is LLaMA-Factory's prompt format; Graft renders with the model's own chat template (tokenizer_config.json)`);
  }
  return w;
}

// Writing ---------------------------------------------------------------------------------------------------

const YAML_RESERVED = /^(?:true|false|yes|no|y|n|on|off|null|~|\.nan|\.inf|-\.inf)$/i;

/** A YAML scalar that PyYAML and the `yaml` package both read back as the same value. */
export function yamlScalar(v: string | number | boolean): string {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return yamlNumber(v);
  // Plain only when it holds a letter (".", "1_000" or "-" read as other things in YAML 1.1) and cannot be a
  // boolean, null or number there.
  const plain = /^[A-Za-z_./][A-Za-z0-9_./@+-]*(?: [A-Za-z0-9_./@+-]+)*$/.test(v) && /[A-Za-z]/.test(v) && !YAML_RESERVED.test(v) && Number.isNaN(Number(v));
  return plain ? v : JSON.stringify(v);
}

/** Numbers as YAML 1.1 reads them: a float in exponent form needs a dot and a signed exponent (1.0e-4). */
function yamlNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  const s = String(n);
  const m = /^(-?\d+)(\.\d+)?e([+-]?)(\d+)$/.exec(s);
  if (!m) return s;
  return `${m[1]}${m[2] ?? '.0'}e${m[3] || '+'}${m[4]}`;
}

/** Settings that are floats in LLaMA-Factory; written with a dot so that they read back as floats. */
const FLOAT_KEYS = new Set<keyof TrainSettings>(['learning_rate', 'num_train_epochs', 'lora_dropout', 'warmup_ratio', 'max_grad_norm', 'weight_decay', 'adam_beta1', 'adam_beta2', 'adam_epsilon', 'pref_beta', 'pref_ftx', 'simpo_gamma']);

export interface SettingsYamlOptions {
  /** Comment lines at the top (without '#'). */
  header?: string[];
  /** A comment after a key's line. */
  comments?: Partial<Record<keyof TrainSettings, string>>;
  /** Keys to leave out (e.g. resume_from_checkpoint of a Graft checkpoint LLaMA-Factory cannot read). */
  omit?: (keyof TrainSettings)[];
  /** LLaMA-Factory keys Graft has no setting for, appended to a section as they are (`key: value  # why`). */
  keys?: Partial<Record<'model' | 'method' | 'dataset' | 'output' | 'train' | 'eval', string[]>>;
  /** Commented lines appended to a section, e.g. `{ train: ['bf16: true  # on GPUs that have it'] }`. */
  extra?: Partial<Record<'model' | 'method' | 'dataset' | 'output' | 'train' | 'eval', string[]>>;
}

const SECTIONS: { name: 'model' | 'method' | 'dataset' | 'output' | 'train' | 'eval'; keys: (keyof TrainSettings | 'do_train')[] }[] = [
  { name: 'model', keys: ['model_name_or_path', 'model_revision', 'adapter_name_or_path'] },
  {
    name: 'method',
    keys: [
      'stage', 'do_train', 'finetuning_type', 'lora_rank', 'lora_alpha', 'lora_dropout', 'lora_target', 'use_rslora', 'freeze_trainable_layers', 'freeze_trainable_modules', 'freeze_extra_modules',
      'adapter_placement', 'reduction_factor', 'adapter_non_linearity', 'num_virtual_tokens', 'prompt_tuning_init', 'prompt_tuning_init_text', 'pref_beta', 'pref_loss', 'pref_ftx', 'simpo_gamma',
    ],
  },
  { name: 'dataset', keys: ['dataset', 'dataset_dir', 'template', 'cutoff_len', 'train_on_prompt', 'mask_history', 'packing', 'max_samples', 'disable_shuffling'] },
  { name: 'output', keys: ['output_dir', 'logging_steps', 'save_strategy', 'save_steps', 'save_total_limit', 'overwrite_output_dir', 'resume_from_checkpoint'] },
  {
    name: 'train',
    keys: ['per_device_train_batch_size', 'gradient_accumulation_steps', 'learning_rate', 'num_train_epochs', 'max_steps', 'lr_scheduler_type', 'warmup_steps', 'warmup_ratio', 'max_grad_norm', 'weight_decay', 'adam_beta1', 'adam_beta2', 'adam_epsilon', 'seed', 'gradient_checkpointing'],
  },
  { name: 'eval', keys: ['val_size', 'eval_strategy', 'eval_steps', 'per_device_eval_batch_size'] },
];

/** Written even when equal to the default: the settings that say what a run is. */
const ALWAYS = new Set<string>([
  'model_name_or_path', 'stage', 'do_train', 'finetuning_type', 'dataset', 'dataset_dir', 'template', 'cutoff_len', 'output_dir', 'logging_steps',
  'save_steps', 'per_device_train_batch_size', 'gradient_accumulation_steps', 'learning_rate', 'num_train_epochs', 'lr_scheduler_type', 'seed',
  'lora_rank', 'lora_target', 'freeze_trainable_layers', 'freeze_trainable_modules', 'pref_beta', 'pref_loss',
  'adapter_placement', 'reduction_factor', 'adapter_non_linearity',
  'num_virtual_tokens', 'prompt_tuning_init',
]);

function relevant(key: string, s: TrainSettings): boolean {
  if (key === 'adapter_name_or_path') return s.finetuning_type === 'lora' || s.finetuning_type === 'adapter';
  if (key.startsWith('lora_') || key === 'use_rslora') return s.finetuning_type === 'lora';
  if (key.startsWith('freeze_')) return s.finetuning_type === 'freeze';
  if (key === 'adapter_placement' || key === 'reduction_factor' || key === 'adapter_non_linearity') return s.finetuning_type === 'adapter';
  if (key === 'num_virtual_tokens' || key.startsWith('prompt_tuning_')) return s.finetuning_type === 'prompt';
  if (key.startsWith('pref_') || key === 'simpo_gamma') return s.stage === 'dpo';
  return true;
}

function isDefault(key: keyof TrainSettings, s: TrainSettings): boolean {
  const d = SPEC[key].default;
  const v = typeof d === 'function' ? (d as (x: Partial<TrainSettings>) => unknown)(s) : d;
  return JSON.stringify(v) === JSON.stringify(s[key]);
}

/**
 * The settings as a LLaMA-Factory job file (only LLaMA-Factory's keys). The settings that define the run are
 * always written; the rest only when they differ from the default, so that older LLaMA-Factory versions, which
 * refuse keys they do not know, read the file too. LoRA keys appear for LoRA jobs only, freeze keys for freeze
 * jobs, preference keys for DPO, and Graft's bottleneck keys for finetuning_type "adapter" and prompt-tuning keys
 * for "prompt" (methods LLaMA-Factory does not have: such a file runs in Graft only).
 */
export function settingsToYaml(s: TrainSettings, options: SettingsYamlOptions = {}): string {
  const lines: string[] = [];
  for (const h of options.header ?? []) lines.push(h === '' ? '#' : `# ${h}`);
  if (lines.length) lines.push('');
  const omit = new Set(options.omit ?? []);
  for (const section of SECTIONS) {
    const body: string[] = [];
    for (const key of section.keys) {
      if (key === 'do_train') {
        body.push('do_train: true');
        continue;
      }
      if (omit.has(key) || !relevant(key, s)) continue;
      const v = s[key];
      if (v === undefined) continue;
      if (!ALWAYS.has(key) && isDefault(key, s)) continue;
      let text: string;
      if (Array.isArray(v)) text = yamlScalar(v.join(','));
      else if (typeof v === 'number' && FLOAT_KEYS.has(key) && Number.isInteger(v)) text = `${v}.0`;
      else if (typeof v === 'object') continue; // task_weights: Graft's own, in no section
      else text = yamlScalar(v);
      const comment = options.comments?.[key];
      body.push(`${key}: ${text}${comment ? `  # ${comment}` : ''}`);
    }
    body.push(...(options.keys?.[section.name] ?? []));
    for (const x of options.extra?.[section.name] ?? []) body.push(`# ${x}`);
    if (body.length === 0) continue;
    lines.push(`### ${section.name}`, ...body, '');
  }
  return lines.join('\n');
}
