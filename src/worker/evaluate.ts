// The Evaluate screen's work (LlamaBoard's "Evaluate & Predict"): the base model and, when one is picked, a result
// of this device (an adapter beside the base, or a fine-tuned model) answer a held-out set greedily through the job
// layer's predict (src/job/predict.ts, what `graft train --do_predict` runs), scored with LLaMA-Factory's BLEU-4 and
// ROUGE (src/eval/metrics.ts), and written as the files the command line writes (predictionFiles). The held-out set
// is a run's own val_size split, a stored dataset's split under the Method screen's settings, or pasted pairs.
// One evaluation at a time, queued behind the other GPU work; stop() ends it after the answer in progress.
import type { Conversation } from '../data/types';
import type { Segmenter } from '../eval/metrics';
import { DEFAULT_REVISION } from '../hub/client';
import { encodeJobData } from '../job/data';
import { JobError } from '../job/errors';
import { predict, predictionFiles, type PredictOutcome, type PredictSettings } from '../job/predict';
import type { JobData } from '../job/types';
import type { LoadedModel } from '../model/load';
import { ModelError } from '../model/source';
import { parseSettingsWithNotes, type TrainSettings } from '../train/settings';
import { datasets } from './datasets';
import { adapterSource, type Library } from './library';
import type { EvaluateEvent, EvaluateExample, EvaluateRequest, EvaluateResult, EvaluateSide, ExportFile } from './protocol';
import { runSettings, type Runs } from './runs';
import type { Workbench } from './workbench';

const MIME: Record<string, string> = { 'generated_predictions.jsonl': 'application/jsonl', 'predict_results.json': 'application/json' };

/** The files `graft train --do_predict` writes for these answers, as the page downloads them. */
export function evaluateFiles(outcome: Pick<PredictOutcome, 'predictions' | 'metrics'>): ExportFile[] {
  return [...predictionFiles(outcome)].map(([name, bytes]) => ({ name, bytes, mime: MIME[name] ?? 'application/octet-stream' }));
}

/** Pasted {prompt, answer} pairs as conversations: one user turn, one assistant turn. */
export function pairConversations(pairs: readonly { prompt: string; answer: string }[]): Conversation[] {
  return pairs.map((p, i) => {
    if (typeof p?.prompt !== 'string' || typeof p.answer !== 'string' || !p.prompt.trim()) {
      throw new ModelError('bad-options', `Pair ${i + 1} needs a "prompt" and an "answer" (text).`);
    }
    return { messages: [{ role: 'user', content: p.prompt }, { role: 'assistant', content: p.answer }], source: { index: i } };
  });
}

interface HeldOut {
  name: string;
  records: readonly Conversation[];
  settings: TrainSettings;
}

export class Evaluate {
  /** The evaluation in progress, for stop(). */
  private readonly running: { ctl?: AbortController } = {};

  constructor(
    private readonly wb: Workbench,
    private readonly library: Library,
    private readonly runs: Runs,
    private readonly segmenter: () => Promise<Segmenter>,
  ) {}

  stop(): void {
    this.running.ctl?.abort();
  }

  async evaluate(request: EvaluateRequest, onEvent?: (e: EvaluateEvent) => void): Promise<EvaluateResult> {
    return this.wb.generate('Evaluate', this.running, (signal) => this.evaluateNow(request, signal, onEvent), () => {
      if (!Number.isInteger(request.maxNewTokens) || request.maxNewTokens < 1) throw new ModelError('bad-options', `max_new_tokens must be a whole number of at least 1, not ${request.maxNewTokens}.`);
      if (request.limit !== undefined && (!Number.isInteger(request.limit) || request.limit < 1)) throw new ModelError('bad-options', `The number of records must be a whole number of at least 1, not ${request.limit}.`);
    });
  }

