// A job's records as the trainer takes them: conversations encoded with the model's tokenizer and chat template
// (stage sft), or preference pairs (dpo, rm); the first max_samples records, split into train and val.
import { prepareSftData } from '../data/encode';
import { preparePreferenceData } from '../data/preference';
import type { DatasetProblem } from '../data/types';
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
}

/** The first max_samples records of the job's data. */
export function limitRecords<T>(records: readonly T[], s: Pick<TrainSettings, 'max_samples'>): readonly T[] {
  return s.max_samples !== undefined ? records.slice(0, s.max_samples) : records;
}

export function encodeJobData(data: JobData, datasetName: string, lm: LoadedModel, s: TrainSettings): EncodedJobData {
  const notes: string[] = [];
  if (data.kind === 'pairs') {
    const pref = preparePreferenceData(limitRecords(data.records, s), lm.tokenizer, lm.template, { cutoffLen: s.cutoff_len, valSize: s.val_size, seed: s.seed, shuffle: false });
    if (pref.stats.truncatedPairs > 0) notes.push(`${pref.stats.truncatedPairs} pair${pref.stats.truncatedPairs === 1 ? ' has its' : 's have an'} answer cut at cutoff_len ${s.cutoff_len}`);
    if (pref.train.length === 0) throw emptyAfterEncoding(datasetName, 'preference pair', pref.problems);
    return { train: pref.train, val: pref.val, problems: pref.problems, notes };
  }
  const sft = prepareSftData(limitRecords(data.records, s), lm.tokenizer, lm.template, {
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
  return { train: sft.train, val: sft.val, problems: sft.problems, notes };
}

function emptyAfterEncoding(datasetName: string, what: string, problems: readonly DatasetProblem[]): JobError {
  const why = problems[0]?.reason;
  return new JobError('empty-dataset', `No ${what} of ${datasetName} could be encoded for training${why ? ` (${why})` : ''}. Fix the records, or raise cutoff_len.`);
}
