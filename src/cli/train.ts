// graft train: supervised fine-tuning, preference optimisation (DPO and its variants) or a reward model (LoRA,
// full, freeze or bottleneck adapters) from a LLaMA-Factory job file and/or the same settings as flags (flags win over the file):
//
//   graft train job.yaml
//   graft train --model <dir|repo> --dataset data.jsonl --finetuning_type lora --lora_rank 8 --max_steps 100
//   graft train --stage dpo --model <dir|repo> --dataset pairs.json --pref_beta 0.1 [--pref_loss sigmoid|hinge|ipo|orpo|simpo]
//   graft train --stage rm --model <dir|repo> --dataset pairs.json
//   graft train --model <dir|repo> --dataset qa.json,summarise.json --task_weighting dwa       (multi-task)
//
// Multi-task SFT: records with a "task" field, or several datasets (a comma list), each a task named after its
// file; task_weighting, task_weights, dwa_temperature, dwa_window and task_sampling (src/train/task-weights.ts).
//
// stage sft reads alpaca / ShareGPT / OpenAI records; dpo and rm read preference pairs (src/data/preference.ts:
// {prompt, chosen, rejected} or LLaMA-Factory's ranking format). DPO with full or freeze training and a
// reference-based loss loads the model a second time as the frozen reference, computes the reference log-probs
// once and frees it again.
//
// Reads the model (a folder, or a hub id through the cache), the adapter to continue (adapter_name_or_path: a
// folder or a hub adapter id, LoRA or bottleneck), the dataset (a JSON / JSON Lines file, or a hub dataset:
// the rule is in src/cli/dataset-arg.ts; records that cannot be used are reported and left out), trains on the GPU, and writes into
// output_dir:
//   metrics.jsonl              one JSON object per optimizer step (step, epoch, loss, learning_rate, grad_norm,
//                              tokens, input_tokens, tokens_per_second, elapsed_s, skipped_steps; dpo and rm add
//                              pairs, rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies, and dpo
//                              logps/chosen, logps/rejected, with orpo sft_loss and odds_ratio_loss; multi-task sft
//                              adds task_loss/<task> (tasks with tokens in the step) and task_weight/<task>)
//   eval_metrics.jsonl         {step, eval_loss, eval_tokens} per evaluation (with val_size and eval_strategy);
//                              multi-task adds eval_task_loss/<task>
//   checkpoint-<step>/         every save_steps, at the end, and on Ctrl-C (see src/train/checkpoint.ts)
//   adapter_model.safetensors + adapter_config.json      LoRA: the PEFT adapter; adapter: the bottleneck adapter
//                                                         (Graft's format, README "Bottleneck adapters"); prompt:
//                                                         the PEFT PROMPT_TUNING adapter (prompt_embeddings
//                                                         [num_virtual_tokens, hidden])
//   config.json + model.safetensors + tokenizer files     full / freeze: a Hugging Face model folder
//   rm: config.json + model.safetensors + tokenizer files  the reward model as <Arch>ForSequenceClassification
//       (LoRA merged in) for `graft score` and transformers; LoRA runs also write adapter/ (PEFT, SEQ_CLS)
//   train.yaml + dataset_info.json + <dataset>.json       the job for LLaMA-Factory (llamafactory-cli train train.yaml);
//                              dpo and rm: a ranking dataset; multi-task: with a warning that LLaMA-Factory has no
//                              task weighting
//                              (not for bottleneck adapters or prompt tuning, which LLaMA-Factory does not have)
// Progress goes to stderr: a bar with ETA on a terminal, plain lines otherwise. Ctrl-C stops after the current
// step and saves a checkpoint; `--resume_from_checkpoint true` continues the run from the latest one.
import { appendFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Pair } from 'yaml';
import { describeSource, parseDatasetText, prepareSftData, type DatasetFormat, type DatasetProblem, type ParsedDataset } from '../data';
import { parsePreferenceText, preparePreferenceData } from '../data/preference';
import { exportBottleneckAdapter, exportHfModel, exportLlamaFactoryJob, exportPeftAdapter, exportPromptTuning, type WeightTensor } from '../export';
import { PROMPT_EMBEDDINGS } from '../model/prompt-tuning';
import { exportRewardAdapter, exportRewardModel } from '../export/reward-model';
import { SCORE_WEIGHT } from '../model/reward-head';
import { usesReference } from '../train/objectives/preference-loss';
import { ADAPTER_CONFIG, readAdapter } from '../model/adapter';
import { isBottleneckConfig, readBottleneckAdapter } from '../model/bottleneck-file';
import { UnsupportedModelError } from '../model/config';
import { describeModel } from '../model/info';
import { loadModel, type LoadedModel } from '../model/load';
import { readJson, type ModelSource } from '../model/source';
import { decodeCheckpoint } from '../train/checkpoint';
import { checkpointName, parseCheckpointName } from '../train/checkpoint-store';
import { NodeCheckpointStore } from '../train/checkpoint-store-node';
import type { EvalRecord, StepRecord, TrainProgress } from '../train/metrics';
import { bottleneckWeights, checkMethodSettings, loraModuleWeights } from '../train/methods';
import { readJoined } from '../train/optimizer';
import { BOOLEAN_SETTINGS, datasetNames, parseJobYaml, parseSettingsWithNotes, settingsWarnings, SETTINGS_KEYS, type TrainSettings } from '../train/settings';
import { Trainer, type TrainExample, type TrainPair, type TrainResult } from '../train/trainer';
import { UsageError, type CommandSpec, type OptionSpec, type Parsed } from './args';
import { datasetLabel, readHubDataset, readHubDatasetFile, resolveDatasetArg, type DatasetRef } from './dataset-arg';
import { openGpu } from './gpu';
import { resolveAdapterArg, resolveModelArg, type CliEnv } from './model-arg';
import { bar, formatDuration, type ProgressStream } from './progress';
import { CliError, EXIT_INTERRUPTED } from './report';

