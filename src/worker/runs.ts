// The app's training runs: a run record in IndexedDB for each Train-screen start, trained through the job layer
// (src/job/run.ts, as `graft train` is) with its checkpoints in IndexedDB, so that a closed tab resumes; pause,
// resume and stop; the run that did not finish, to offer continuing it after a reload.
//
// Failures do not throw across comlink: the run resolves with status 'failed' and a TrainErrorInfo (name, code,
// message, settings problems), which the page turns into a sentence that says what to do.
import { parsePreferenceText, type PreferenceRecord as PairRecord } from '../data/preference';
import type { Conversation } from '../data/types';
import type { GpuContext } from '../engine/context';
import { DEFAULT_REVISION } from '../hub/client';
import { JobError } from '../job/errors';
import { runJob } from '../job/run';
import type { JobData, JobEvent, JobResult, JobSink } from '../job/types';
import { ModelError, storeSource } from '../model/source';
import { decodeCheckpoint } from '../train/checkpoint';
import { checkpointName, CheckpointError, latestCheckpoint } from '../train/checkpoint-store';
import { IdbCheckpointStore } from '../train/checkpoint-store-idb';
import type { EvalRecord, StepRecord } from '../train/metrics';
import { parseSettingsWithNotes, SettingsError, type TrainSettings } from '../train/settings';
import { TrainControl } from '../train/trainer';
import { KIND_NAMES, methodOf } from './adapter-kinds';
import { DEFAULT_SAVE_TOTAL_LIMIT, DEMO_DATASET, DEMO_DATASET_FILE, PREFERENCES_DATASET } from './constants';
import { datasets } from './datasets';
import type { Demo } from './demo';
import { day, fileStem, newId, uniqueLabel } from './files';
import { adapterSource, type Library } from './library';
import type { Preferences } from './preferences';
import type { RunRecord, RunStatus, TrainErrorInfo, TrainEvent, TrainOutcome, TrainStartRequest, TunedEntry } from './protocol';
import type { Workbench } from './workbench';
import { adapterKindOf } from './workbench-db';

/** A failure as the page gets it. */
export function trainErrorInfo(e: unknown): TrainErrorInfo {
  if (e instanceof SettingsError) return { name: e.name, code: e.code, message: e.message, problems: e.problems };
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { name: e.name, code: typeof code === 'string' ? code : 'error', message: e.message };
  }
  return { name: 'Error', code: 'error', message: String(e) };
}

/** The job's settings of a run: what the page gave, with the model, dataset and revision the run names. */
export function runSettings(run: RunRecord, extra: Record<string, unknown> = {}): { settings: TrainSettings; notes: string[] } {
  const input: Record<string, unknown> = { ...run.input, model_name_or_path: run.repo, dataset: run.datasetName, ...extra };
  if (run.revision !== DEFAULT_REVISION) input.model_revision = run.revision;
  return parseSettingsWithNotes(input, 'the job');
}

/** Keeps a run's metrics on its record; the record is written at checkpoints and at the end. */
class RunSink implements JobSink {
  saved: TunedEntry | undefined;

  constructor(
    private readonly run: RunRecord,
    private readonly runs: Runs,
    private readonly library: Library,
  ) {}

  async begin(start: { history: { metrics: StepRecord[]; evalMetrics: EvalRecord[] }; step: number; totalSteps: number }): Promise<void> {
    const run = this.run;
    run.totalSteps = start.totalSteps;
    run.step = start.step;
    run.status = 'running';
    delete run.error;
    run.metrics = [...start.history.metrics];
    run.evalMetrics = [...start.history.evalMetrics];
    await this.runs.put(run);
  }

  step(record: StepRecord): void {
    this.run.metrics.push(record);
    this.run.step = record.step;
  }

  evaluation(record: EvalRecord): void {
    this.run.evalMetrics.push(record);
  }

  async flush(): Promise<void> {}

  async save(result: JobResult): Promise<void> {
    this.saved = await this.library.saveRunResult(this.run, result);
  }
}

export class Runs {
  constructor(
    private readonly wb: Workbench,
    private readonly library: Library,
    private readonly preferences: Preferences,
    private readonly demo: Demo,
  ) {}

  async put(run: RunRecord): Promise<void> {
    run.updatedAt = Date.now();
    await (await this.wb.db()).put('runs', structuredClone(run));
  }

  async get(id: string): Promise<RunRecord | undefined> {
    return (await this.wb.db()).get('runs', id);
  }

  async getOrThrow(runId: string): Promise<RunRecord> {
    const run = await this.get(runId);
    if (!run) throw new ModelError('bad-options', 'That training run is no longer on this device.');
    return run;
  }

