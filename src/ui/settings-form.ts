// The Method screen's settings form: LLaMA-Factory's argument names, browser defaults, a one-line explanation
// per field. Values are kept as the person typed them (strings, booleans), so that a bad value stays on screen
// with its error; src/train/settings.ts (through the worker's checkSettings) converts and validates them.
import type { SettingsProblem } from '../worker/api';

export type SettingValue = string | boolean;
export type SettingsValues = Record<string, SettingValue>;

export interface FieldDef {
  /** The LLaMA-Factory name. */
  key: string;
  /** In words. */
  label: string;
  /** One line: what it does and what to pick. */
  help: string;
  kind: 'number' | 'text' | 'select' | 'checkbox';
  options?: { value: string; label: string }[];
  /** Shown only for some values of other fields (e.g. LoRA fields for finetuning_type lora). */
  when?: (v: SettingsValues) => boolean;
}

export interface FieldGroup {
  id: string;
  title: string;
  fields: FieldDef[];
}

/** Select options as [value, label] pairs; a lone value is its own label. */
export function choices<V extends string | boolean>(...options: (V | [V, string])[]): { value: V; label: string }[] {
  return options.map((o) => (Array.isArray(o) ? { value: o[0], label: o[1] } : { value: o, label: String(o) }));
}

const isLora = (v: SettingsValues) => v.finetuning_type === 'lora';
const isAdapter = (v: SettingsValues) => v.finetuning_type === 'adapter';
const isPrompt = (v: SettingsValues) => v.finetuning_type === 'prompt';
/** Methods that leave the base frozen, so that it may be held quantized (QLoRA and the like). */
const frozenBase = (v: SettingsValues) => v.finetuning_type === 'lora' || v.finetuning_type === 'adapter' || v.finetuning_type === 'prompt';
const fourBit = (v: SettingsValues) => frozenBase(v) && v.quantization_bit === '4';