/** Flags with a word of help; every other setting is a flag too ("a LLaMA-Factory setting"). */
const DESCRIBED: Partial<Record<keyof TrainSettings, [string, string]>> = {
  dataset: [
    '<file|repo>[,...]',
    'The dataset: a JSON or JSON Lines file (sft: alpaca, ShareGPT or OpenAI messages; dpo, rm: {prompt, chosen, rejected} pairs), a name in dataset_dir/dataset_info.json (file_name, or hf_hub_url with split), or a hub dataset: owner/name[@revision] (its train split) or hf://datasets/owner/name[@revision]/<file> (one JSON, JSON Lines or Parquet file; dpo, rm: one JSON or JSON Lines file). A local file wins over a hub id of the same spelling. sft: several datasets are the tasks of a multi-task run.',
  ],
  stage: ['sft|dpo|rm', 'The training stage: sft, dpo (preference pairs) or rm (a reward model).'],
  pref_beta: ['B', 'DPO: beta of the preference loss (default 0.1).'],
  pref_loss: ['sigmoid|hinge|ipo|orpo|simpo', 'DPO: the preference loss (default sigmoid).'],
  pref_ftx: ['W', 'DPO: weight of an added SFT loss on the chosen answers (default 0).'],
  simpo_gamma: ['G', 'DPO with simpo: the target reward margin (default 0.5).'],
  finetuning_type: ['TYPE', 'What trains: lora (default), full, freeze, adapter (bottleneck adapters) or prompt (prompt tuning).'],
  lora_rank: ['R', 'LoRA rank (default 8).'],
  lora_alpha: ['A', 'LoRA alpha (default 2 × rank).'],
  lora_dropout: ['P', 'LoRA dropout on the adapter input while training, 0 to <1 (default 0).'],
  lora_target: ['NAMES', 'The linear layers LoRA adapts: all (default) or names like q_proj,v_proj.'],
  use_rslora: ['true|false', 'Scale by alpha/√r (rank-stabilised LoRA).'],
  adapter_name_or_path: ['<dir|repo>', 'The adapter to continue training: a folder or a hub adapter id owner/name[@revision] (hf://owner/name: the hub even when a folder has that name). LoRA (PEFT) with finetuning_type lora, a bottleneck adapter with finetuning_type adapter; its own settings are used.'],
  freeze_trainable_layers: ['N', 'Freeze tuning: train the last N layers (negative: the first |N|).'],
  freeze_trainable_modules: ['NAMES', 'Freeze tuning: the modules of those layers that train.'],
  freeze_extra_modules: ['NAMES', 'Freeze tuning: modules outside the layers that train too.'],
  adapter_placement: ['houlsby|pfeiffer', 'Bottleneck adapters after the MLP (pfeiffer, default) or after attention and MLP (houlsby).'],
  reduction_factor: ['N', 'Bottleneck adapters: bottleneck size = hidden size / N (default 16).'],
  adapter_non_linearity: ['relu|silu|gelu', 'Bottleneck adapters: the non-linearity (default relu).'],
  num_virtual_tokens: ['N', 'Prompt tuning: virtual tokens in front of every sequence (default 20).'],
  prompt_tuning_init: ['random|text', 'Prompt tuning: start from N(0, 1) or from the init text\'s token embeddings.'],
  prompt_tuning_init_text: ['"..."', 'Prompt tuning: the text whose token embeddings start the virtual tokens.'],
  learning_rate: ['LR', 'Peak learning rate (default 5e-5).'],
  lr_scheduler_type: ['NAME', 'linear (default), cosine, constant or constant_with_warmup.'],
  warmup_steps: ['N', 'Warm-up steps.'],
  warmup_ratio: ['F', 'Warm-up as a fraction of the steps.'],
  per_device_train_batch_size: ['N', 'Sequences per micro-batch (default 8).'],
  gradient_accumulation_steps: ['N', 'Micro-batches per optimizer step (default 1).'],
  max_steps: ['N', 'Optimizer steps (overrides num_train_epochs).'],
  num_train_epochs: ['N', 'Epochs (default 3).'],
  cutoff_len: ['N', 'Longest sequence in tokens (default 2048).'],
  max_samples: ['N', 'Use the first N records of the dataset.'],
  max_grad_norm: ['N', 'Clip the gradient norm (default 1.0; 0 = off).'],
  weight_decay: ['W', 'AdamW weight decay (not on biases and norms).'],
  adam_beta1: ['B', 'AdamW beta1 (default 0.9).'],
  adam_beta2: ['B', 'AdamW beta2 (default 0.999).'],
  adam_epsilon: ['E', 'AdamW epsilon (default 1e-8).'],
  seed: ['S', 'Seed of the shuffle, split and LoRA init (default 42).'],
  val_size: ['F|N', 'Hold out a fraction or a number of examples for eval_loss.'],
  eval_strategy: ['WHEN', 'When to evaluate: no (default), steps or epoch.'],
  eval_steps: ['N', 'Evaluate every N steps.'],
  save_steps: ['N', 'Checkpoint every N steps (default 500).'],
  save_total_limit: ['N', 'Keep at most N checkpoints.'],
  logging_steps: ['N', 'Print a progress line every N steps (plain output).'],
  resume_from_checkpoint: ['<dir>|true', 'Continue from a checkpoint folder (true: the latest in output_dir).'],
  output_dir: ['<dir>', 'Where checkpoints, metrics and the result go (default trainer_output).'],
  task_weighting: ['static|dwa|uncertainty', 'Multi-task (records with a "task", or several datasets): how task losses are weighted (default static).'],
  task_weights: ['T:W,...', 'Multi-task, static: weight per task, e.g. qa:1,summarise:0.5 (tasks not named: 1).'],
  dwa_temperature: ['T', 'Multi-task, dwa: the softmax temperature (default 2.0).'],
  dwa_window: ['N', 'Multi-task, dwa: optimizer steps per loss window (default 10).'],
  task_sampling: ['proportional|balanced', 'Multi-task: the usual shuffle, or each task equally likely per example.'],
  overwrite_output_dir: ['true|false', 'Start over in an output_dir that holds an earlier run.'],
  gradient_checkpointing: ['[true|false]', 'Recompute each layer\'s forward in the backward instead of keeping its activations: less GPU memory, the same result, slower steps (default false).'],
};