  /** A run's records: conversations (sft) or preference pairs (dpo, rm: a file of pairs, or the Chat screen's). */
  async records(run: RunRecord, pairs: boolean): Promise<JobData> {
    if (pairs && run.datasetId === PREFERENCES_DATASET) return { kind: 'pairs', records: await this.preferences.records() };
    if (!pairs && run.inlineRecords) return { kind: 'sft', records: run.inlineRecords, format: 'alpaca' };
    try {
      if (!pairs) {
        const records: Conversation[] = (await datasets.conversations(run.datasetId)).records;
        const f = (await datasets.summary(run.datasetId)).format;
        return { kind: 'sft', records, format: f };
      }
      // The Data screen reads SFT formats; its rows keep the file's records, which are read here as pairs.
      const pairRecords: PairRecord[] = parsePreferenceText(await datasets.jsonl(run.datasetId), run.datasetName).records;
      return { kind: 'pairs', records: pairRecords };
    } catch {
      throw new JobError('no-dataset', `The dataset ${run.datasetName} is no longer on this device. Open it again on the Data screen.`);
    }
  }

  async start(request: TrainStartRequest, onEvent?: (e: TrainEvent) => void): Promise<TrainOutcome> {
    this.wb.checkIdle();
    const now = Date.now();
    const input = { ...request.input };
    const repo = request.repo.trim();
    const run: RunRecord = {
      id: newId('run'),
      // Every run has its own name ("Built-in demo 2"): the Chat and Export lists and the exported files tell them apart.
      label: uniqueLabel(request.label ?? `${fileStem(repo)} ${methodOf(input)} ${day(now)}`, await this.library.takenLabels()),
      repo,
      revision: request.revision ?? DEFAULT_REVISION,
      datasetId: request.datasetId,
      datasetName: String(input.dataset ?? 'dataset'),
      input,
      finetuningType: methodOf(input),
      status: 'running',
      step: 0,
      totalSteps: 0,
      createdAt: now,
      updatedAt: now,
      metrics: [],
      evalMetrics: [],
      ...(request.startAdapterId ? { startAdapterId: request.startAdapterId } : {}),
      ...(request.modelStore === 'tuned' ? { modelStore: 'tuned' as const } : {}),
      ...(request.demo ? { demo: true } : {}),
    };
    if (request.datasetId === DEMO_DATASET) {
      run.inlineRecords = this.demo.records();
      run.datasetName = DEMO_DATASET_FILE;
    }
    return this.execute(run, false, onEvent);
  }

  async continue(runId: string, onEvent?: (e: TrainEvent) => void): Promise<TrainOutcome> {
    this.wb.checkIdle();
    const run = await this.get(runId);
    if (!run) throw new ModelError('bad-options', 'That training run is no longer on this device.');
    if (run.status === 'completed') throw new ModelError('bad-options', `The run "${run.label}" is complete: there is nothing to continue.`);
    return this.execute(run, true, onEvent);
  }

  private execute(run: RunRecord, resume: boolean, onEvent?: (e: TrainEvent) => void): Promise<TrainOutcome> {
    const control = new TrainControl();
    const emit = (e: TrainEvent) => onEvent?.(e);
    this.wb.active = { run, control, emit };
    return this.wb.queue(() => this.train(run, resume, control, emit)).finally(() => {
      if (this.wb.active?.run === run) this.wb.active = undefined;
    });
  }

