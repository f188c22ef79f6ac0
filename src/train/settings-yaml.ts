// LLaMA-Factory job files (YAML): reading one into keys, values and lines, and writing settings as one.
// Runs in the browser worker too: no Node imports.
import { isMap, isScalar, LineCounter, parseDocument, type Pair } from 'yaml';
import type { TrainSettings } from './settings-types';
import { SettingsError } from './settings-error';
import { SPEC } from './settings-spec';

// Reading ---------------------------------------------------------------------------------------------------

/**
 * Reads a LLaMA-Factory job file (YAML, read as YAML 1.1 like LLaMA-Factory's PyYAML, so `yes`/`on` are
 * booleans) into its key/value mapping and the line of each key. Syntax errors and duplicate keys name their
 * line; the values are checked by parseSettingsWithNotes (parseJobYaml in settings.ts does both).
 */
export function readJobYaml(text: string, fileName: string): { input: Record<string, unknown>; lineOf: (key: string) => number | undefined } {
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
  const input = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
  return { input, lineOf: (k) => lines.get(k) };
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
const FLOAT_KEYS = new Set<keyof TrainSettings>(['temperature', 'top_p', 'repetition_penalty', 'learning_rate', 'num_train_epochs', 'lora_dropout', 'loraplus_lr_ratio', 'warmup_ratio', 'max_grad_norm', 'weight_decay', 'adam_beta1', 'adam_beta2', 'adam_epsilon', 'pref_beta', 'pref_ftx', 'simpo_gamma']);

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
  { name: 'model', keys: ['model_name_or_path', 'model_revision', 'adapter_name_or_path', 'quantization_bit', 'quantization_method', 'quantization_type', 'double_quantization'] },
  {
    name: 'method',
    keys: [
      'stage', 'do_train', 'finetuning_type', 'lora_rank', 'lora_alpha', 'lora_dropout', 'lora_target', 'use_rslora', 'loraplus_lr_ratio', 'freeze_trainable_layers', 'freeze_trainable_modules', 'freeze_extra_modules',
      'adapter_placement', 'reduction_factor', 'adapter_non_linearity', 'num_virtual_tokens', 'prompt_tuning_init', 'prompt_tuning_init_text', 'pref_beta', 'pref_loss', 'pref_ftx', 'simpo_gamma',
    ],
  },
  { name: 'dataset', keys: ['dataset', 'dataset_dir', 'template', 'cutoff_len', 'train_on_prompt', 'mask_history', 'packing', 'max_samples', 'disable_shuffling'] },
  { name: 'output', keys: ['output_dir', 'logging_steps', 'save_strategy', 'save_steps', 'save_total_limit', 'overwrite_output_dir', 'resume_from_checkpoint'] },
  {
    name: 'train',
    keys: ['per_device_train_batch_size', 'gradient_accumulation_steps', 'learning_rate', 'num_train_epochs', 'max_steps', 'lr_scheduler_type', 'warmup_steps', 'warmup_ratio', 'max_grad_norm', 'weight_decay', 'adam_beta1', 'adam_beta2', 'adam_epsilon', 'seed', 'gradient_checkpointing'],
  },
  {
    name: 'eval',
    keys: ['val_size', 'eval_strategy', 'eval_steps', 'per_device_eval_batch_size', 'do_predict', 'predict_with_generate', 'eval_dataset', 'max_new_tokens', 'do_sample', 'temperature', 'top_p', 'top_k', 'repetition_penalty'],
  },
];

/** Written even when equal to the default: the settings that say what a run is. */
const ALWAYS = new Set<string>([
  'model_name_or_path', 'stage', 'do_train', 'finetuning_type', 'dataset', 'dataset_dir', 'template', 'cutoff_len', 'output_dir', 'logging_steps',
  'save_steps', 'per_device_train_batch_size', 'gradient_accumulation_steps', 'learning_rate', 'num_train_epochs', 'lr_scheduler_type', 'seed',
  'lora_rank', 'lora_target', 'freeze_trainable_layers', 'freeze_trainable_modules', 'pref_beta', 'pref_loss',
  'adapter_placement', 'reduction_factor', 'adapter_non_linearity',
  'num_virtual_tokens', 'prompt_tuning_init',
  'quantization_bit', 'quantization_method',
]);

const PREDICT_KEYS = new Set(['predict_with_generate', 'eval_dataset', 'max_new_tokens', 'do_sample', 'temperature', 'top_p', 'top_k', 'repetition_penalty']);

function relevant(key: string, s: TrainSettings): boolean {
  if (key === 'adapter_name_or_path') return s.finetuning_type === 'lora' || s.finetuning_type === 'adapter';
  if (PREDICT_KEYS.has(key)) return s.do_predict;
  if (key.startsWith('lora_') || key === 'use_rslora' || key === 'loraplus_lr_ratio') return s.finetuning_type === 'lora';
  if (key.startsWith('freeze_')) return s.finetuning_type === 'freeze';
  if (key === 'adapter_placement' || key === 'reduction_factor' || key === 'adapter_non_linearity') return s.finetuning_type === 'adapter';
  if (key === 'num_virtual_tokens' || key.startsWith('prompt_tuning_')) return s.finetuning_type === 'prompt';
  if (key.startsWith('pref_') || key === 'simpo_gamma') return s.stage === 'dpo';
  if (key === 'quantization_method') return s.quantization_bit !== undefined;
  if (key === 'quantization_type' || key === 'double_quantization') return s.quantization_bit === 4;
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