function trainOptions(): Record<string, OptionSpec> {
  const options: Record<string, OptionSpec> = {
    model: { type: 'string', short: 'm', value: '<dir|repo>', description: 'Model folder or hub model id (model_name_or_path).' },
  };
  for (const key of SETTINGS_KEYS) {
    const d = DESCRIBED[key];
    options[key] = { type: 'string', value: d?.[0] ?? 'V', description: d?.[1] ?? 'A LLaMA-Factory setting.', ...(BOOLEAN_SETTINGS.has(key) ? { bare: 'true' } : {}) };
  }
  options.shuffle = { type: 'string', value: 'true|false', description: 'Shuffle the examples each epoch (default true; false = disable_shuffling).' };
  return options;
}

export const trainSpec: CommandSpec = {
  name: 'train',
  summary: 'Fine-tune a model (sft, dpo or rm; LoRA, full or freeze) on a dataset file; LLaMA-Factory job files and settings.',
  usage: 'train [job.yaml] [--setting value ...]',
  details:
    'Settings use LLaMA-Factory\'s names, in a YAML job file and/or as flags (--learning_rate 1e-4); flags win over\n' +
    'the file. Unknown settings, and settings Graft cannot honour, are refused with the reason. Writes into\n' +
    'output_dir: metrics.jsonl, checkpoint-<step>/ folders, the PEFT adapter (LoRA) or the model (full, freeze),\n' +
    'and train.yaml for LLaMA-Factory (sft). --stage dpo trains on preference pairs; --stage rm trains a reward\n' +
    'model and writes it as a sequence-classification model that `graft score` rates answers with. Ctrl-C\n' +
    'stops after the current step and saves a checkpoint; continue with --resume_from_checkpoint true.',
  positionals: ['<job.yaml>'],
  required: 0,
  options: trainOptions(),
  examples: [
    'graft train job.yaml',
    'graft train --model HuggingFaceTB/SmolLM2-135M-Instruct --dataset data.jsonl --lora_rank 8 --max_steps 200',
    'graft train job.yaml --learning_rate 1e-4 --output_dir runs/lr1e-4',
    'graft train --stage dpo --model ./my-sft-model --dataset pairs.json --pref_beta 0.1 --max_steps 100',
    'graft train --stage rm --model ./my-sft-model --dataset pairs.json --output_dir runs/rm',
  ],
};

// ---- settings ------------------------------------------------------------------------------------------------

interface JobSettings {
  settings: TrainSettings;
  notes: string[];
  /** The job file's folder (relative dataset paths are also looked for there). */
  jobDir?: string;
}

async function readSettings(args: Parsed): Promise<JobSettings> {
  const raw: Record<string, unknown> = {};
  const lines = new Map<string, number>();
  const file = args.positionals[0];
  let jobDir: string | undefined;
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new CliError('no-job', code === 'ENOENT' ? `There is no job file ${resolve(file)}.` : `Cannot read the job file ${file}: ${(e as Error).message}`);
    }
    jobDir = dirname(resolve(file));
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { version: '1.1', uniqueKeys: true, prettyErrors: false, lineCounter });
    if (doc.errors.length || !isMap(doc.contents)) parseJobYaml(text, basename(file)); // throws its SettingsError with the line
    for (const item of (doc.contents as { items: Pair[] }).items) {
      const k = isScalar(item.key) ? String(item.key.value) : String(item.key);
      const start = isScalar(item.key) ? item.key.range?.[0] : undefined;
      if (start !== undefined) lines.set(k, lineCounter.linePos(start).line);
    }
    Object.assign(raw, doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>);
  }
  const flags: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args.values)) {
    if (v === undefined || k === 'help') continue;
    if (k === 'model') flags.model_name_or_path = v;
    else if (k === 'shuffle') {
      const s = String(v).trim().toLowerCase();
      if (!['true', 'false', '1', '0', 'yes', 'no'].includes(s)) throw new UsageError(`graft train: --shuffle must be true or false, not "${String(v)}"`);
      flags.disable_shuffling = ['false', '0', 'no'].includes(s);
    } else flags[k] = v;
  }
  const source = file !== undefined ? (Object.keys(flags).length ? `${basename(file)} with the command line` : basename(file)) : 'the command line';
  const parsed = parseSettingsWithNotes({ ...raw, ...flags }, source, (k) => (k in flags ? undefined : lines.get(k)));
  return { settings: parsed.settings, notes: parsed.notes, ...(jobDir !== undefined ? { jobDir } : {}) };
}