  private async evaluateNow(request: EvaluateRequest, signal: AbortSignal, onEvent?: (e: EvaluateEvent) => void): Promise<EvaluateResult> {
    const emit = onEvent ?? (() => undefined);
    const stopped = () => {
      if (signal.aborted) throw new JobError('stopped', 'The evaluation was stopped.');
    };
    emit({ kind: 'phase', message: 'Loading the word segmenter' });
    const segment = await this.segmenter();
    const baseStore = request.baseStore ?? 'models';
    const revision = request.baseRevision ?? DEFAULT_REVISION;
    emit({ kind: 'phase', message: `Loading ${request.baseRepo}` });
    const base = await this.wb.cachedModel(baseStore, request.baseRepo, revision);
    const held = await this.heldOut(request, base);
    const records = request.limit !== undefined ? held.records.slice(0, request.limit) : held.records;
    const s: PredictSettings = { ...pickPredict(held.settings), max_new_tokens: request.maxNewTokens, do_sample: false };
    stopped();

    emit({ kind: 'phase', message: `The base model answers ${records.length} record${records.length === 1 ? '' : 's'}` });
    const baseOut = await predict(base, records, s, { segment, adapter: null, signal, onProgress: (done, total) => emit({ kind: 'progress', side: 'base', done, total }) });
    stopped();

    let tunedOut: PredictOutcome | undefined;
    let tunedLabel = '';
    const tuned = request.tuned;
    if (tuned) {
      let lm: LoadedModel;
      let adapter: string | null = null;
      if (tuned.kind === 'adapter') {
        const row = await this.library.adapterRow(tuned.id);
        if (!row) throw new ModelError('bad-options', 'That adapter is no longer on this device.');
        tunedLabel = row.label;
        lm = base;
        if (!lm.adapters.includes(row.id)) await lm.loadAdapter(adapterSource(row), row.id);
        adapter = row.id;
      } else {
        const row = await this.library.tunedRow(tuned.repo);
        if (!row) throw new ModelError('bad-options', 'That fine-tuned model is no longer on this device.');
        if (row.reward) throw new ModelError('bad-options', `${row.label} is a reward model: it scores answers and does not write them.`);
        tunedLabel = row.label;
        emit({ kind: 'phase', message: `Loading ${row.label}` });
        lm = await this.wb.cachedModel('tuned', tuned.repo, DEFAULT_REVISION);
      }
      emit({ kind: 'phase', message: `${tunedLabel} answers ${records.length} record${records.length === 1 ? '' : 's'}` });
      tunedOut = await predict(lm, records, s, { segment, adapter, signal, onProgress: (done, total) => emit({ kind: 'progress', side: 'tuned', done, total }) });
      stopped();
    }

    const paired = tunedOut && tunedOut.predictions.length === baseOut.predictions.length ? tunedOut : undefined;
    const examples: EvaluateExample[] = baseOut.predictions.map((p, i) => ({
      prompt: p.prompt,
      reference: p.label,
      base: p.predict,
      baseScores: baseOut.scores[i]!,
      ...(paired ? { tuned: paired.predictions[i]!.predict, tunedScores: paired.scores[i]! } : {}),
    }));
    const side = (label: string, out: PredictOutcome): EvaluateSide => ({ label, metrics: out.metrics, files: evaluateFiles(out) });
    return {
      setName: held.name,
      examples,
      base: side(request.baseRepo, baseOut),
      ...(tunedOut ? { tuned: side(tunedLabel, tunedOut) } : {}),
      skipped: baseOut.skipped,
      settings: {
        max_new_tokens: s.max_new_tokens,
        cutoff_len: s.cutoff_len,
        ...(request.set.kind === 'pairs' ? {} : { val_size: held.settings.val_size, seed: held.settings.seed }),
      },
    };
  }

  /** The records to answer and the settings they are cut and split by. */
  private async heldOut(request: EvaluateRequest, lm: LoadedModel): Promise<HeldOut> {
    const set = request.set;
    if (set.kind === 'pairs') {
      const records = pairConversations(set.pairs);
      if (records.length === 0) throw new ModelError('bad-options', 'There is no pair to answer: paste at least one {"prompt", "answer"}.');
      const { settings } = parseSettingsWithNotes({ ...(request.input ?? {}), model_name_or_path: request.baseRepo, dataset: 'pasted pairs' }, 'the evaluation');
      return { name: `${records.length} pasted pair${records.length === 1 ? '' : 's'}`, records, settings };
    }
    let data: JobData;
    let datasetName: string;
    let settings: TrainSettings;
    if (set.kind === 'run') {
      const run = await this.runs.getOrThrow(set.runId);
      settings = runSettings(run).settings;
      if (settings.stage !== 'sft') throw new ModelError('bad-options', `${run.label} is a stage "${settings.stage}" run: its records are preference pairs, not prompts with answers. Pick a dataset, or paste pairs.`);
      data = await this.runs.records(run, false);
      datasetName = run.datasetName;
    } else {
      let conversations: { name: string; records: Conversation[] };
      let format: Extract<JobData, { kind: 'sft' }>['format'];
      try {
        conversations = await datasets.conversations(set.datasetId);
        format = (await datasets.summary(set.datasetId)).format;
      } catch {
        throw new JobError('no-dataset', 'That dataset is no longer on this device. Open it again on the Data screen.');
      }
      datasetName = conversations.name;
      settings = parseSettingsWithNotes({ ...(request.input ?? {}), model_name_or_path: request.baseRepo, dataset: datasetName }, 'the job').settings;
      data = { kind: 'sft', records: conversations.records, format };
    }
    if (settings.val_size === 0) {
      throw new ModelError('bad-options', `val_size is 0, so ${datasetName} has no held-out split: set val_size on the Method screen (e.g. 0.1), or paste pairs to answer.`);
    }
    // The split a run of these settings holds out: the same encoding, max_samples, task_template and seed.
    const encoded = encodeJobData(data, datasetName, lm, settings);
    const all = limitedCount(data, settings);
    return { name: `the val_size split of ${datasetName} (${encoded.valRecords.length} of ${all} records)`, records: encoded.valRecords, settings };
  }
}

function limitedCount(data: JobData, s: Pick<TrainSettings, 'max_samples'>): number {
  return s.max_samples !== undefined ? Math.min(s.max_samples, data.records.length) : data.records.length;
}

function pickPredict(s: TrainSettings): PredictSettings {
  const { cutoff_len, max_new_tokens, do_sample, temperature, top_p, top_k, repetition_penalty, seed, per_device_eval_batch_size } = s;
  return { cutoff_len, max_new_tokens, do_sample, temperature, top_p, top_k, repetition_penalty, seed, per_device_eval_batch_size };
}