export const FIELD_GROUPS: FieldGroup[] = [
  {
    id: 'method',
    title: 'Method',
    fields: [
      {
        key: 'stage',
        label: 'Training stage',
        help: 'sft learns from input → output examples; dpo learns from preference pairs (a better and a worse answer); rm trains a reward model on preference pairs: a score head that rates answers (exported as a sequence-classification model).',
        kind: 'select',
        options: choices(['sft', 'sft: supervised fine-tuning'], ['dpo', 'dpo: preference pairs'], ['rm', 'rm: a reward model (preference pairs)']),
      },
      {
        key: 'finetuning_type',
        label: 'Fine-tuning method',
        help: 'lora trains small added matrices (least memory); adapter trains small bottleneck layers inserted into each block; prompt trains only a few virtual tokens put before the input; freeze trains the last layers; full trains every weight.',
        kind: 'select',
        options: choices('lora', ['adapter', 'adapter: bottleneck adapters'], ['prompt', 'prompt: prompt tuning'], 'freeze', 'full'),
      },
      { key: 'lora_rank', label: 'LoRA rank (r)', help: 'Size of the low-rank update: 8 suits most tasks; 16–64 for harder ones, at more memory.', kind: 'number', when: isLora },
      { key: 'lora_alpha', label: 'LoRA alpha', help: 'Scales the update by alpha / r; twice the rank is the usual choice.', kind: 'number', when: isLora },
      { key: 'lora_dropout', label: 'LoRA dropout', help: 'Drops a share of the LoRA input while training against overfitting; 0 to 0.1.', kind: 'number', when: isLora },
      { key: 'lora_target', label: 'LoRA target modules', help: '"all" adapts every linear layer; or a comma list such as q_proj,v_proj.', kind: 'text', when: isLora },
      { key: 'use_rslora', label: 'rsLoRA', help: 'Scale by alpha / √r instead of alpha / r: steadier with high ranks.', kind: 'checkbox', when: isLora },
      {
        key: 'loraplus_lr_ratio',
        label: 'LoRA+ ratio',
        help: 'LoRA+: the B matrices learn this many times faster than the learning rate (the A matrices at it); 16 often trains faster. Off is plain LoRA.',
        kind: 'select',
        options: choices(['', 'off'], '2', '4', '8', '16'),
        when: isLora,
      },
      {
        key: 'adapter_placement',
        label: 'Adapter placement',
        help: 'pfeiffer puts one adapter after each block’s MLP; houlsby puts one after attention and one after the MLP (twice the parameters).',
        kind: 'select',
        options: choices(['pfeiffer', 'pfeiffer: after the MLP'], ['houlsby', 'houlsby: after attention and the MLP']),
        when: isAdapter,
      },
      { key: 'reduction_factor', label: 'Reduction factor', help: 'Bottleneck size = hidden size ÷ this (it must divide the hidden size): 16 is usual; smaller values give a larger adapter.', kind: 'number', when: isAdapter },
      { key: 'adapter_non_linearity', label: 'Adapter activation', help: 'The non-linearity between the down and up projections: relu is the usual choice.', kind: 'select', options: choices('relu', 'silu', 'gelu'), when: isAdapter },
      { key: 'num_virtual_tokens', label: 'Virtual tokens', help: 'How many learned vectors go before every input: 20 is usual; more give more room and take positions from the cut-off length.', kind: 'number', when: isPrompt },
      {
        key: 'prompt_tuning_init',
        label: 'Start the virtual tokens',
        help: 'random starts them from noise; text starts them at the embeddings of a text that describes the task, which usually trains faster.',
        kind: 'select',
        options: choices('random', ['text', 'text: from a description of the task']),
        when: isPrompt,
      },
      {
        key: 'prompt_tuning_init_text',
        label: 'Start text',
        help: 'A sentence that describes the task, e.g. "Answer the question in one short sentence:"; its tokens are repeated to fill the virtual tokens.',
        kind: 'text',
        when: (v) => isPrompt(v) && v.prompt_tuning_init === 'text',
      },
      { key: 'freeze_trainable_layers', label: 'Trainable layers', help: 'Freeze tuning trains the last n layers (a negative n: the first |n|).', kind: 'number', when: (v) => v.finetuning_type === 'freeze' },
      {
        key: 'quantization_bit',
        label: 'Frozen base weights',
        help: 'How the model’s own weights are held while they stay frozen: as stored (16-bit for most models), 8-bit, or 4-bit (QLoRA: NF4 as bitsandbytes does it), about a quarter of the memory of 16-bit at a small cost in accuracy.',
        kind: 'select',
        options: choices(['', 'as stored'], ['8', '8-bit'], ['4', '4-bit (QLoRA)']),
        when: frozenBase,
      },
      { key: 'quantization_type', label: '4-bit type', help: 'nf4 (the QLoRA paper’s, for normally distributed weights) or fp4.', kind: 'select', options: choices('nf4', 'fp4'), when: fourBit },
      { key: 'double_quantization', label: 'Double quantization', help: 'Also quantize the 4-bit blocks’ scales, as bitsandbytes does (LLaMA-Factory’s default).', kind: 'checkbox', when: fourBit },
    ],
  },
  {
    id: 'data',
    title: 'Data',
    fields: [
      { key: 'cutoff_len', label: 'Cut-off length', help: 'Longest example in tokens; longer ones lose their end. Memory grows with it: 512 suits a browser.', kind: 'number' },
      { key: 'train_on_prompt', label: 'Train on the prompt', help: 'Also learn to predict the prompt tokens, not only the answers (usually off).', kind: 'checkbox' },
      { key: 'mask_history', label: 'Mask earlier turns', help: 'In multi-turn records learn from the last answer only.', kind: 'checkbox' },
      { key: 'val_size', label: 'Validation share', help: 'Held out to measure overfitting: a fraction such as 0.1, or a number of examples; 0 for none.', kind: 'number' },
    ],
  },
  {
    id: 'training',
    title: 'Training',
    fields: [
      { key: 'learning_rate', label: 'Learning rate', help: 'Step size of the optimizer (AdamW): about 1e-4 for LoRA, 1e-5 for full fine-tuning.', kind: 'number' },
      { key: 'num_train_epochs', label: 'Epochs', help: 'How many times to go through the dataset: 1–3 for hundreds of examples, more for fewer.', kind: 'number' },
      { key: 'max_steps', label: 'Max steps', help: 'Stop after this many optimizer steps; -1 trains for the epochs above.', kind: 'number' },
      { key: 'per_device_train_batch_size', label: 'Batch size', help: 'Examples per forward pass: 1–4 in a browser; memory grows with it.', kind: 'number' },
      { key: 'gradient_accumulation_steps', label: 'Gradient accumulation', help: 'Batches summed before each step: a bigger effective batch without more memory.', kind: 'number' },
      { key: 'lr_scheduler_type', label: 'Learning-rate schedule', help: 'How the learning rate changes over the run: cosine and linear decay to zero.', kind: 'select', options: choices('cosine', 'linear', 'constant_with_warmup', 'constant') },
      { key: 'warmup_ratio', label: 'Warm-up share', help: 'Share of the steps spent raising the learning rate from 0; 0.03–0.1 avoids early jumps.', kind: 'number' },
      { key: 'max_grad_norm', label: 'Gradient clipping', help: 'Scale gradients down when their norm is above this; 1.0 is standard, 0 turns it off.', kind: 'number' },
      { key: 'weight_decay', label: 'Weight decay', help: 'Pulls weights slightly towards zero each step; 0 or 0.01.', kind: 'number' },
      { key: 'seed', label: 'Seed', help: 'Fixes the shuffle and the initial LoRA weights, so a run can be repeated exactly.', kind: 'number' },
    ],
  },
  {
    id: 'output',
    title: 'Evaluation and logging',
    fields: [
      { key: 'eval_strategy', label: 'Evaluate', help: 'When to compute the validation loss: "steps" every eval_steps, "epoch" after each epoch, "no" never.', kind: 'select', options: choices('no', 'steps', 'epoch') },
      { key: 'logging_steps', label: 'Logging interval', help: 'Report the loss every this many steps.', kind: 'number' },
      { key: 'save_steps', label: 'Checkpoint interval', help: 'Save a checkpoint (survives a reload) every this many steps.', kind: 'number' },
    ],
  },
];