// ---- dataset -------------------------------------------------------------------------------------------------

const MAX_REPORTED = 100;

function reportProblems(io: CliEnv, file: string, problems: readonly DatasetProblem[], what: string): void {
  for (const p of problems.slice(0, MAX_REPORTED)) {
    const where = p.line !== undefined || p.index !== undefined ? `${describeSource(p)}: ` : '';
    const reason = p.reason.startsWith(describeSource(p)) ? p.reason.slice(describeSource(p).length + 2) : p.reason;
    io.stderr.write(`graft train: ${file} ${where}${reason} (${what})\n`);
  }
  if (problems.length > MAX_REPORTED) io.stderr.write(`graft train: … and ${problems.length - MAX_REPORTED} more\n`);
}

/** The task of each of several datasets: its name without folder and extension. */
function datasetTaskNames(names: readonly string[]): string[] {
  const tasks = names.map((n) => basename(n, extname(n)));
  const dup = tasks.find((t, i) => tasks.indexOf(t) !== i);
  if (dup !== undefined) throw new CliError('bad-dataset', `two datasets of the list would both be task "${dup}"; rename one of the files (a dataset's task is its name without folder and extension)`);
  return tasks;
}

/**
 * The SFT records of one dataset, or of several: then each is a task of a multi-task run, named after its
 * dataset (datasetTaskNames), and a record's own "task" field wins. Problems are reported per file here.
 */
async function readSftDatasets(refs: readonly DatasetRef[], io: CliEnv): Promise<ParsedDataset> {
  const tasks = refs.length > 1 ? datasetTaskNames(refs.map((r) => r.name)) : undefined;
  const parts: ParsedDataset[] = [];
  for (const [k, ref] of refs.entries()) {
    const label = datasetLabel(ref);
    const p = ref.kind === 'file' ? parseDatasetText(new Uint8Array(await readFile(ref.path)), label) : await readHubDataset(ref, io);
    reportProblems(io, label, p.problems, 'skipped');
    if (tasks) for (const r of p.records) r.task ??= tasks[k]!;
    parts.push(p);
  }
  if (parts.length === 1) return parts[0]!;
  const formats = [...new Set(parts.map((p) => p.format).filter((f) => f !== null))];
  const formatCounts: ParsedDataset['formatCounts'] = {};
  for (const p of parts) for (const [f, n] of Object.entries(p.formatCounts)) formatCounts[f as DatasetFormat] = (formatCounts[f as DatasetFormat] ?? 0) + n;
  return {
    records: parts.flatMap((p) => p.records),
    problems: parts.flatMap((p) => p.problems),
    format: formats.length === 1 ? formats[0]! : formats.length ? 'mixed' : null,
    formatCounts,
    container: 'json',
  };
}

// ---- progress ----------------------------------------------------------------------------------------------------

const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
const fmtLr = (x: number) => x.toExponential(2);

export class TrainReporter {
  private drawn = false;
  private lastLine = 0;

  constructor(
    private readonly out: ProgressStream,
    private readonly loggingSteps: number,
    private readonly tty = Boolean(out.isTTY),
  ) {}

  update(p: TrainProgress): void {
    const r = p.last;
    const eta = p.etaSeconds !== undefined ? `  ETA ${formatDuration(p.etaSeconds)}` : '';
    if (this.tty) {
      const cols = Math.max(40, (this.out.columns || 100) - 1);
      const phase = p.phase === 'train' ? '' : `  (${p.phase === 'eval' ? 'evaluating' : 'saving a checkpoint'})`;
      const stats = r ? `  loss ${fmt(r.loss)}  lr ${fmtLr(r.learning_rate)}  ${Math.round(r.tokens_per_second)} tok/s` : '';
      let line = `train ${bar(p.totalSteps ? p.step / p.totalSteps : 0, 20)} ${p.step}/${p.totalSteps}${stats}${eta}${phase}`;
      if (line.length > cols) line = `${line.slice(0, cols - 1)}…`;
      this.out.write(`\r\x1b[K${line}`);
      this.drawn = true;
      return;
    }
    if (p.phase !== 'train' || !r || r.step !== p.step) return;
    const now = Date.now();
    const due = r.step === 1 || r.step === p.totalSteps || r.step % this.loggingSteps === 0 || r.skipped === true || now - this.lastLine >= 10_000;
    if (!due) return;
    this.lastLine = now;
    this.out.write(
      `step ${r.step}/${p.totalSteps}  epoch ${r.epoch.toFixed(2)}  loss ${fmt(r.loss)}  lr ${fmtLr(r.learning_rate)}  grad_norm ${fmt(r.grad_norm, 3)}  ` +
        `${Math.round(r.tokens_per_second)} tok/s  ${formatDuration(r.elapsed_s)}${eta}${preferenceStats(r)}${r.skipped ? '  SKIPPED (loss or gradient not finite)' : ''}\n`,
    );
  }

