// Training job settings under LLaMA-Factory's argument names: the entry points that read and check them. Around
// them: settings-types.ts, settings-spec.ts, foreign-keys.ts, settings-yaml.ts (job files), settings-error.ts
// (docs/training.md, "Settings"). No Node imports: this runs in the browser worker too.
import { checkForeignKey, CANNOT, isOff, NO_EFFECT, suggestion } from './foreign-keys';
import { SettingsError, type SettingsProblem } from './settings-error';
import { BadValue, SETTINGS_KEYS, SPEC, TASK_KEYS } from './settings-spec';
import type { TrainSettings } from './settings-types';
import { readJobYaml } from './settings-yaml';

// Also importable from here, for their many importers: the settings' type, the error that every settings check
// throws, and what the command line and the worker read beside the settings.
export { SettingsError, type SettingsProblem } from './settings-error';
export { BOOLEAN_SETTINGS, SETTINGS_KEYS } from './settings-spec';
export type { FinetuningType, TrainSettings } from './settings-types';
export { settingsToYaml } from './settings-yaml';

export interface ParsedSettings {
  settings: TrainSettings;
  /** Keys that were accepted but change nothing in Graft, each with what Graft does instead. Show them. */
  notes: string[];
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
        if (!(e instanceof BadValue)) throw e;
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
    for (const key of ['use_rslora', 'loraplus_lr_ratio', 'adapter_name_or_path'] as const) {
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
  if (s.quantization_bit !== undefined && (s.finetuning_type === 'full' || s.finetuning_type === 'freeze')) {
    // LLaMA-Factory refuses it too ("Quantization is only compatible with the LoRA method").
    problems.push({
      ...at('quantization_bit'),
      message: `cannot be used with finetuning_type "${s.finetuning_type}", which trains the base weights themselves; a quantized base is frozen. Use "lora" (QLoRA), "adapter" or "prompt", or remove quantization_bit`,
    });
  }
  if (s.quantization_bit === undefined) {
    for (const key of ['quantization_type', 'double_quantization'] as const) {
      if (key in input && input[key] !== null) notes.push(`${key}: applies only with quantization_bit 4; this job does not quantize`);
    }
  } else if (s.quantization_bit === 8) {
    for (const key of ['quantization_type', 'double_quantization'] as const) {
      if (key in input && input[key] !== null) notes.push(`${key}: applies to 4-bit quantization; quantization_bit 8 uses Graft's blockwise int8`);
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
  const { input, lineOf } = readJobYaml(text, fileName);
  return parseSettingsWithNotes(input, fileName, lineOf);
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
