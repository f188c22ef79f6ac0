// A job's records as the trainer takes them: conversations encoded with the model's tokenizer and chat template
// (stage sft), or preference pairs (dpo, rm); the first max_samples records, split into train and val.
import { prepareSftData } from '../data/encode';
import { preparePreferenceData } from '../data/preference';
import { applyTaskTemplate } from '../data/tasks';
import type { Conversation, DatasetProblem } from '../data/types';
import type { LoadedModel } from '../model/load';
import type { TrainSettings } from '../train/settings';
import type { TrainExample, TrainPair } from '../train/trainer';
import { JobError } from './errors';
import type { JobData } from './types';

export interface EncodedJobData {
  train: readonly TrainExample[] | readonly TrainPair[];
  val: readonly TrainExample[] | readonly TrainPair[];
  /** Records that could not be encoded (left out), with their line or index. */
  problems: DatasetProblem[];
  /** Remarks for the person (answers cut by cutoff_len). */
  notes: string[];
  /** Stage sft: the conversations of the validation split (what do_predict answers without eval_dataset). */
  valRecords: readonly Conversation[];
}

/** The first max_samples records of the job's data. */
export function limitRecords<T>(records: readonly T[], s: Pick<TrainSettings, 'max_samples'>): readonly T[] {
  return s.max_samples !== undefined ? records.slice(0, s.max_samples) : records;
}

/**
 * The records a job trains on, as the model sees them: the first max_samples, input-only multi-task records with
 * their task in the prompt (task_template), and the warning for prompts two tasks share. The LLaMA-Factory export
 * writes these records, so the same job trains the same prompts there.
 */
export function jobRecords(data: JobData, s: Pick<TrainSettings, 'max_samples' | 'task_template'>): { data: JobData; warnings: string[]; rendered: number } {
  if (data.kind === 'pairs') return { data: { ...data, records: limitRecords(data.records, s) }, warnings: [], rendered: 0 };
  const t = applyTaskTemplate(limitRecords(data.records, s), s.task_template);
  return { data: { ...data, records: t.records }, warnings: t.warnings, rendered: t.rendered };
}

export function encodeJobData(raw: JobData, datasetName: string, lm: LoadedModel, s: TrainSettings): EncodedJobData {
  const { data, warnings, rendered } = jobRecords(raw, s);
  const notes: string[] = [...warnings];
  if (rendered > 0) notes.push(`${rendered} record${rendered === 1 ? ' has' : 's have'} a task and no instruction: the prompt is task_template "${s.task_template}" (e.g. "${s.task_template.replaceAll('{input}', '…')}")`);
  if (data.kind === 'pairs') {
    const pref = preparePreferenceData(data.records, lm.tokenizer, lm.template, { cutoffLen: s.cutoff_len, valSize: s.val_size, seed: s.seed, shuffle: false });
    if (pref.stats.truncatedPairs > 0) notes.push(`${pref.stats.truncatedPairs} pair${pref.stats.truncatedPairs === 1 ? ' has its' : 's have an'} answer cut at cutoff_len ${s.cutoff_len}`);
    if (pref.train.length === 0) throw emptyAfterEncoding(datasetName, 'preference pair', pref.problems);
    return { train: pref.train, val: pref.val, problems: pref.problems, notes, valRecords: [] };
  }
  const sft = prepareSftData(data.records, lm.tokenizer, lm.template, {
    cutoffLen: s.cutoff_len,
    trainOnPrompt: s.train_on_prompt,
    maskHistory: s.mask_history,
    valSize: s.val_size,
    seed: s.seed,
    shuffle: false,
    packing: s.packing,
  });
  const n = sft.stats.examplesWithoutTargets;
  if (n > 0) notes.push(`${n} example${n === 1 ? ' has' : 's have'} no answer token left within cutoff_len ${s.cutoff_len}; ${n === 1 ? 'it adds' : 'they add'} nothing to the loss`);
  if (sft.train.length === 0) throw emptyAfterEncoding(datasetName, 'record', sft.problems);
  return { train: sft.train, val: sft.val, problems: sft.problems, notes, valRecords: sft.valRecords };
}

function emptyAfterEncoding(datasetName: string, what: string, problems: readonly DatasetProblem[]): JobError {
  const why = problems[0]?.reason;
  return new JobError('empty-dataset', `No ${what} of ${datasetName} could be encoded for training${why ? ` (${why})` : ''}. Fix the records, or raise cutoff_len.`);
}
