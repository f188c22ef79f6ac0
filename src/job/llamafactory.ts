// A job as LLaMA-Factory must read it (src/export/llamafactory-job.ts writes the folder), or the reason there is
// none: LLaMA-Factory has neither bottleneck adapters nor prompt tuning (./method-limits.ts says why).
import { exportLlamaFactoryJob, type LlamaFactoryJob } from '../export/llamafactory-job';
import type { TrainSettings } from '../train/settings';
import { llamaFactoryRefusal } from './method-limits';
import { limitRecords } from './data';
import type { JobData } from './types';

/** The dataset's name in dataset_info.json: the file name without its extension ("qa.jsonl.gz" → "qa"). */
export function llamaFactoryDatasetName(datasetName: string): string {
  const known = datasetName.replace(/\.(jsonl?|parquet)(\.gz)?$/i, '');
  return known !== datasetName ? known : datasetName.replace(/(.)\.[^./\\]*$/, '$1');
}

/**
 * The LLaMA-Factory job of a run: `settings` as LLaMA-Factory must read them (paths it can open), the records
 * Graft trained on (the first max_samples). Undefined for methods LLaMA-Factory lacks (llamaFactoryRefusal).
 */
export function llamaFactoryJobFor(settings: TrainSettings, datasetName: string, data: JobData): LlamaFactoryJob | undefined {
  if (llamaFactoryRefusal(settings.finetuning_type)) return undefined;
  const name = llamaFactoryDatasetName(datasetName);
  if (data.kind === 'pairs') return exportLlamaFactoryJob({ settings, datasetName: name, pairs: limitRecords(data.records, settings) });
  const format = data.format === null || data.format === 'mixed' ? 'sharegpt' : data.format;
  return exportLlamaFactoryJob({ settings, datasetName: name, records: limitRecords(data.records, settings), format });
}
