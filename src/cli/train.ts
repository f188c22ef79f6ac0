// graft train: a LLaMA-Factory job file and/or the same settings as flags (flags win) → a JobSpec for runJob, and
// the result written into output_dir. Usage, stages and the files it writes: docs/cli.md ("graft train").
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Pair } from 'yaml';
import { describeSource, parseDatasetText, type DatasetFormat, type DatasetProblem, type ParsedDataset } from '../data';
import { parsePreferenceText } from '../data/preference';
import { runJob } from '../job/run';
import { jiebaCut } from '../eval/jieba-node';
import { mapsRecords, recordMapper } from '../data/dataset-info';
import type { Conversation } from '../data/types';
import type { JobData, JobEvent } from '../job/types';
import { UnsupportedModelError } from '../model/config';
import type { StepRecord } from '../train/metrics';
import { describeFileFailure, isSystemError } from '../train/file-error';
import { describeModel } from '../model/info';
import { decodeCheckpoint } from '../train/checkpoint';
import { checkpointName, parseCheckpointName } from '../train/checkpoint-store';
import { NodeCheckpointStore } from '../train/checkpoint-store-node';
import { datasetNames, parseJobYaml, parseSettingsWithNotes, settingsWarnings, type TrainSettings } from '../train/settings';
import { UsageError, type Parsed } from './args';
import { datasetLabel, readHubDataset, readHubDatasetFile, resolveDatasetArg, type DatasetRef } from './dataset-arg';
import { FolderSink } from './folder-sink';
import { openGpu } from './gpu';
import { resolveAdapterArg, resolveModelArg, type CliEnv } from './model-arg';
import { fmt, TrainReporter } from './train-reporter';
import { CliError, EXIT_INTERRUPTED } from './report';

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
    if (ref.info?.ranking) throw new CliError('bad-dataset', `${ref.name} is a ranking dataset in dataset_info.json (ranking: true): train it with --stage dpo or --stage rm.`);
    const mapped = ref.info && mapsRecords(ref.info) ? { mapRecord: recordMapper(ref.info) } : {};
    const p = ref.kind === 'file' ? parseDatasetText(new Uint8Array(await readFile(ref.path)), label, mapped) : await readHubDataset(ref, io);
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
    notes: parts.flatMap((p) => p.notes ?? []),
  };
}

/**
 * The job's records: SFT conversations of one dataset or several (a multi-task run), or the preference pairs
 * of one file (stage dpo, rm). Records that cannot be used are reported with their line and left out.
 */
async function readJobData(refs: readonly DatasetRef[], fileName: string, pairs: boolean, io: CliEnv): Promise<JobData> {
  let records: readonly unknown[];
  let problems: readonly DatasetProblem[];
  let data: JobData;
  if (!pairs) {
    const parsed = await readSftDatasets(refs, io);
    ({ records, problems } = parsed);
    data = { kind: 'sft', records: parsed.records, format: parsed.format };
    for (const n of parsed.notes ?? []) io.stderr.write(`graft train: note: ${n}\n`);
  } else {
    const ref = refs[0]!;
    const bytes = ref.kind === 'file' ? new Uint8Array(await readFile(ref.path)) : (await readHubDatasetFile(ref, io)).bytes;
    const parsed = parsePreferenceText(bytes, fileName, ref.info && mapsRecords(ref.info) ? { mapRecord: recordMapper(ref.info) } : {});
    ({ records, problems } = parsed);
    reportProblems(io, fileName, problems, 'skipped');
    for (const w of parsed.warnings) io.stderr.write(`graft train: note: ${fileName} ${describeSource(w)}: ${w.reason} (kept)\n`);
    data = { kind: 'pairs', records: parsed.records };
    for (const n of parsed.notes) io.stderr.write(`graft train: note: ${n}\n`);
  }
  const readCount = records.length + problems.filter((p) => p.line !== undefined || p.index !== undefined).length;
  if (problems.length) io.stderr.write(`graft train: ${problems.length} of ${readCount} records of ${fileName} cannot be used and were skipped\n`);
  return data;
}

// ---- output_dir and resuming ---------------------------------------------------------------------------------

const GRAFT_OUTPUTS = ['metrics.jsonl', 'eval_metrics.jsonl'];

/** A file an interrupted run of Graft leaves in output_dir: its metrics, a half-written checkpoint or result file. */
const isLeftover = (name: string) => GRAFT_OUTPUTS.includes(name) || name.endsWith('.tmp') || name.endsWith('.graft-tmp') || name.startsWith('.graft-write-check-');

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
  // What a run stopped before its first checkpoint leaves (a crash, a kill): its metrics and half-written files
  // only. Nothing to resume and nothing of anyone else's: start over.
  const leftovers = entries.filter((e) => isLeftover(e));
  if (leftovers.length === entries.length) {
    for (const name of leftovers) await rm(join(dir, name), { recursive: true, force: true });
    if (leftovers.some((e) => GRAFT_OUTPUTS.includes(e))) io.stderr.write(`graft train: note: the earlier run in ${dir} left no complete checkpoint; starting over\n`);
    return {};
  }
  throw new CliError('output-exists', `output_dir ${dir} already exists and is not empty; set overwrite_output_dir: true, or choose another output_dir.`);
}