export const ALL_FIELDS: FieldDef[] = FIELD_GROUPS.flatMap((g) => g.fields);

/**
 * Browser defaults: LLaMA-Factory's where they suit a browser, smaller where memory matters (batch 2 instead of
 * 8, cutoff_len 512 instead of 2048), LoRA r 8 / alpha 16, and the learning rate of LLaMA-Factory's LoRA examples.
 * Bottleneck adapters and prompt tuning start from src/train/settings.ts's defaults (pfeiffer, reduction factor
 * 16, relu; 20 virtual tokens, random start); the method guide's "use this" sets their learning rates.
 */
export const BROWSER_DEFAULTS: SettingsValues = {
  stage: 'sft',
  finetuning_type: 'lora',
  lora_rank: '8',
  lora_alpha: '16',
  lora_dropout: '0',
  lora_target: 'all',
  use_rslora: false,
  loraplus_lr_ratio: '',
  freeze_trainable_layers: '2',
  adapter_placement: 'pfeiffer',
  reduction_factor: '16',
  adapter_non_linearity: 'relu',
  num_virtual_tokens: '20',
  prompt_tuning_init: 'random',
  prompt_tuning_init_text: '',
  quantization_bit: '',
  quantization_type: 'nf4',
  double_quantization: true,
  cutoff_len: '512',
  train_on_prompt: false,
  mask_history: false,
  val_size: '0',
  learning_rate: '1e-4',
  num_train_epochs: '3',
  max_steps: '-1',
  per_device_train_batch_size: '2',
  gradient_accumulation_steps: '4',
  lr_scheduler_type: 'cosine',
  warmup_ratio: '0.1',
  max_grad_norm: '1.0',
  weight_decay: '0',
  seed: '42',
  eval_strategy: 'no',
  logging_steps: '5',
  save_steps: '50',
};

/** The values with any key missing filled from the defaults (settings stored by an older version). */
export function withDefaults(v: Partial<SettingsValues> | undefined): SettingsValues {
  const out: SettingsValues = { ...BROWSER_DEFAULTS };
  for (const [k, x] of Object.entries(v ?? {})) if (k in BROWSER_DEFAULTS && (typeof x === 'string' || typeof x === 'boolean')) out[k] = x;
  return out;
}

/**
 * What goes to parseSettings: the visible fields (LoRA fields only for LoRA, freeze fields only for freeze, so
 * that hidden values cannot make a job invalid), and the model and dataset names.
 */
export function settingsInput(values: SettingsValues, model: string | undefined, dataset: string | undefined): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  if (model) input.model_name_or_path = model;
  if (dataset) input.dataset = dataset;
  for (const f of ALL_FIELDS) {
    if (f.when && !f.when(values)) continue;
    const v = values[f.key];
    if (v === undefined) continue;
    // An empty choice means the setting's default (quantization_bit "as stored": no quantization; LoRA+ off).
    if (f.kind === 'select' && v === '') continue;
    input[f.key] = typeof v === 'string' ? v.trim() : v;
  }
  return input;
}

/** Problems per field key; problems of keys not in the form (model, dataset, the file) under ''. */
export function problemsByField(problems: readonly SettingsProblem[]): Record<string, string[]> {
  const keys = new Set(ALL_FIELDS.map((f) => f.key));
  const out: Record<string, string[]> = {};
  for (const p of problems) {
    const k = p.key && keys.has(p.key) ? p.key : '';
    const text = k === '' && p.key ? `${p.key} ${p.message}` : p.message;
    (out[k] ??= []).push(text);
  }
  return out;
}
