// A Graft job as a LLaMA-Factory job folder (train.yaml, dataset_info.json, the records), for when a person
// outgrows one browser. What goes into each file, and how checkpointing, preference and multi-task jobs are
// written: docs/export.md ("A LLaMA-Factory job").
import { normaliseRecord } from '../data/normalize';
import type { PreferenceRecord } from '../data/preference';
import type { Conversation, DatasetFormat, DatasetProblem } from '../data/types';
import type { TrainSettings } from '../train/settings';
import { settingsToYaml } from '../train/settings-yaml';

export interface LlamaFactoryJobInput {
  settings: TrainSettings;
  /** The dataset's name in dataset_info.json and its file name (<name>.json). Characters outside [A-Za-z0-9_.-] become "_". */
  datasetName: string;
  /** The normalised conversations Graft trained on... */
  records?: readonly Conversation[];
  /** ...or the dataset file's original rows. Give one of the two (stage sft). */
  rows?: readonly unknown[];
  /** Stage dpo and rm: the preference pairs Graft trained on (written as a ShareGPT ranking dataset). */
  pairs?: readonly PreferenceRecord[];
  /** Stage sft: with `records`, the format to write them in; with `rows`, the rows' format. */
  format?: DatasetFormat;
  /**
   * Which chat template Graft rendered with: the model's own (tokenizer_config.json or chat_template.jinja; the
   * default) — LLaMA-Factory then gets no `template` and parses the same one from the tokenizer — or Graft's ChatML
   * default for a model without one, which is LLaMA-Factory's "chatml".
   */
  chatTemplate?: 'model' | 'graft-default';
}

export interface LlamaFactoryJob {
  /** File name → bytes: train.yaml, dataset_info.json and the data file. */
  files: Map<string, Uint8Array>;
  datasetName: string;
  dataFile: string;
  /** The `template` train.yaml names, or undefined when LLaMA-Factory is to use the tokenizer's chat template. */
  template: string | undefined;
  /** Always false: the template is no longer guessed from the model id (kept for readers of earlier results). */
  templateGuessed: boolean;
  /** Rows that were left out because Graft could not read them (with `rows`). */
  skipped: DatasetProblem[];
  /**
   * What LLaMA-Factory will do differently from Graft (multi-task weighting, another shuffle, another validation
   * split, packed positions, dropout masks, a reward head's first draw); also at the top of train.yaml.
   */
  warnings: string[];
  /** What the export changed and why (a `template` left out); also at the top of train.yaml. */
  notes: string[];
}

/** Where LLaMA-Factory writes: not Graft's run folder, whose checkpoint-N/ it would take for its own and resume. */
export const LLAMAFACTORY_OUTPUT_DIR = 'llamafactory_output';

/**
 * Settings whose meaning is the same in both trainers but whose numbers cannot be: what each one draws at random,
 * and how each splits and orders the data. Said loudly, so that a comparison is made knowing it.
 */
function numberWarnings(s: TrainSettings, rows: number): string[] {
  const w: string[] = [];
  const perStep = s.per_device_train_batch_size * s.gradient_accumulation_steps;
  if (!s.disable_shuffling && perStep < rows) {
    w.push('the batches are drawn in another order: Graft shuffles each epoch with its own seeded generator, LLaMA-Factory with PyTorch\'s; set disable_shuffling: true in both for the same batches.');
  }
  if (s.val_size > 0) w.push(`val_size ${s.val_size} holds out other records: LLaMA-Factory splits with datasets' train_test_split, Graft with its own seeded shuffle.`);
  if (s.packing) w.push('packing: the same sequences are packed, but LLaMA-Factory restarts position ids at each packed example where Graft numbers positions through the whole sequence, so the losses differ.');
  if (s.finetuning_type === 'lora' && s.adapter_name_or_path === undefined) {
    w.push("the new LoRA adapter's A matrices are drawn by each trainer's own generator (the same distribution, other values), so the losses drift apart after the first step; start both from the same adapter (adapter_name_or_path) for the same numbers.");
  }
  if (s.finetuning_type === 'lora' && s.lora_dropout > 0) w.push(`lora_dropout ${s.lora_dropout}: the dropout masks come from another random generator, so the losses differ step by step.`);
  if (s.stage === 'rm') w.push("the reward head (score.weight) starts from another random draw of the same normal distribution, so the first losses differ.");
  return w;
}

