// Graft's job settings, key by key: how each value is read (a parser that throws BadValue with the reason) and its
// default, LLaMA-Factory's or transformers' (the list: docs/training.md, "Settings"). Runs in the browser worker
// too: no Node imports.
import type { TrainSettings } from './settings-types';

// Parsers per key -------------------------------------------------------------------------------------------

/** A value a parser refuses; the message says why (parseSettingsWithNotes adds the key and line). */
export class BadValue extends Error {}
const bad = (message: string): never => {
  throw new BadValue(message);
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
export function toBool(v: unknown): boolean {
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
export const SPEC: { [K in keyof TrainSettings]-?: { parse: Parser; default: TrainSettings[K] | undefined | ((s: Partial<TrainSettings>) => TrainSettings[K]) } } = {
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
  loraplus_lr_ratio: { parse: num({ min: 0, minExclusive: true }), default: undefined },
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
  task_template: {
    parse: (v) => {
      if (v === null || v === false || (typeof v === 'string' && ['', 'none', 'false'].includes(v.trim().toLowerCase()))) return '';
      const t = typeof v === 'string' ? v : bad(`must be a text with {input} (and {task}), or "none", not ${show(v)}`);
      if (!t.includes('{input}')) bad(`must contain {input}, where the record's input goes (e.g. "{task}: {input}"), or be "none"`);
      return t;
    },
    default: '{task}: {input}',
  },
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
  quantization_bit: {
    parse: (v) => {
      const n = int()(v);
      if (n === 4 || n === 8) return n;
      return bad(
        [2, 3, 5, 6].includes(n)
          ? `must be 4 or 8: ${n}-bit quantization is HQQ's or EETQ's in LLaMA-Factory, which Graft does not have`
          : `must be 4 (bitsandbytes' NF4 or FP4) or 8 (blockwise int8), not ${n}`,
      );
    },
    default: undefined,
  },
  quantization_type: { parse: oneOf(['nf4', 'fp4'] as const), default: 'nf4' },
  double_quantization: { parse: toBool, default: true },
  quantization_method: {
    parse: oneOf(['bnb'] as const, (s) =>
      ['hqq', 'eetq', 'gptq', 'awq', 'aqlm', 'quanto', 'fp8'].includes(s.toLowerCase())
        ? `"${s}" is not available in Graft; it quantizes as bitsandbytes does ("bnb")`
        : undefined,
    ),
    default: 'bnb',
  },
  eval_strategy: { parse: oneOf(['no', 'steps', 'epoch'] as const), default: 'no' },
  eval_steps: { parse: num({ min: 0, minExclusive: true }), default: undefined },
  per_device_eval_batch_size: { parse: int({ min: 1 }), default: 8 },
  do_predict: { parse: toBool, default: false },
  predict_with_generate: { parse: toBool, default: false },
  eval_dataset: { parse: str, default: undefined },
  // LLaMA-Factory's GeneratingArguments defaults
  max_new_tokens: { parse: int({ min: 1 }), default: 1024 },
  do_sample: { parse: toBool, default: true },
  temperature: { parse: num({ min: 0, minExclusive: true }), default: 0.95 },
  top_p: { parse: num({ min: 0, max: 1, minExclusive: true }), default: 0.7 },
  top_k: { parse: int({ min: 0 }), default: 50 },
  repetition_penalty: { parse: num({ min: 0, minExclusive: true }), default: 1.0 },
  output_dir: { parse: str, default: 'trainer_output' },
  overwrite_output_dir: { parse: toBool, default: false },
  resume_from_checkpoint: { parse: str, default: undefined },
  resume_allow_changes: { parse: toBool, default: false },
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
