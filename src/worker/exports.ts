// The Export screen's files: an adapter folder (two files, or one zip), the merged or fine-tuned model (a
// Hugging Face folder in a zip), a run as a LLaMA-Factory job, and a run's training report.
import { DEFAULT_REVISION } from '../hub/client';
import { llamaFactoryJobFor } from '../job/llamafactory';
import { llamaFactoryRefusal } from '../job/method-limits';
import { mergedModelFiles } from '../job/merge';
import { weightOptionsFor } from '../job/run';
import type { WeightOptions } from '../model/params';
import { reportFiles } from '../job/report';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../model/adapter';
import { ModelError, storeSource } from '../model/source';
import { ADAPTER_FOLDER_SUFFIX, mergeRefusal } from './adapter-kinds';
import { fileStem, zipFolder } from './files';
import { adapterSource, type Library } from './library';
import type { ExportFile, TunedRef } from './protocol';
import { runSettings, type Runs } from './runs';
import type { Workbench } from './workbench';
import { adapterKindOf } from './workbench-db';

export class Exports {
  constructor(
    private readonly wb: Workbench,
    private readonly library: Library,
    private readonly runs: Runs,
  ) {}

  /** The adapter folder (PEFT LoRA, PEFT PROMPT_TUNING or Graft's bottleneck adapter): its two files, or one zip. */
  async adapter(id: string, as: 'files' | 'zip'): Promise<ExportFile[]> {
    const row = await this.library.adapterRow(id);
    if (!row) throw new ModelError('bad-options', 'That adapter is no longer on this device.');
    if (as === 'files') {
      return [
        { name: ADAPTER_CONFIG, bytes: row.config, mime: 'application/json' },
        { name: ADAPTER_WEIGHTS, bytes: row.weights, mime: 'application/octet-stream' },
      ];
    }
    const files = new Map([[ADAPTER_CONFIG, row.config], [ADAPTER_WEIGHTS, row.weights]]);
    return [zipFolder(`${fileStem(row.label)}-${ADAPTER_FOLDER_SUFFIX[adapterKindOf(row)]}`, files)];
  }

  /** The fine-tuned model as a Hugging Face folder in a zip (LoRA merged into the base weights). */
  async mergedModel(ref: TunedRef): Promise<ExportFile> {
    let files: Map<string, Uint8Array>;
    let label: string;
    /** What the zip holds: a merged model, or a reward model (a stage rm run's sequence-classification folder). */
    let kind = 'merged';
    if (ref.kind === 'model') {
      const row = await this.library.tunedRow(ref.repo);
      const model = await this.wb.tunedModels.getModel(ref.repo, DEFAULT_REVISION);
      if (!row || !model) throw new ModelError('bad-options', 'That fine-tuned model is no longer on this device.');
      label = row.label;
      if (row.reward) kind = 'reward-model';
      files = new Map();
      for (const f of model.files) files.set(f.path, await this.wb.tunedModels.readFile(ref.repo, DEFAULT_REVISION, f.path));
    } else {
      const row = await this.library.adapterRow(ref.id);
      if (!row) throw new ModelError('bad-options', 'That adapter is no longer on this device.');
      const refusal = mergeRefusal(adapterKindOf(row));
      if (refusal) throw new ModelError('bad-options', refusal);
      label = row.label;
      // An adapter trained on a quantized base (QLoRA) merges into the weights it trained against.
      const run = row.runId ? await this.runs.get(row.runId) : undefined;
      let quantize: WeightOptions['quantize'];
      try {
        quantize = run ? weightOptionsFor(runSettings(run).settings).quantize : undefined;
      } catch {
        quantize = undefined; // settings that no longer parse: the plain merge
      }
      files = await mergedModelFiles(storeSource(this.wb.store(row.baseStore), row.baseRepo, row.baseRevision), adapterSource(row), quantize ? { quantize } : {});
    }
    return zipFolder(`${fileStem(label)}-${kind}`, files);
  }

  /** The run as a LLaMA-Factory job: train.yaml, dataset_info.json and the data, in a zip. */
  async llamaFactoryJob(runId: string): Promise<ExportFile> {
    const run = await this.runs.getOrThrow(runId);
    const refusal = llamaFactoryRefusal(run.finetuningType);
    if (refusal) throw new ModelError('bad-options', refusal);
    const { settings } = runSettings(run);
    const pairs = settings.stage === 'dpo' || settings.stage === 'rm';
    const data = await this.runs.records(run, pairs).catch(() => {
      throw new ModelError(
        'bad-options',
        pairs
          ? `The preference pairs of ${run.datasetName} are no longer on this device; open them again to export the job.`
          : `The dataset ${run.datasetName} is no longer on this device; open it again on the Data screen to export the job.`,
      );
    });
    const job = llamaFactoryJobFor(settings, run.datasetName, data)!;
    return zipFolder(`${fileStem(run.label)}-llamafactory`, job.files);
  }

  /** metrics.json (+ eval), the job YAML, and the loss chart (a PNG the page drew), in a zip. */
  async trainingReport(runId: string, chartPng?: Uint8Array): Promise<ExportFile> {
    const run = await this.runs.getOrThrow(runId);
    let settings;
    try {
      settings = runSettings(run).settings;
    } catch {
      // settings that no longer parse: the report keeps them in metrics.json
    }
    const files = reportFiles({
      label: run.label,
      model: run.repo,
      revision: run.revision,
      dataset: run.datasetName,
      finetuningType: run.finetuningType,
      status: run.status,
      step: run.step,
      totalSteps: run.totalSteps,
      createdAt: run.createdAt,
      input: run.input,
      metrics: run.metrics,
      evalMetrics: run.evalMetrics,
      ...(settings ? { settings } : {}),
      ...(chartPng ? { chartPng } : {}),
    });
    return zipFolder(`${fileStem(run.label)}-report`, files);
  }
}