/** LLaMA-Factory's default tags for ShareGPT and the ones it documents for OpenAI-style records. */
export const SHAREGPT_TAGS = { role_tag: 'from', content_tag: 'value', user_tag: 'human', assistant_tag: 'gpt', system_tag: 'system' } as const;
export const OPENAI_TAGS = { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant', system_tag: 'system' } as const;

/** Model id fragments → LLaMA-Factory template names (template.py's register_template names). First match wins. */
const TEMPLATE_GUESSES: [RegExp, string][] = [
  [/qwen3/i, 'qwen3'],
  [/qwen/i, 'qwen'],
  [/smollm2/i, 'smollm2'],
  [/smollm/i, 'smollm'],
  [/llama-?4/i, 'llama4'],
  [/llama-?3/i, 'llama3'],
  [/llama-?2/i, 'llama2'],
  [/tinyllama.*chat/i, 'zephyr'],
  [/mistral/i, 'mistral'],
  [/gemma-?3/i, 'gemma3'],
  [/gemma/i, 'gemma'],
  [/phi-?4/i, 'phi4'],
  [/phi/i, 'phi'],
];

/**
 * LLaMA-Factory's template for a model id, guessed from its name; "default" when nothing fits. LLaMA-Factory's
 * templates are its own prompt formats: check the guess against the model's chat template before a long run.
 */
export function guessLlamaFactoryTemplate(modelId: string): { template: string; guessed: boolean } {
  for (const [re, name] of TEMPLATE_GUESSES) if (re.test(modelId)) return { template: name, guessed: true };
  return { template: 'default', guessed: false };
}

type Row = Record<string, unknown>;

function conversationRow(c: Conversation, format: DatasetFormat): Row {
  const turns = c.messages;
  switch (format) {
    case 'alpaca': {
      const history: [string, string][] = [];
      for (let i = 0; i + 2 < turns.length; i += 2) history.push([turns[i]!.content, turns[i + 1]!.content]);
      const row: Row = { instruction: turns[turns.length - 2]!.content, input: '', output: turns[turns.length - 1]!.content };
      if (c.system !== undefined) row.system = c.system;
      if (history.length) row.history = history;
      return row;
    }
    case 'sharegpt': {
      const row: Row = { conversations: turns.map((m) => ({ from: m.role === 'user' ? 'human' : 'gpt', value: m.content })) };
      if (c.system !== undefined) row.system = c.system;
      return row;
    }
    case 'openai':
      return { messages: [...(c.system !== undefined ? [{ role: 'system', content: c.system }] : []), ...turns.map((m) => ({ role: m.role, content: m.content }))] };
  }
}

const SHAREGPT_FROM: Record<string, string> = { human: 'human', user: 'human', gpt: 'gpt', assistant: 'gpt', system: 'system' };

/** An original row as LLaMA-Factory must see it; the row must have normalised cleanly. */
function originalRow(row: Row, format: DatasetFormat): Row {
  if (format === 'sharegpt') {
    const turns = (row.conversations as Row[]).map((t) => ({ ...t, from: SHAREGPT_FROM[t.from as string] }));
    return { ...row, conversations: turns };
  }
  if (format === 'openai') {
    const messages = (row.messages as Row[]).map((m) => ({
      ...m,
      content: Array.isArray(m.content) ? (m.content as { text: string }[]).map((p) => p.text).join('') : m.content,
    }));
    return { ...row, messages };
  }
  return row;
}

function datasetInfo(file: string, format: DatasetFormat, rows: readonly Row[]): Record<string, unknown> {
  const has = (key: string) => rows.some((r) => r[key] !== undefined && r[key] !== null);
  if (format === 'alpaca') {
    const columns: Record<string, string> = { prompt: 'instruction', query: 'input', response: 'output' };
    if (has('system')) columns.system = 'system';
    if (has('history')) columns.history = 'history';
    return { file_name: file, formatting: 'alpaca', columns };
  }
  if (format === 'sharegpt') {
    const columns: Record<string, string> = { messages: 'conversations' };
    if (has('system')) columns.system = 'system';
    if (has('tools')) columns.tools = 'tools';
    return { file_name: file, formatting: 'sharegpt', columns, tags: { ...SHAREGPT_TAGS } };
  }
  return { file_name: file, formatting: 'sharegpt', columns: { messages: 'messages' }, tags: { ...OPENAI_TAGS } };
}

/** A preference pair as a row of LLaMA-Factory's ShareGPT ranking format. */
function pairRow(r: PreferenceRecord): Row {
  const row: Row = {
    conversations: r.prompt.map((m) => ({ from: m.role === 'user' ? 'human' : 'gpt', value: m.content })),
    chosen: { from: 'gpt', value: r.chosen },
    rejected: { from: 'gpt', value: r.rejected },
  };
  if (r.system !== undefined) row.system = r.system;
  return row;
}

function rankingInfo(file: string, rows: readonly Row[]): Record<string, unknown> {
  const columns: Record<string, string> = { messages: 'conversations', chosen: 'chosen', rejected: 'rejected' };
  if (rows.some((r) => r.system !== undefined)) columns.system = 'system';
  return { file_name: file, formatting: 'sharegpt', ranking: true, columns, tags: { ...SHAREGPT_TAGS } };
}

/** The multi-task warning, or none: the tasks of the records (their `task`) when there are any. */
function taskWarning(settings: TrainSettings, tasks: readonly (string | undefined)[]): string[] {
  const names = [...new Set(tasks.filter((t): t is string => typeof t === 'string'))].sort();
  if (names.length === 0) return [];
  const how = [`task_weighting ${settings.task_weighting}`];
  if (settings.task_weights) how.push(`task_weights ${Object.entries(settings.task_weights).map(([t, w]) => `${t}:${w}`).join(',')}`);
  if (settings.task_sampling !== 'proportional') how.push(`task_sampling ${settings.task_sampling}`);
  return [
    `LLaMA-Factory has no task weighting: it trains on the records of the ${names.length} task${names.length === 1 ? '' : 's'} (${names.join(', ')}) mixed, ` +
      `with one loss averaged over all answer tokens. Graft's ${how.join(', ')} ${how.length === 1 ? 'is' : 'are'} not in this job, so its result will differ from Graft's.`,
  ];
}

const encoder = new TextEncoder();

/** The files of a LLaMA-Factory job that trains what `settings` trains, on the same records. */
export function exportLlamaFactoryJob(input: LlamaFactoryJobInput): LlamaFactoryJob {
  const { settings } = input;
  const preference = settings.stage === 'dpo' || settings.stage === 'rm';
  if (preference) {
    if (input.pairs === undefined || input.records !== undefined || input.rows !== undefined) {
      throw new Error(`exportLlamaFactoryJob: a "${settings.stage}" job is written from its preference pairs (give pairs, not records or rows)`);
    }
  } else {
    if (input.pairs !== undefined) throw new Error('exportLlamaFactoryJob: an "sft" job is written from records or rows, not preference pairs');
    if ((input.records === undefined) === (input.rows === undefined)) throw new Error('exportLlamaFactoryJob: give either records or rows');
    if (input.format === undefined) throw new Error('exportLlamaFactoryJob: say the format of the records or rows');
  }
  const format = input.format ?? 'sharegpt';
  const name = input.datasetName.trim().replace(/\.(jsonl?|parquet)$/i, '').replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[._-]+/, '') || 'dataset';
  const dataFile = `${name}.json`;

  const skipped: DatasetProblem[] = [];
  let rows: Row[];
  let tasks: (string | undefined)[] = [];
  if (input.pairs) {
    rows = input.pairs.map(pairRow);
  } else if (input.records) {
    tasks = input.records.map((c) => c.task);
    rows = input.records.map((c) => {
      const row = conversationRow(c, format);
      if (c.task !== undefined) row.task = c.task;
      return row;
    });
  } else {
    rows = [];
    input.rows!.forEach((row, index) => {
      const r = normaliseRecord(row, format);
      if (r.ok) {
        rows.push(originalRow(row as Row, format));
        tasks.push(r.conversation.task);
      } else skipped.push({ index, reason: r.reason });
    });
  }
  const warnings = taskWarning(settings, tasks);
  if (rows.length === 0) throw new Error(`exportLlamaFactoryJob: no record of the dataset can be written${skipped.length ? ` (${skipped.length} could not be read)` : ''}`);

  // Graft renders with the model's chat template whatever `template` says (settingsNotes); LLaMA-Factory does the
  // same when `template` is left out (it parses the tokenizer's chat template), so the job leaves it out.
  const template = input.chatTemplate === 'graft-default' ? 'chatml' : undefined;
  const comments: Partial<Record<keyof TrainSettings, string>> = { dataset_dir: 'dataset_info.json and the data file are in this folder' };
  if (template) comments.template = "the model has no chat template: Graft rendered its ChatML default, which is LLaMA-Factory's chatml";
  if (settings.adapter_name_or_path !== undefined) comments.adapter_name_or_path = 'a hub id or a folder LLaMA-Factory can read';
  comments.output_dir = "not Graft's run folder: it holds Graft's checkpoint-N/, which LLaMA-Factory would try to resume from";
  const differences = numberWarnings(settings, rows.length);
  const notes = [
    ...(settings.template !== undefined && template === undefined
      ? [`template "${settings.template}" is left out: Graft rendered with the model's own chat template, and LLaMA-Factory uses that one when template is not set.`]
      : []),
  ];

  const yaml = settingsToYaml(
    { ...settings, dataset: name, dataset_dir: '.', template, output_dir: LLAMAFACTORY_OUTPUT_DIR },
    {
      header: [
        'LLaMA-Factory job exported by Graft.',
        'Run from this folder: llamafactory-cli train train.yaml',
        `The dataset "${name}" is described in dataset_info.json and stored in ${dataFile} (${rows.length} ${preference ? 'preference pairs' : 'records'}).`,
        'cutoff_len, the template (the tokenizer\'s chat template), train_on_prompt and mask_history cut and label the same tokens here as in Graft.',
        ...notes.flatMap((w) => ['', `NOTE: ${w}`]),
        ...[...warnings, ...differences].flatMap((w) => ['', `WARNING: ${w}`]),
      ],
      comments,
      omit: ['resume_from_checkpoint'],
      keys: settings.gradient_checkpointing ? {} : { train: ['disable_gradient_checkpointing: true  # Graft trained without activation checkpointing (LLaMA-Factory\'s default is on)'] },
      extra: {
        train: ['bf16: true  # Graft trained in float32; on GPUs with bfloat16 (Ampere or newer) this is faster and uses less memory'],
        output: settings.resume_from_checkpoint !== undefined ? ['resume_from_checkpoint: left out: Graft checkpoints are not LLaMA-Factory checkpoints'] : [],
      },
    },
  );
  warnings.push(...differences);

  const files = new Map<string, Uint8Array>([
    ['train.yaml', encoder.encode(yaml)],
    ['dataset_info.json', encoder.encode(`${JSON.stringify({ [name]: preference ? rankingInfo(dataFile, rows) : datasetInfo(dataFile, format, rows) }, null, 2)}\n`)],
    [dataFile, encoder.encode(`${JSON.stringify(rows, null, 2)}\n`)],
  ]);
  return { files, datasetName: name, dataFile, template, templateGuessed: false, skipped, warnings, notes };
}