  private async train(run: RunRecord, resume: boolean, control: TrainControl, emit: (e: TrainEvent) => void): Promise<TrainOutcome> {
    const store = new IdbCheckpointStore({ run: run.id });
    let gpu: GpuContext | undefined;
    try {
      emit({ kind: 'phase', phase: 'preparing', message: 'Checking the settings and the dataset' });
      const adapterRow = run.startAdapterId ? await this.library.adapterRow(run.startAdapterId) : undefined;
      if (run.startAdapterId && !adapterRow) throw new JobError('no-adapter', 'The adapter this run continues is no longer on this device. Import it again, or start without it.');
      if (adapterRow && adapterKindOf(adapterRow) === 'prompt') {
        throw new JobError('no-adapter', `Only LoRA and bottleneck adapters can be trained further; "${adapterRow.label}" is a ${KIND_NAMES.prompt}. Start without it.`);
      }
      // Checkpoints kept: the job's save_total_limit, or DEFAULT_SAVE_TOTAL_LIMIT. The job names the adapter it
      // continues as a folder (what LLaMA-Factory reads); the adapter itself comes from IndexedDB.
      const extra: Record<string, unknown> = run.input.save_total_limit === undefined ? { save_total_limit: DEFAULT_SAVE_TOTAL_LIMIT } : {};
      if (adapterRow) extra.adapter_name_or_path = `adapters/${fileStem(adapterRow.label)}`;
      const { settings, notes } = runSettings(run, extra);
      const pairs = settings.stage === 'dpo' || settings.stage === 'rm';
      const data = await this.records(run, pairs);
      if (Math.min(data.records.length, settings.max_samples ?? Infinity) === 0) {
        throw new JobError(
          'empty-dataset',
          pairs
            ? `${run.datasetName} has no preference pair to train on: stage "${settings.stage}" needs records with "prompt", "chosen" and "rejected" (mark better answers on the Chat screen, or bring a file of pairs).`
            : `${run.datasetName} has no record to train on. Fix or add records on the Data screen.`,
        );
      }
      let checkpoint;
      if (resume) {
        const latest = await latestCheckpoint(store);
        if (latest === undefined) throw new CheckpointError(`The run "${run.label}" has no checkpoint to continue from; start it again.`);
        checkpoint = decodeCheckpoint(await store.read(latest), `${store.location}/${checkpointName(latest)}`);
      }

      const ctx = await this.wb.gpu();
      gpu = ctx;
      const sink = new RunSink(run, this, this.library);
      const allNotes = [...notes];
      const onJobEvent = (e: JobEvent): void => {
        switch (e.kind) {
          case 'phase':
            emit({ kind: 'phase', phase: e.phase, ...(e.message !== undefined ? { message: e.message } : {}) });
            return;
          case 'note':
            allNotes.push(e.text);
            return;
          case 'warning':
            emit({ kind: 'phase', phase: control.paused ? 'paused' : 'training', message: `Warning: ${e.text}.` });
            return;
          case 'encode-problems':
            allNotes.push(`${e.problems.length} record${e.problems.length === 1 ? '' : 's'} could not be encoded and ${e.problems.length === 1 ? 'is' : 'are'} left out`);
            return;
          case 'started':
            emit({
              kind: 'started',
              run: structuredClone(run),
              notes: allNotes,
              trainableParameters: e.trainableParameters,
              sequences: e.sequences,
              valSequences: e.valSequences,
              history: e.history,
              ...(e.resumedFrom !== undefined ? { resumedFrom: e.resumedFrom } : {}),
            });
            return;
          case 'progress': {
            const p = e.progress;
            const gpuBytes = ctx.stats.bytesAllocated;
            if (p.phase !== 'train') emit({ kind: 'phase', phase: p.phase });
            else if (p.last && p.last.step === p.step) emit({ kind: 'step', record: p.last, progress: p, gpuBytes });
            else emit({ kind: 'progress', progress: p, gpuBytes });
            return;
          }
          case 'eval':
            emit({ kind: 'eval', record: e.record });
            emit({ kind: 'phase', phase: control.paused ? 'paused' : 'training' });
            return;
          case 'checkpoint':
            run.checkpointStep = e.step;
            run.step = e.step;
            void this.put(run).catch(() => undefined);
            emit({ kind: 'checkpoint', step: e.step });
            emit({ kind: 'phase', phase: control.paused ? 'paused' : 'training' });
            return;
        }
      };
      const outcome = await runJob(
        ctx,
        {
          settings,
          datasetName: run.datasetName,
          data,
          model: { source: storeSource(this.wb.store(run.modelStore), run.repo, run.revision), id: run.repo },
          ...(adapterRow ? { startingAdapter: adapterSource(adapterRow) } : {}),
          checkpoints: store,
          ...(checkpoint ? { resume: checkpoint } : {}),
          sink,
        },
        { onEvent: onJobEvent, control, beforeLoad: () => this.wb.freeGpuModels(), keepModel: settings.stage !== 'rm' },
      );
      run.metrics = outcome.train.metrics;
      run.evalMetrics = outcome.train.evalMetrics;
      run.step = outcome.train.globalStep;
      if (outcome.status === 'stopped') {
        run.status = 'stopped';
        const latest = await latestCheckpoint(store);
        if (latest !== undefined) run.checkpointStep = latest;
        await this.put(run);
        return { status: 'stopped', run: structuredClone(run) };
      }
      const tuned = sink.saved!;
      run.result = tuned.ref;
      run.status = 'completed';
      delete run.checkpointStep;
      await this.put(run);
      // The run is complete: its checkpoints are not needed to continue it.
      for (const step of await store.list()) await store.delete(step).catch(() => undefined);
      // Keep the model on the GPU for comparing: an adapter's base is unchanged; full/freeze's is the tuned model.
      // A reward model does not generate: it was freed (scoring loads it when asked).
      const lm = outcome.model;
      if (lm) {
        try {
          if (tuned.ref.kind === 'adapter') {
            const row = (await this.library.adapterRow(tuned.ref.id))!;
            await lm.loadAdapter(adapterSource(row), row.id);
            this.wb.remember(run.modelStore ?? 'models', run.repo, run.revision, lm, (await this.wb.store(run.modelStore).getModel(run.repo, run.revision))?.totalBytes ?? 0);
          } else {
            this.wb.remember('tuned', tuned.ref.repo, DEFAULT_REVISION, lm, tuned.bytes);
          }
        } catch (e) {
          lm.dispose();
          throw e;
        }
      }
      return { status: 'completed', run: structuredClone(run), tuned };
    } catch (e) {
      const error = trainErrorInfo(e);
      run.status = 'failed';
      run.error = error;
      let latest: number | undefined;
      try {
        latest = await latestCheckpoint(store);
        if (latest !== undefined) run.checkpointStep = latest;
      } catch {
        // IndexedDB is gone too: the error above says enough
      }
      // A device destroyed mid-step may first fail a command (a validation error) before its loss is reported.
      if (error.name === 'GpuError' && error.code !== 'device-lost' && gpu) await Promise.race([gpu.device.lost, new Promise((r) => setTimeout(r, 200))]);
      if (error.code === 'device-lost' || gpu?.isLost) {
        error.name = 'GpuError';
        error.code = 'device-lost';
        // The worker makes a new device on its next GPU call: the run continues from its last checkpoint.
        error.message =
          `The GPU device was lost during training; ${latest !== undefined ? `${checkpointName(latest)} is kept` : 'no checkpoint was saved yet'}: ` +
          `${latest !== undefined ? 'continue the run to resume from it' : 'start the run again'} (a new device is made), and lower the batch size or sequence length if it happens again.`;
      }
      await this.put(run).catch(() => undefined);
      return { status: 'failed', run: structuredClone(run), error };
    } finally {
      await store.close().catch(() => undefined);
    }
  }