/**
 * output_dir must be writable before anything slow starts (a download, loading the model): made if missing,
 * and a probe file written and removed. A read-only or forbidden folder is one sentence naming it.
 */
async function checkWritable(dir: string): Promise<void> {
  const probe = join(dir, `.graft-write-check-${process.pid}`);
  try {
    await mkdir(dir, { recursive: true }).catch(async (e: unknown) => {
      throw isSystemError(e) && e.code === 'ENOENT' ? await mkdirFailure(dir, e) : e;
    });
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (e) {
    if (!isSystemError(e)) throw e;
    throw new CliError('output-not-writable', `output_dir ${dir} cannot be written: ${describeFileFailure(e, e.path ?? dir)}; choose another output_dir (or free space or change the folder's permissions) before training.`);
  }
}

/**
 * The real reason a recursive mkdir failed: Node reports ENOENT for a folder that cannot be made on a read-only
 * file system, so the first missing folder is made on its own to get EROFS or EACCES.
 */
async function mkdirFailure(dir: string, fallback: unknown): Promise<unknown> {
  let missing = dir;
  for (let parent = dirname(missing); parent !== missing; missing = parent, parent = dirname(parent)) {
    try {
      await stat(parent);
      break;
    } catch {
      // keep going up
    }
  }
  try {
    await mkdir(missing);
    await rm(missing, { recursive: true, force: true });
    return fallback;
  } catch (e) {
    return e;
  }
}

async function readCheckpointFolder(folder: string) {
  const step = parseCheckpointName(basename(folder));
  if (step === undefined) throw new CliError('no-checkpoint', `resume_from_checkpoint: ${folder} is not a checkpoint-<step> folder.`);
  const store = new NodeCheckpointStore(dirname(folder));
  return decodeCheckpoint(await store.read(step), folder);
}

/**
 * Why steps were skipped, in words: steps whose examples had no answer token within cutoff_len had nothing to
 * learn; steps with a NaN/Inf loss or gradient were not applied. '' when none was.
 */
export function skippedSummary(metrics: readonly StepRecord[], cutoffLen: number): string {
  const noTarget = metrics.filter((r) => r.skipped && r.skip_reason === 'no_target').length;
  const notFinite = metrics.filter((r) => r.skipped && r.skip_reason !== 'no_target').length;
  const parts: string[] = [];
  if (noTarget) parts.push(`${noTarget} had no answer token within cutoff_len ${cutoffLen}, so nothing to learn`);
  if (notFinite) parts.push(`${notFinite} skipped: loss or gradient not finite`);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

// ---- the command -----------------------------------------------------------------------------------------------

export async function runTrain(args: Parsed, io: CliEnv): Promise<number> {
  const { settings: s, notes, jobDir } = await readSettings(args);
  for (const n of [...notes, ...settingsWarnings(s)]) io.stderr.write(`graft train: note: ${n}\n`);
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
  await checkWritable(outputDir);
  const resume = resumeFrom !== undefined ? await readCheckpointFolder(resumeFrom) : undefined;

  const resolved = await resolveModelArg(s.model_name_or_path, io, { revision: s.model_revision });
  // The adapter to continue: a folder, or a hub adapter downloaded into the cache, before the GPU is opened.
  const adapterSource = s.adapter_name_or_path !== undefined ? await resolveAdapterArg(s.adapter_name_or_path, io, 'adapter_name_or_path') : undefined;
  const info = await describeModel(resolved.source);
  if (!info.supported) throw new UnsupportedModelError(info.unsupportedReason ?? `${info.architecture} is not supported yet.`);

  // The dataset: every record that cannot be used is named with its line and left out.
  const fileName = datasetRefs.length > 1 ? datasetTaskNames(datasetList).join('+') : basename(datasetLabel(firstRef));
  const data = await readJobData(datasetRefs, fileName, pairs, io);
  // do_predict on eval_dataset: its records are read as the training dataset's are
  const predictData = s.do_predict && s.eval_dataset !== undefined && !pairs ? await readJobData([await resolveDatasetArg(s.eval_dataset, s.dataset_dir, jobDir, io)], s.eval_dataset, false, io) : undefined;
  if (Math.min(data.records.length, s.max_samples ?? Infinity) === 0) {
    throw new CliError('empty-dataset', `${fileName} has no ${pairs ? 'preference pair' : 'record'} Graft can train on${pairs ? ' (stage dpo and rm read {prompt, chosen, rejected} records)' : ''}.`);
  }

  // LLaMA-Factory runs the job from output_dir: local folders are written as absolute paths.
  const lfSettings: TrainSettings = { ...s, model_name_or_path: resolved.repo ?? resolved.dir };
  if (adapterSource?.repo !== undefined) lfSettings.adapter_name_or_path = adapterSource.repo; // LLaMA-Factory takes no @revision
  else if (adapterSource) lfSettings.adapter_name_or_path = adapterSource.dir;

  const sink = new FolderSink(outputDir);
  let reporter: TrainReporter | undefined;
  const onEvent = (e: JobEvent): void => {
    switch (e.kind) {
      case 'note':
        io.stderr.write(`graft train: note: ${e.text}\n`);
        return;
      case 'warning':
        reporter?.line(`graft train: warning: ${e.text}`);
        if (!reporter) io.stderr.write(`graft train: warning: ${e.text}\n`);
        return;
      case 'encode-problems':
        reportProblems(io, fileName, e.problems, 'skipped');
        io.stderr.write(`graft train: ${e.problems.length} ${e.what} of ${fileName} could not be encoded and were skipped\n`);
        return;
      case 'started': {
        if (e.tasks) {
          io.stderr.write(`graft train: multi-task: ${e.tasks.map((t) => `${t.name} (${t.examples})`).join(', ')}; task_weighting ${s.task_weighting}, task_sampling ${s.task_sampling}\n`);
        }
        const what = pairs ? 'pairs' : 'sequences';
        const stage = s.stage === 'dpo' ? `dpo (${s.pref_loss}, beta ${s.pref_beta}) with ` : s.stage === 'rm' ? 'reward model with ' : '';
        io.stderr.write(
          `graft train: ${stage}${s.finetuning_type} on ${info.architecture} (${e.trainableParameters.toLocaleString('en-US')} trainable parameters), ` +
            `${e.sequences} training ${what}${e.valSequences ? `, ${e.valSequences} for evaluation` : ''}, ${e.totalSteps} steps` +
            `${e.resumedFrom !== undefined ? `, resuming after step ${e.resumedFrom}` : ''}\n`,
        );
        reporter = new TrainReporter(io.stderr, Math.max(1, Math.round(s.logging_steps < 1 ? s.logging_steps * e.totalSteps : s.logging_steps)));
        return;
      }
      case 'progress':
        reporter?.update(e.progress);
        return;
      case 'eval':
        reporter?.line(`eval at step ${e.record.step}: eval_loss ${fmt(e.record.eval_loss)}`);
        return;
      case 'checkpoint':
        if (!io.stderr.isTTY) reporter?.line(`saved ${join(outputDir, checkpointName(e.step))}`);
        return;
    }
  };

  const { ctx } = await (io.openGpu ?? openGpu)();
  try {
    let outcome;
    try {
      outcome = await runJob(
        ctx,
        {
          settings: s,
          datasetName: fileName,
          data,
          model: { source: resolved.source, id: resolved.repo ?? s.model_name_or_path },
          ...(adapterSource ? { startingAdapter: adapterSource } : {}),
          checkpoints: store,
          ...(resume ? { resume } : {}),
          sink,
          llamaFactory: { settings: lfSettings },
          ...(s.do_predict ? { predict: { segment: jiebaCut, ...(predictData ? { records: predictData.records as Conversation[] } : {}) } } : {}),
        },
        { onEvent, signal: io.signal },
      );
    } finally {
      reporter?.clear();
    }
    const result = outcome.train;
    if (outcome.status === 'stopped') {
      io.stderr.write(
        `graft: training interrupted after step ${result.globalStep} of ${result.totalSteps}` +
          `${result.checkpoints.length ? `; checkpoint saved in ${join(outputDir, checkpointName(result.globalStep))}; continue with --resume_from_checkpoint true` : ''}\n`,
      );
      return EXIT_INTERRUPTED;
    }
    if (s.finetuning_type === 'adapter') {
      io.stderr.write('graft train: note: no LLaMA-Factory job (train.yaml) is written: LLaMA-Factory has no bottleneck adapters\n');
    } else if (s.finetuning_type === 'prompt') {
      io.stderr.write('graft train: note: no LLaMA-Factory job (train.yaml) is written: LLaMA-Factory has no prompt tuning; PEFT loads the adapter (PeftModel.from_pretrained)\n');
    } else {
      for (const w of outcome.result?.llamaFactory?.warnings ?? []) io.stderr.write(`graft train: note: train.yaml: ${w}\n`);
    }
    const last = result.metrics[result.metrics.length - 1];
    const skipped = skippedSummary(result.metrics, s.cutoff_len);
    io.stdout.write(
      `trained ${result.globalStep} steps${skipped}; final loss ${last ? fmt(last.loss) : 'n/a'}\n` +
        `wrote ${sink.written.join(', ')}, metrics.jsonl to ${outputDir}\n`,
    );
    return 0;
  } finally {
    // dispose() queues the model's release behind running work; let it run before the device goes.
    await ctx.sync().catch(() => undefined);
    ctx.destroy();
  }
}
