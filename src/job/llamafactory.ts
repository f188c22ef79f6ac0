// A job as LLaMA-Factory must read it (src/export/llamafactory-job.ts writes the folder), or the reason there is
// none: LLaMA-Factory has neither bottleneck adapters nor prompt tuning (./method-limits.ts says why).
import { exportLlamaFactoryJob, type LlamaFactoryJob } from '../export/llamafactory-job';
import type { TrainSettings } from '../train/settings';
import { llamaFactoryRefusal } from './method-limits';
import { jobRecords } from './data';
import type { JobData } from './types';

/** The dataset's name in dataset_info.json: the file name without its extension ("qa.jsonl.gz" → "qa"). */
export function llamaFactoryDatasetName(datasetName: string): string {
  const known = datasetName.replace(/\.(jsonl?|parquet)(\.gz)?$/i, '');
  return known !== datasetName ? known : datasetName.replace(/(.)\.[^./\\]*$/, '$1');
}

/**
 * The LLaMA-Factory job of a run: `settings` as LLaMA-Factory must read them (paths it can open), the records
 * Graft trained on (the first max_samples, multi-task prompts rendered with task_template). `chatTemplate`: which
 * template Graft rendered with (the model's own, or its ChatML default for a model without one). Undefined for
 * methods LLaMA-Factory lacks (llamaFactoryRefusal).
 */
export function llamaFactoryJobFor(settings: TrainSettings, datasetName: string, raw: JobData, chatTemplate: 'model' | 'graft-default' = 'model'): LlamaFactoryJob | undefined {
  if (llamaFactoryRefusal(settings.finetuning_type)) return undefined;
  const name = llamaFactoryDatasetName(datasetName);
  const { data } = jobRecords(raw, settings);
  if (data.kind === 'pairs') return exportLlamaFactoryJob({ settings, datasetName: name, pairs: data.records, chatTemplate });
  const format = data.format === null || data.format === 'mixed' ? 'sharegpt' : data.format;
  return exportLlamaFactoryJob({ settings, datasetName: name, records: data.records, format, chatTemplate });
}