  pause(): Promise<void> {
    return this.hold(true);
  }

  resume(): Promise<void> {
    return this.hold(false);
  }

  /** Pauses or resumes the active run: its control, its record's status and the Train screen's phase. */
  private async hold(paused: boolean): Promise<void> {
    const a = this.wb.active;
    if (!a) return;
    if (paused) a.control.pause();
    else a.control.resume();
    a.run.status = paused ? 'paused' : 'running';
    a.emit({ kind: 'phase', phase: paused ? 'paused' : 'training' });
    await this.put(a.run).catch(() => undefined);
  }

  async stop(): Promise<void> {
    const a = this.wb.active;
    if (!a) return;
    a.control.stop();
    a.emit({ kind: 'phase', phase: 'checkpoint', message: 'Stopping after this step and saving a checkpoint' });
  }

  async active(): Promise<RunRecord | undefined> {
    return this.wb.active ? structuredClone(this.wb.active.run) : undefined;
  }

  async list(): Promise<RunRecord[]> {
    const runs = await (await this.wb.db()).getAll('runs');
    return runs.sort((a, b) => b.createdAt - a.createdAt);
  }

  /** The latest run that did not finish and has a checkpoint to continue from (a tab closed or reloaded mid-run). */
  async unfinished(): Promise<RunRecord | undefined> {
    const open: RunStatus[] = ['running', 'paused', 'stopped', 'interrupted', 'failed'];
    for (const run of await this.list()) {
      if (!open.includes(run.status) || this.wb.active?.run.id === run.id) continue;
      const store = new IdbCheckpointStore({ run: run.id });
      try {
        const latest = await latestCheckpoint(store);
        if (latest === undefined) continue;
        if (run.status === 'running' || run.status === 'paused') {
          // This worker is not running it: the tab that did was closed or reloaded.
          run.status = 'interrupted';
          await this.put(run);
        }
        run.checkpointStep = latest;
        return run;
      } finally {
        await store.close();
      }
    }
    return undefined;
  }

  /** Deletes a run's checkpoints; it is no longer offered for resuming. */
  async discard(runId: string): Promise<void> {
    if (this.wb.active?.run.id === runId) throw new ModelError('bad-options', 'That run is training now: stop it first.');
    const store = new IdbCheckpointStore({ run: runId });
    try {
      for (const step of await store.list()) await store.delete(step);
    } finally {
      await store.close();
    }
    const run = await this.get(runId);
    if (run && run.status !== 'completed') {
      run.status = 'discarded';
      delete run.checkpointStep;
      await this.put(run);
    }
  }
}