  /** A line of its own (eval results, checkpoints), keeping the bar below it. */
  line(text: string): void {
    this.clear();
    this.out.write(`${text}\n`);
  }

  clear(): void {
    if (this.tty && this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }
}

/** DPO / RM steps: the reward margin and accuracy, after the SFT fields of a progress line. */
function preferenceStats(r: StepRecord): string {
  const x = r as StepRecord & Partial<Record<'rewards/margins' | 'rewards/accuracies', number>>;
  if (x['rewards/accuracies'] === undefined || x['rewards/margins'] === undefined) return '';
  return `  margin ${fmt(x['rewards/margins'])}  accuracy ${fmt(x['rewards/accuracies'], 2)}`;
}

// ---- output_dir and resuming ---------------------------------------------------------------------------------

const GRAFT_OUTPUTS = ['metrics.jsonl', 'eval_metrics.jsonl'];

async function prepareOutputDir(s: TrainSettings, io: CliEnv, store: NodeCheckpointStore): Promise<{ resumeFrom?: string }> {
  const dir = store.dir;
  let entries: string[] = [];
  try {
    entries = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (s.resume_from_checkpoint !== undefined && !/^(false|no|0)$/i.test(s.resume_from_checkpoint)) {
    if (/^(true|yes|1)$/i.test(s.resume_from_checkpoint)) {
      const steps = await store.list();
      if (!steps.length) throw new CliError('no-checkpoint', `resume_from_checkpoint: there is no complete checkpoint in ${dir} to resume from.`);
      return { resumeFrom: store.folder(steps[steps.length - 1]!) };
    }
    return { resumeFrom: resolve(s.resume_from_checkpoint) };
  }
  if (entries.length === 0) return {};
  if (s.overwrite_output_dir) {
    for (const name of entries) {
      if (parseCheckpointName(name.replace(/\.tmp$/, '')) !== undefined || GRAFT_OUTPUTS.includes(name)) await rm(join(dir, name), { recursive: true, force: true });
    }
    io.stderr.write(`graft train: note: overwrite_output_dir: the earlier run's checkpoints and metrics in ${dir} were removed\n`);
    return {};
  }
  // LLaMA-Factory's rule: an output_dir with a checkpoint resumes from the latest; one with other files is refused.
  const steps = await store.list();
  if (steps.length) {
    const latest = store.folder(steps[steps.length - 1]!);
    io.stderr.write(`graft train: note: resuming from ${latest} (found in output_dir; set overwrite_output_dir: true to start over)\n`);
    return { resumeFrom: latest };
  }
  if (entries.some((e) => !e.endsWith('.tmp'))) {
    throw new CliError('output-exists', `output_dir ${dir} already exists and is not empty; set overwrite_output_dir: true, or choose another output_dir.`);
  }
  return {};
}

async function readCheckpointFolder(folder: string) {
  const step = parseCheckpointName(basename(folder));
  if (step === undefined) throw new CliError('no-checkpoint', `resume_from_checkpoint: ${folder} is not a checkpoint-<step> folder.`);
  const store = new NodeCheckpointStore(dirname(folder));
  return decodeCheckpoint(await store.read(step), folder);
}

// ---- exports ---------------------------------------------------------------------------------------------------

async function writeFiles(dir: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  for (const [name, bytes] of files) await writeFile(join(dir, name), bytes);
}

async function tokenizerFilesOf(source: ModelSource): Promise<Map<string, Uint8Array>> {
  const tokenizerFiles = new Map<string, Uint8Array>();
  for (const name of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'vocab.json', 'merges.txt']) {
    const bytes = await source.readFile(name);
    if (bytes) tokenizerFiles.set(name, bytes);
  }
  return tokenizerFiles;
}

/**
 * A reward model run's files: the sequence-classification model (LoRA merged in) in `dir`, and for LoRA the
 * PEFT adapter (with the head) in `dir`/adapter. Returns the names written (adapter files as adapter/<name>).
 */
export async function exportRewardResult(trainer: Trainer, lm: LoadedModel, source: ModelSource, s: TrainSettings, modelId: string, dir: string): Promise<string[]> {
  const trained = await trainer.trainableWeights();
  const score = trained.get(SCORE_WEIGHT);
  if (!score) throw new Error('exportRewardResult: the run has no score.weight (is it a stage rm run?)');
  const weights = new Map<string, WeightTensor>();
  for (const p of lm.model.parameters()) weights.set(p.name, { dtype: 'F32', shape: p.shape, data: await readJoined(lm.model.ctx, p.parts) });
  const lora = trainer.method.lora;
  const modules = lora ? loraModuleWeights(lora, trained) : undefined;
  const fanInFanOut = lm.config.architecture === 'GPT2LMHeadModel';
  const generationConfig = await readJson(source, 'generation_config.json', false);
  const files = exportRewardModel({
    config: await readJson(source, 'config.json', true),
    weights,
    ...(lora && modules ? { lora: { r: lora.r, alpha: lora.alpha, useRslora: lora.useRslora, fanInFanOut, modules } } : {}),
    score,
    padTokenId: lm.tokenizer.padTokenId ?? lm.tokenizer.eosTokenIds[0] ?? 0,
    tokenizerFiles: await tokenizerFilesOf(source),
    ...(generationConfig ? { generationConfig } : {}),
  });
  await writeFiles(dir, files);
  const written = [...files.keys()];
  if (lora && modules) {
    const adapter = exportRewardAdapter({
      baseModel: modelId,
      ...(s.model_revision !== 'main' ? { revision: s.model_revision } : {}),
      r: lora.r,
      alpha: lora.alpha,
      useRslora: lora.useRslora,
      dropout: s.lora_dropout,
      targetModules: lora.targetModules,
      fanInFanOut,
      modules,
      score,
    });
    await mkdir(join(dir, 'adapter'), { recursive: true });
    await writeFiles(join(dir, 'adapter'), adapter);
    written.push(...[...adapter.keys()].map((n) => `adapter/${n}`));
  }
  return written;
}

async function graftVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function exportResult(trainer: Trainer, lm: LoadedModel, source: ModelSource, s: TrainSettings, modelId: string, dir: string): Promise<string[]> {
  if (s.stage === 'rm') return exportRewardResult(trainer, lm, source, s, modelId, dir);
  const prompt = trainer.method.prompt;
  if (prompt) {
    const embeddings = (await trainer.trainableWeights()).get(PROMPT_EMBEDDINGS)!;
    const files = exportPromptTuning({
      baseModel: modelId,
      ...(s.model_revision !== 'main' ? { revision: s.model_revision } : {}),
      ...prompt,
      embeddings,
    });
    await writeFiles(dir, files);
    return [...files.keys()];
  }
  const lora = trainer.method.lora;
  if (lora) {
    const modules = loraModuleWeights(lora, await trainer.trainableWeights());
    const files = exportPeftAdapter({
      baseModel: modelId,
      ...(s.model_revision !== 'main' ? { revision: s.model_revision } : {}),
      r: lora.r,
      alpha: lora.alpha,
      useRslora: lora.useRslora,
      dropout: s.lora_dropout,
      targetModules: lora.targetModules,
      fanInFanOut: lm.config.architecture === 'GPT2LMHeadModel',
      modules,
    });
    await writeFiles(dir, files);
    return [...files.keys()];
  }
  const bottleneck = trainer.method.bottleneck;
  if (bottleneck) {
    const files = exportBottleneckAdapter({
      adapter: bottleneckWeights(bottleneck, await trainer.trainableWeights()),
      baseModel: modelId,
      graftVersion: await graftVersion(),
    });
    await writeFiles(dir, files);
    return [...files.keys()];
  }
  const weights = new Map<string, WeightTensor>();
  for (const p of lm.model.parameters()) weights.set(p.name, { dtype: 'F32', shape: p.shape, data: await readJoined(lm.model.ctx, p.parts) });
  const tokenizerFiles = await tokenizerFilesOf(source);
  const generationConfig = await readJson(source, 'generation_config.json', false);
  const files = exportHfModel({
    config: await readJson(source, 'config.json', true),
    weights,
    tokenizerFiles,
    ...(generationConfig ? { generationConfig } : {}),
  });
  await writeFiles(dir, files);
  return [...files.keys()];
}

// ---- the command -----------------------------------------------------------------------------------------------

export async function runTrain(args: Parsed, io: CliEnv): Promise<number> {
  const { settings: s, notes, jobDir } = await readSettings(args);
  for (const n of [...notes, ...settingsWarnings(s)]) io.stderr.write(`graft train: note: ${n}\n`);
  checkMethodSettings(s);
  const pairs = s.stage !== 'sft';
  if (pairs && (s.train_on_prompt || s.mask_history)) {
    io.stderr.write(`graft train: note: train_on_prompt and mask_history apply to stage sft; stage ${s.stage} scores the answers only\n`);
  }

  // Everything that can fail without the GPU fails first.
  const datasetList = datasetNames(s);
  const datasetRefs: DatasetRef[] = [];
  for (const name of datasetList) datasetRefs.push(await resolveDatasetArg(name, s.dataset_dir, jobDir, io));
  const firstRef = datasetRefs[0]!;
  const outputDir = resolve(s.output_dir);
  const store = new NodeCheckpointStore(outputDir);
  const { resumeFrom } = await prepareOutputDir(s, io, store);
  const resume = resumeFrom !== undefined ? await readCheckpointFolder(resumeFrom) : undefined;

  const resolved = await resolveModelArg(s.model_name_or_path, io, { revision: s.model_revision });
  // The adapter to continue: a folder, or a hub adapter downloaded into the cache, before the GPU is opened.
  const adapterSource = s.adapter_name_or_path !== undefined ? await resolveAdapterArg(s.adapter_name_or_path, io, 'adapter_name_or_path') : undefined;
  const info = await describeModel(resolved.source);
  if (!info.supported) throw new UnsupportedModelError(info.unsupportedReason ?? `${info.architecture} is not supported yet.`);

  // The dataset: every record that cannot be used is named with its line and left out.
  const fileName = datasetRefs.length > 1 ? datasetTaskNames(datasetList).join('+') : basename(datasetLabel(firstRef));
  const parsed = pairs ? undefined : await readSftDatasets(datasetRefs, io);
  const pairBytes = !pairs ? undefined : firstRef.kind === 'file' ? new Uint8Array(await readFile(firstRef.path)) : (await readHubDatasetFile(firstRef, io)).bytes;
  const parsedPairs = pairBytes ? parsePreferenceText(pairBytes, fileName) : undefined;
  const problems = parsed?.problems ?? parsedPairs!.problems;
  if (!parsed) reportProblems(io, fileName, problems, 'skipped');
  for (const w of parsedPairs?.warnings ?? []) io.stderr.write(`graft train: note: ${fileName} ${describeSource(w)}: ${w.reason} (kept)\n`);
  const allRecords: readonly unknown[] = parsed?.records ?? parsedPairs!.records;
  const records = s.max_samples !== undefined ? parsed?.records.slice(0, s.max_samples) : parsed?.records;
  const pairRecords = s.max_samples !== undefined ? parsedPairs?.records.slice(0, s.max_samples) : parsedPairs?.records;
  const readCount = allRecords.length + problems.filter((p) => p.line !== undefined || p.index !== undefined).length;
  if (problems.length) io.stderr.write(`graft train: ${problems.length} of ${readCount} records of ${fileName} cannot be used and were skipped\n`);
  if ((records ?? pairRecords)!.length === 0) {
    throw new CliError('empty-dataset', `${fileName} has no ${pairs ? 'preference pair' : 'record'} Graft can train on${pairs ? ' (stage dpo and rm read {prompt, chosen, rejected} records)' : ''}.`);
  }

  const { ctx } = await openGpu();
  let lm: LoadedModel | undefined;
  let reference: LoadedModel | undefined;
  let trainer: Trainer | undefined;
  try {
    // Sequences are at most cutoff_len long (after prompt tuning's virtual tokens): the RoPE table needs no more.
    const virtualTokens = s.finetuning_type === 'prompt' ? s.num_virtual_tokens : 0;
    lm = await loadModel(ctx, resolved.source, { maxPositions: s.cutoff_len + virtualTokens });
    let data: { train: readonly TrainExample[] | readonly TrainPair[]; val: readonly TrainExample[] | readonly TrainPair[] };
    if (records) {
      const sft = prepareSftData(records, lm.tokenizer, lm.template, {
        cutoffLen: s.cutoff_len,
        trainOnPrompt: s.train_on_prompt,
        maskHistory: s.mask_history,
        valSize: s.val_size,
        seed: s.seed,
        shuffle: false,
        packing: s.packing,
      });
      reportProblems(io, fileName, sft.problems, 'skipped');
      if (sft.problems.length) io.stderr.write(`graft train: ${sft.problems.length} records of ${fileName} could not be encoded and were skipped\n`);
      if (sft.stats.examplesWithoutTargets > 0) {
        const n = sft.stats.examplesWithoutTargets;
        io.stderr.write(`graft train: note: ${n} example${n === 1 ? ' has' : 's have'} no answer token left within cutoff_len ${s.cutoff_len}; ${n === 1 ? 'it adds' : 'they add'} nothing to the loss\n`);
      }
      data = sft;
    } else {
      const pref = preparePreferenceData(pairRecords!, lm.tokenizer, lm.template, { cutoffLen: s.cutoff_len, valSize: s.val_size, seed: s.seed, shuffle: false });
      reportProblems(io, fileName, pref.problems, 'skipped');
      if (pref.problems.length) io.stderr.write(`graft train: ${pref.problems.length} pairs of ${fileName} could not be encoded and were skipped\n`);
      if (pref.stats.truncatedPairs > 0) io.stderr.write(`graft train: note: ${pref.stats.truncatedPairs} pairs have an answer cut at cutoff_len ${s.cutoff_len}\n`);
      if (pref.train.length === 0) throw new CliError('empty-dataset', `${fileName} has no preference pair left to train on.`);
      data = pref;
    }
    if (s.stage === 'dpo' && (s.finetuning_type === 'full' || s.finetuning_type === 'freeze') && usesReference(s.pref_loss)) {
      // The frozen reference: the starting weights, loaded a second time; freed once its log-probs are computed.
      reference = await loadModel(ctx, resolved.source, { maxPositions: s.cutoff_len });
    }
    const configJson = s.stage === 'rm' ? await readJson(resolved.source, 'config.json', true) : undefined;
    const initializerRange = typeof configJson?.initializer_range === 'number' ? configJson.initializer_range : undefined;
    // LoRA (PEFT) or bottleneck, by its adapter_config.json; setupMethod refuses one that does not fit finetuning_type.
    const startingAdapter = adapterSource
      ? isBottleneckConfig(await readJson(adapterSource, ADAPTER_CONFIG, true, 'an adapter folder needs adapter_config.json and adapter_model.safetensors'))
        ? await readBottleneckAdapter(adapterSource, lm.config)
        : await readAdapter(adapterSource, lm.config)
      : undefined;
    // PEFT's TEXT init tokenizes the text as tokenizer(text) does: with the special tokens.
    const promptInitIds =
      s.finetuning_type === 'prompt' && s.prompt_tuning_init === 'text' ? lm.tokenizer.encode(s.prompt_tuning_init_text!, { addSpecialTokens: true }) : undefined;
    await mkdir(outputDir, { recursive: true });
    trainer = Trainer.create({
      model: lm.model,
      settings: s,
      train: data.train,
      val: data.val,
      padTokenId: lm.tokenizer.padTokenId ?? lm.tokenizer.eosTokenIds[0] ?? 0,
      ...(startingAdapter ? { startingAdapter } : {}),
      ...(promptInitIds ? { promptInitIds } : {}),
      store,
      ...(resume ? { resume } : {}),
      ...(reference ? { reference: reference.model } : {}),
      ...(initializerRange !== undefined ? { initializerRange } : {}),
    });
    for (const n of trainer.notes) io.stderr.write(`graft train: note: ${n}\n`);
    const tasks = trainer.objective.tasks;
    if (tasks) {
      const count = (t: number) => tasks.ofExample.filter((x) => x === t).length;
      io.stderr.write(`graft train: multi-task: ${tasks.names.map((n, t) => `${n} (${count(t)})`).join(', ')}; task_weighting ${s.task_weighting}, task_sampling ${s.task_sampling}\n`);
    }
    if (reference) {
      await trainer.prepare();
      reference.dispose();
      reference = undefined;
    }
    const trainable = trainer.params.reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
    const what = pairs ? 'pairs' : 'sequences';
    const stage = s.stage === 'dpo' ? `dpo (${s.pref_loss}, beta ${s.pref_beta}) with ` : s.stage === 'rm' ? 'reward model with ' : '';
    io.stderr.write(
      `graft train: ${stage}${s.finetuning_type} on ${info.architecture} (${trainable.toLocaleString('en-US')} trainable parameters), ` +
        `${data.train.length} training ${what}${data.val.length ? `, ${data.val.length} for evaluation` : ''}, ${trainer.totalSteps} steps` +
        `${resume ? `, resuming after step ${resume.state.global_step}` : ''}\n`,
    );

    // metrics.jsonl holds the run's steps: a resumed run rewrites it from its checkpoint first.
    const metricsFile = join(outputDir, 'metrics.jsonl');
    const evalFile = join(outputDir, 'eval_metrics.jsonl');
    const history = trainer.history;
    await writeFile(metricsFile, history.metrics.map((m) => `${JSON.stringify(m)}\n`).join(''));
    await writeFile(evalFile, history.evalMetrics.map((m) => `${JSON.stringify(m)}\n`).join(''));
    const reporter = new TrainReporter(io.stderr, Math.max(1, Math.round(s.logging_steps < 1 ? s.logging_steps * trainer.totalSteps : s.logging_steps)));
    let writes: Promise<void> = Promise.resolve();
    const append = (file: string, r: StepRecord | EvalRecord) => {
      writes = writes.then(() => appendFile(file, `${JSON.stringify(r)}\n`));
    };
    let result: TrainResult;
    try {
      result = await trainer.run({
        signal: io.signal,
        onStep: (r) => append(metricsFile, r),
        onEval: (r) => {
          append(evalFile, r);
          reporter.line(`eval at step ${r.step}: eval_loss ${fmt(r.eval_loss)}`);
        },
        onProgress: (p) => reporter.update(p),
        onCheckpoint: (step) => {
          if (!io.stderr.isTTY) reporter.line(`saved ${join(outputDir, checkpointName(step))}`);
        },
      });
    } finally {
      reporter.clear();
      await writes;
    }
    const last = result.metrics[result.metrics.length - 1];
    const skipped = result.skippedSteps ? ` (${result.skippedSteps} skipped: loss or gradient not finite)` : '';
    if (result.status === 'stopped') {
      io.stderr.write(
        `graft: training interrupted after step ${result.globalStep} of ${result.totalSteps}` +
          `${result.checkpoints.length ? `; checkpoint saved in ${join(outputDir, checkpointName(result.globalStep))}; continue with --resume_from_checkpoint true` : ''}\n`,
      );
      return EXIT_INTERRUPTED;
    }
    const written = await exportResult(trainer, lm, resolved.source, s, resolved.repo ?? s.model_name_or_path, outputDir);
    if (s.finetuning_type === 'adapter') {
      io.stderr.write('graft train: note: no LLaMA-Factory job (train.yaml) is written: LLaMA-Factory has no bottleneck adapters\n');
    } else if (s.finetuning_type === 'prompt') {
      io.stderr.write('graft train: note: no LLaMA-Factory job (train.yaml) is written: LLaMA-Factory has no prompt tuning; PEFT loads the adapter (PeftModel.from_pretrained)\n');
    } else {
      // LLaMA-Factory runs the job from output_dir: local folders are written as absolute paths.
      const lfSettings: TrainSettings = { ...s, model_name_or_path: resolved.repo ?? resolved.dir };
      if (adapterSource?.repo !== undefined) lfSettings.adapter_name_or_path = adapterSource.repo; // LLaMA-Factory takes no @revision
      else if (adapterSource) lfSettings.adapter_name_or_path = adapterSource.dir;
      const datasetName = basename(fileName, extname(fileName));
      const job =
        records && parsed
          ? exportLlamaFactoryJob({
              settings: lfSettings,
              datasetName,
              records,
              format: parsed.format === null || parsed.format === 'mixed' ? 'sharegpt' : (parsed.format as DatasetFormat),
            })
          : exportLlamaFactoryJob({ settings: lfSettings, datasetName, pairs: pairRecords! });
      for (const w of job.warnings) io.stderr.write(`graft train: note: train.yaml: ${w}\n`);
      await writeFiles(outputDir, job.files);
      written.push(...job.files.keys());
    }
    io.stdout.write(
      `trained ${result.globalStep} steps${skipped}; final loss ${last ? fmt(last.loss) : 'n/a'}\n` +
        `wrote ${written.join(', ')}, metrics.jsonl to ${outputDir}\n`,
    );
    return 0;
  } finally {
    trainer?.dispose();
    reference?.dispose();
    lm?.dispose();
    // dispose() queues the model's release behind running work; let it run before the device goes.
    await ctx.sync().catch(() => undefined);
    ctx.destroy();
  }
}
