// The engine worker's training half: runs the trainer (src/train) on a stored model and dataset, keeps its
// checkpoints in IndexedDB so that a closed tab resumes, keeps what runs produce (adapters of the three kinds —
// LoRA, bottleneck, prompt tuning —, fine-tuned models, reward models) and imported adapters, generates with the base and the tuned model side by side, scores
// answers with a trained reward model (stage rm), records preference pairs, writes the exports (PEFT adapter,
// merged model, reward model, LLaMA-Factory job, training report) and installs the built-in demo from the app's
// own files. engine.worker.ts spreads `trainApi(...)` into what it exposes;
// api.ts's EngineApi extends TrainApi.
//
// Storage (all IndexedDB):
//   graft-checkpoints     the trainer's checkpoints (src/train/checkpoint-store-idb.ts), one `run` per run id
//   graft-workbench       runs      run id → RunRecord (what a run trains, where it is, its metrics)
//                         adapters  adapter id → AdapterRow (an adapter folder's two files, adapter_config.json
//                                   and adapter_model.safetensors, from runs and imported; `kind` lora (PEFT
//                                   LORA; rows without `kind` are LoRA ones), bottleneck (Graft's folder) or
//                                   prompt (PEFT PROMPT_TUNING) — LoadedModel.loadAdapter tells them apart)
//                         tuned     repo → TunedModelRow (full and freeze runs' models; reward models of
//                                   stage rm runs, kept as <Arch>ForSequenceClassification folders)
//                         preferences  auto id → PreferenceRecord (chosen / rejected answers)
//   graft-tuned-models    the fine-tuned models' files (an IdbModelStore, as downloaded models are kept)
//   graft-models          downloaded models, and the built-in demo model (DEMO_REPO)
//
// Failures of a run do not throw across comlink: the run resolves with status 'failed' and a TrainErrorInfo
// (name, code, message, settings problems), which the page turns into a sentence that says what to do.
import { unzipSync } from 'fflate';
import { openDB, type IDBPDatabase } from 'idb';
import type { Conversation, DatasetFormat } from '../data/types';
import { encodeConversation, prepareSftData } from '../data/encode';
import { parseDatasetText } from '../data/parse';
import { normalisePreferenceRecord, parsePreferenceText, preparePreferenceData, type PreferenceRecord as PairRecord } from '../data/preference';
import type { GpuContext } from '../engine/context';
import { exportBottleneckAdapter, exportHfModel, exportLlamaFactoryJob, exportPeftAdapter, exportPromptTuning, mergeLora, zipFiles, type WeightTensor } from '../export';
import { exportRewardModel } from '../export/reward-model';
import { DEFAULT_REVISION } from '../hub/client';
import { IdbModelStore } from '../hub/store-idb';
import type { ModelStore } from '../hub/store';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, readAdapter, type CpuLoraAdapter } from '../model/adapter';
import { bottleneckKeys, type BottleneckConfig, type CpuBottleneckAdapter } from '../model/bottleneck';
import { isBottleneckConfig, readBottleneckAdapter } from '../model/bottleneck-file';
import { PROMPT_EMBEDDINGS, readPromptAdapter } from '../model/prompt-tuning';
import { parseConfig } from '../model/config';
import { loadModel, type LoadedModel } from '../model/load';
import { SafetensorsWeights } from '../model/weights';
import { loadRewardModel, SCORE_WEIGHT } from '../model/reward-head';
import { ModelError, readJson, storeSource, type ModelSource } from '../model/source';
import { decodeCheckpoint } from '../train/checkpoint';
import { checkpointName, CheckpointError } from '../train/checkpoint-store';
import { IdbCheckpointStore } from '../train/checkpoint-store-idb';
import type { EvalRecord, StepRecord, TrainProgress } from '../train/metrics';
import { bottleneckWeights, checkMethodSettings, loraModuleWeights } from '../train/methods';
import { readJoined } from '../train/optimizer';
import { parseSettingsWithNotes, SettingsError, settingsToYaml, type SettingsProblem, type TrainSettings } from '../train/settings';
import { usesReference } from '../train/objectives/preference-loss';
import { TrainControl, Trainer, type TrainExample, type TrainPair } from '../train/trainer';
import { ADAPTER_FOLDER_SUFFIX, KIND_NAMES, llamaFactoryRefusal, mergeRefusal, methodOf, methodOfAdapter, type AdapterKind, type FinetuningKind } from './adapter-kinds';
import type { ChatOptions, ChatResult } from './api';
import { datasets } from './data-api';

export type { EvalRecord, StepRecord, TrainProgress } from '../train/metrics';

/** The built-in demo model's id in the model store (installed from the app's own files, public/demo/). */
export const DEMO_REPO = 'graft/demo-tiny-llama';
/** The files of public/demo/model/. */
export const DEMO_MODEL_FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
export const DEMO_DATASET_FILE = 'demo_qa.json';
export const WORKBENCH_DB = 'graft-workbench';
export const TUNED_MODELS_DB = 'graft-tuned-models';
/** Checkpoints kept per run when the job does not say (save_total_limit): each holds weights and moments. */
export const DEFAULT_SAVE_TOTAL_LIMIT = 2;
/** The trainer runs `stage: dpo` (src/train/objectives/dpo.ts): the Chat screen's preference pairs train it. */
export const DPO_TRAINING_AVAILABLE = true;
/** A run's datasetId for the preference pairs collected on the Chat screen (not a Data-screen dataset). */
export const PREFERENCES_DATASET = 'graft:chat-preferences';
/**
 * The demo's datasetId: its six records are kept in the run itself, so that trying the demo never takes a place
 * among the Data screen's stored datasets (which keeps the last few) nor replaces the one open there.
 */
export const DEMO_DATASET = 'graft:demo';

// ---- types the page sees ----------------------------------------------------------------------------------

export type { AdapterKind, FinetuningKind } from './adapter-kinds';
export type RunStatus = 'running' | 'paused' | 'stopped' | 'completed' | 'failed' | 'interrupted' | 'discarded';

/** What a run produced: an adapter (lora, adapter, prompt) or a model (full, freeze). */
export type TunedRef = { kind: 'adapter'; id: string } | { kind: 'model'; repo: string };

export interface TrainErrorInfo {
  name: string;
  /** GpuError codes (device-lost, out-of-memory, limit-exceeded, validation), 'bad-settings', 'encode', 'checkpoint', 'no-dataset', 'empty-dataset', ModelError and HubError codes. */
  code: string;
  message: string;
  /** Settings problems by key (code 'bad-settings'). */
  problems?: SettingsProblem[];
}

export interface RunRecord {
  id: string;
  label: string;
  repo: string;
  revision: string;
  datasetId: string;
  datasetName: string;
  /** The job's settings as given (LLaMA-Factory names). */
  input: Record<string, unknown>;
  finetuningType: FinetuningKind;
  status: RunStatus;
  /** Steps done (as of the last checkpoint or the end). */
  step: number;
  totalSteps: number;
  /** The latest complete checkpoint's step. */
  checkpointStep?: number;
  createdAt: number;
  updatedAt: number;
  /** lora, adapter: the adapter this run continues (adapter id; a LoRA or a bottleneck one). */
  startAdapterId?: string;
  /** Where `repo` is kept: downloaded models (default) or the fine-tuned models of earlier runs. */
  modelStore?: 'models' | 'tuned';
  result?: TunedRef;
  error?: TrainErrorInfo;
  /** The demo's records (datasetId DEMO_DATASET). */
  inlineRecords?: Conversation[];
  metrics: StepRecord[];
  evalMetrics: EvalRecord[];
  demo?: boolean;
}

export interface TrainStartRequest {
  repo: string;
  revision?: string;
  datasetId: string;
  /** The job's settings, LLaMA-Factory names (the app's jobInput()). */
  input: Record<string, unknown>;
  label?: string;
  /** lora, adapter: continue training this stored LoRA or bottleneck adapter (adapter_name_or_path). */
  startAdapterId?: string;
  /** 'tuned': `repo` is a fine-tuned model of an earlier run (TunedRef kind 'model'), e.g. DPO after full SFT. */
  modelStore?: 'models' | 'tuned';
  demo?: boolean;
}

export type TrainPhase = 'loading' | 'preparing' | 'training' | 'paused' | 'eval' | 'checkpoint' | 'saving';

export type TrainEvent =
  | { kind: 'phase'; phase: TrainPhase; message?: string }
  | {
      kind: 'started';
      run: RunRecord;
      notes: string[];
      trainableParameters: number;
      sequences: number;
      valSequences: number;
      /** A resumed run: the steps before it (from the checkpoint). */
      history: { metrics: StepRecord[]; evalMetrics: EvalRecord[] };
      resumedFrom?: number;
    }
  | { kind: 'step'; record: StepRecord; progress: TrainProgress; gpuBytes: number }
  | { kind: 'progress'; progress: TrainProgress; gpuBytes: number }
  | { kind: 'eval'; record: EvalRecord }
  | { kind: 'checkpoint'; step: number };

export interface TrainOutcome {
  status: 'completed' | 'stopped' | 'failed';
  run: RunRecord;
  error?: TrainErrorInfo;
  /** The adapter or model the run produced (completed runs). */
  tuned?: TunedEntry;
}

/** An adapter or a fine-tuned model to chat with and export. */
export interface TunedEntry {
  ref: TunedRef;
  label: string;
  baseRepo: string;
  baseRevision: string;
  /** 'tuned': the base is itself a fine-tuned model of an earlier run. */
  baseStore?: 'models' | 'tuned';
  origin: 'run' | 'import';
  method: FinetuningKind;
  runId?: string;
  createdAt: number;
  bytes: number;
  /** "LoRA r 8, alpha 16: q_proj, k_proj, …" or "full fine-tuning". */
  detail: string;
  /** An adapter's kind (ref kind 'adapter'): what Export downloads and what the Chat screen says it is. */
  adapterKind?: AdapterKind;
  /** A reward model (stage rm): it scores answers (scoreAnswers) and does not generate. */
  reward?: true;
}

export interface ScoreRequest {
  /** The reward model: a TunedEntry with `reward` (its ref's repo). */
  rewardRepo: string;
  prompt: string;
  /** The answers to score, each as the assistant's turn after the prompt. */
  answers: string[];
}

export interface ScoreResult {
  /** The reward of each answer, in the order given (higher: preferred). */
  rewards: number[];
  /** Tokens of each (prompt, answer) sequence, and whether it was cut to the model's length. */
  tokens: number[];
  truncated: boolean[];
}

export interface CompareRequest {
  baseRepo: string;
  baseRevision?: string;
  /** Where the base model is kept (default: the downloaded models). */
  baseStore?: 'models' | 'tuned';
  /** null: the base model. */
  tuned: TunedRef | null;
  prompt: string;
  options: ChatOptions;
}

export interface PreferenceRecord {
  id: number;
  prompt: string;
  chosen: string;
  rejected: string;
  /** Which side was chosen, and what was compared. */
  chosenSide: 'base' | 'tuned';
  baseRepo: string;
  tunedLabel: string;
  createdAt: number;
}

export interface ExportFile {
  name: string;
  bytes: Uint8Array;
  mime: string;
}

export interface DemoInstall {
  repo: string;
  revision: string;
  datasetId: string;
  datasetName: string;
  /** The demo's Q&A pairs (to show, and to ask). */
  pairs: { question: string; answer: string }[];
}

export interface TrainApi {
  /** Trains; resolves when the run ends (completed, stopped or failed). `onEvent` wrapped in comlink's proxy(). */
  startTraining(request: TrainStartRequest, onEvent?: (e: TrainEvent) => void): Promise<TrainOutcome>;
  /** Continues a stopped or interrupted run from its latest checkpoint. */
  continueRun(runId: string, onEvent?: (e: TrainEvent) => void): Promise<TrainOutcome>;
  /** Holds the running trainer between steps. */
  pauseTraining(): Promise<void>;
  resumeTraining(): Promise<void>;
  /** Stops after the current step; a checkpoint is saved, and the run can be continued. */
  stopTraining(): Promise<void>;
  /** The run of this worker that is running or paused, if any. */
  activeRun(): Promise<RunRecord | undefined>;
  listRuns(): Promise<RunRecord[]>;
  /** The latest run that did not finish and has a checkpoint to continue from (a tab closed or reloaded mid-run). */
  unfinishedRun(): Promise<RunRecord | undefined>;
  /** Deletes a run's checkpoints; it is no longer offered for resuming. */
  discardRun(runId: string): Promise<void>;

  /** Adapters and fine-tuned models on this device, newest first. */
  listTuned(): Promise<TunedEntry[]>;
  /** Deletes an adapter or a fine-tuned model. */
  deleteTuned(ref: TunedRef): Promise<void>;
  /**
   * Reads an adapter folder of any kind — PEFT LoRA, PEFT PROMPT_TUNING or Graft's bottleneck adapter (the two
   * files, or a zip holding them) —, checks it against a stored base model, keeps it.
   */
  importAdapter(files: ExportFile[], baseRepo: string, baseRevision?: string, label?: string): Promise<TunedEntry>;

  /** Scores answers to a prompt with a reward model of a stage rm run. */
  scoreAnswers(request: ScoreRequest): Promise<ScoreResult>;
  /** Generates with the base model (tuned null) or a tuned one; `onToken(delta)` wrapped in proxy(). */
  compareGenerate(request: CompareRequest, onToken?: (textDelta: string, id: number) => void): Promise<ChatResult>;
  stopCompare(): Promise<void>;

  addPreference(p: Omit<PreferenceRecord, 'id' | 'createdAt'>): Promise<PreferenceRecord>;
  listPreferences(): Promise<PreferenceRecord[]>;
  deletePreference(id: number): Promise<void>;

  /** The adapter folder (PEFT LoRA, PEFT PROMPT_TUNING or Graft's bottleneck adapter): its two files, or one zip. */
  exportAdapter(id: string, as: 'files' | 'zip'): Promise<ExportFile[]>;
  /** The fine-tuned model as a Hugging Face folder in a zip (LoRA merged into the base weights). */
  exportMergedModel(ref: TunedRef): Promise<ExportFile>;
  /** The run as a LLaMA-Factory job: train.yaml, dataset_info.json and the data, in a zip. */
  exportLlamaFactoryJob(runId: string): Promise<ExportFile>;
  /** metrics.json (+ eval), the job YAML, and the loss chart (a PNG the page drew), in a zip. */
  exportTrainingReport(runId: string, chartPng?: Uint8Array): Promise<ExportFile>;
  /** The preference pairs as JSON: [{prompt, chosen, rejected}]. */
  exportPreferences(): Promise<ExportFile>;

  /** Puts the built-in demo model and dataset (the app's own files under `baseUrl`, e.g. https://host/app/demo/) on the device. */
  installDemo(baseUrl: string): Promise<DemoInstall>;
}

// ---- storage ------------------------------------------------------------------------------------------------

interface AdapterRow {
  id: string;
  label: string;
  baseRepo: string;
  baseRevision: string;
  baseStore?: 'models' | 'tuned';
  origin: 'run' | 'import';
  runId?: string;
  createdAt: number;
  /** Absent: 'lora' (rows kept before the other kinds existed). */
  kind?: AdapterKind;
  /** LoRA: its settings (0, false, [] for other kinds). */
  r: number;
  alpha: number;
  useRslora: boolean;
  targetModules: string[];
  /** LoRA: adapted linear layers; bottleneck: adapter modules; prompt: virtual tokens. */
  modules: number;
  /** Bottleneck and prompt: what the entry says (e.g. "bottleneck adapter, pfeiffer, reduction factor 16, relu"). */
  summary?: string;
  config: Uint8Array;
  weights: Uint8Array;
}

/** The adapter folder of a row, as LoadedModel.loadAdapter and the readers take it. */
function rowSource(row: AdapterRow): ModelSource {
  return memorySource(row.label, new Map([[ADAPTER_CONFIG, row.config], [ADAPTER_WEIGHTS, row.weights]]));
}

const rowKind = (row: AdapterRow): AdapterKind => row.kind ?? 'lora';

interface TunedModelRow {
  repo: string;
  label: string;
  baseRepo: string;
  baseRevision: string;
  baseStore?: 'models' | 'tuned';
  runId: string;
  method: FinetuningKind;
  createdAt: number;
  bytes: number;
  /** A reward model (stage rm). */
  reward?: true;
}

type WorkbenchDB = IDBPDatabase;

function openWorkbench(): Promise<WorkbenchDB> {
  return openDB(WORKBENCH_DB, 1, {
    upgrade(db) {
      if (!db.objectStoreNames.contains('runs')) db.createObjectStore('runs', { keyPath: 'id' });
      if (!db.objectStoreNames.contains('adapters')) db.createObjectStore('adapters', { keyPath: 'id' });
      if (!db.objectStoreNames.contains('tuned')) db.createObjectStore('tuned', { keyPath: 'repo' });
      if (!db.objectStoreNames.contains('preferences')) db.createObjectStore('preferences', { keyPath: 'id', autoIncrement: true });
    },
    blocking() {
      // another tab upgrades the schema: let it
    },
  });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const jsonBytes = (v: unknown) => encoder.encode(`${JSON.stringify(v, null, 2)}\n`);

/** A model source over files in memory (adapters, zips). */
function memorySource(name: string, files: ReadonlyMap<string, Uint8Array>): ModelSource {
  return { name, readFile: async (path) => files.get(path) };
}

/** "HuggingFaceTB/SmolLM2-135M-Instruct" → "SmolLM2-135M-Instruct"; safe for file names. */
export function fileStem(text: string): string {
  const last = text.split('/').filter(Boolean).pop() ?? text;
  return last.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80) || 'graft';
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function newId(prefix: string): string {
  const rand = Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, '0');
  return `${prefix}-${Date.now().toString(36)}-${rand}`;
}

/** A failure as the page gets it. */
export function trainErrorInfo(e: unknown): TrainErrorInfo {
  if (e instanceof SettingsError) return { name: e.name, code: e.code, message: e.message, problems: e.problems };
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { name: e.name, code: typeof code === 'string' ? code : 'error', message: e.message };
  }
  return { name: 'Error', code: 'error', message: String(e) };
}

class RunFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'TrainError';
  }
}

// ---- the service -----------------------------------------------------------------------------------------------

interface Cached {
  key: string;
  lm: LoadedModel;
  bytes: number;
}

interface ActiveRun {
  run: RunRecord;
  control: TrainControl;
  emit(e: TrainEvent): void;
}

export interface TrainServiceDeps {
  /** The worker's GPU context. */
  gpu(): Promise<GpuContext>;
  /** Frees the GPU memory the chat panel's model holds (before a run loads its own). */
  unloadChatModel(): Promise<void>;
  /** Default: the IndexedDB model store ("graft-models"). */
  models?: ModelStore;
  tunedModels?: ModelStore;
}

/** Models cached for comparing: at most this many, or one when they are large. */
const MAX_CACHED = 2;
const LARGE_MODEL_BYTES = 512 * 1024 * 1024;

export class TrainService {
  private readonly models: ModelStore;
  private readonly tunedModels: ModelStore;
  private dbPromise: Promise<WorkbenchDB> | undefined;
  private active: ActiveRun | undefined;
  private busy: Promise<unknown> = Promise.resolve();
  private readonly cache: Cached[] = [];
  private generation: AbortController | undefined;
  private generating = false;
  /** The demo's records, read by installDemo(). */
  private demoRecords: Conversation[] | undefined;

  constructor(private readonly deps: TrainServiceDeps) {
    this.models = deps.models ?? new IdbModelStore();
    this.tunedModels = deps.tunedModels ?? new IdbModelStore({ name: TUNED_MODELS_DB });
  }

  private db(): Promise<WorkbenchDB> {
    this.dbPromise ??= openWorkbench().catch((e: unknown) => {
      this.dbPromise = undefined;
      throw e;
    });
    return this.dbPromise;
  }

  private async putRun(run: RunRecord): Promise<void> {
    run.updatedAt = Date.now();
    await (await this.db()).put('runs', structuredClone(run));
  }

  private async getRun(id: string): Promise<RunRecord | undefined> {
    return (await (await this.db()).get('runs', id)) as RunRecord | undefined;
  }

  private storeOf(which: 'models' | 'tuned' | undefined): ModelStore {
    return which === 'tuned' ? this.tunedModels : this.models;
  }

  /** A run's records: conversations (sft) or preference pairs (dpo: a file of pairs, or the Chat screen's). */
  private async readRecords(run: RunRecord, pairs: boolean): Promise<{ records: Conversation[]; pairRecords: PairRecord[] }> {
    if (pairs && run.datasetId === PREFERENCES_DATASET) {
      const pairRecords: PairRecord[] = [];
      for (const p of await this.listPreferences()) {
        const n = normalisePreferenceRecord({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected });
        if (n.ok) pairRecords.push(n.record);
      }
      return { records: [], pairRecords };
    }
    if (!pairs && run.inlineRecords) return { records: run.inlineRecords, pairRecords: [] };
    try {
      if (!pairs) return { records: (await datasets.conversations(run.datasetId)).records, pairRecords: [] };
      // The Data screen reads SFT formats; its rows keep the file's records, which are read here as pairs.
      return { records: [], pairRecords: parsePreferenceText(await datasets.jsonl(run.datasetId), run.datasetName).records };
    } catch {
      throw new RunFailure('no-dataset', `The dataset ${run.datasetName} is no longer on this device. Open it again on the Data screen.`);
    }
  }

  // ---- models on the GPU (comparing) -------------------------------------------------------------------------

  private async dropCache(): Promise<void> {
    for (const c of this.cache.splice(0)) c.lm.dispose();
  }

  private async cachedModel(store: 'models' | 'tuned', repo: string, revision: string): Promise<LoadedModel> {
    const key = `${store}:${repo}@${revision}`;
    const hit = this.cache.find((c) => c.key === key);
    if (hit) {
      this.cache.splice(this.cache.indexOf(hit), 1);
      this.cache.push(hit);
      return hit.lm;
    }
    const source = storeSource(store === 'models' ? this.models : this.tunedModels, repo, revision);
    const entry = await (store === 'models' ? this.models : this.tunedModels).getModel(repo, revision);
    const bytes = entry?.totalBytes ?? 0;
    // Make room first: large models one at a time.
    while (this.cache.length >= MAX_CACHED || (this.cache.length > 0 && (bytes > LARGE_MODEL_BYTES || this.cache.some((c) => c.bytes > LARGE_MODEL_BYTES)))) {
      this.cache.shift()!.lm.dispose();
    }
    await this.deps.unloadChatModel();
    const lm = await loadModel(await this.deps.gpu(), source);
    this.cache.push({ key, lm, bytes });
    return lm;
  }

  private remember(store: 'models' | 'tuned', repo: string, revision: string, lm: LoadedModel, bytes: number): void {
    const key = `${store}:${repo}@${revision}`;
    const old = this.cache.findIndex((c) => c.key === key);
    if (old >= 0) this.cache.splice(old, 1)[0]!.lm.dispose();
    while (this.cache.length >= MAX_CACHED) this.cache.shift()!.lm.dispose();
    this.cache.push({ key, lm, bytes });
  }

  // ---- runs ----------------------------------------------------------------------------------------------------

  async startTraining(request: TrainStartRequest, onEvent?: (e: TrainEvent) => void): Promise<TrainOutcome> {
    this.checkIdle();
    const now = Date.now();
    const input = { ...request.input };
    const repo = request.repo.trim();
    const revision = request.revision ?? DEFAULT_REVISION;
    const run: RunRecord = {
      id: newId('run'),
      label: request.label ?? `${fileStem(repo)} ${methodOf(input)} ${day(now)}`,
      repo,
      revision,
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
      if (!this.demoRecords) throw new ModelError('bad-options', 'The demo is not prepared yet: open the demo screen again.');
      run.inlineRecords = this.demoRecords;
      run.datasetName = DEMO_DATASET_FILE;
    }
    return this.execute(run, false, onEvent);
  }

  async continueRun(runId: string, onEvent?: (e: TrainEvent) => void): Promise<TrainOutcome> {
    this.checkIdle();
    const run = await this.getRun(runId);
    if (!run) throw new ModelError('bad-options', 'That training run is no longer on this device.');
    if (run.status === 'completed') throw new ModelError('bad-options', `The run "${run.label}" is complete: there is nothing to continue.`);
    return this.execute(run, true, onEvent);
  }

  private checkIdle(): void {
    if (this.active) throw new ModelError('bad-options', `A training run ("${this.active.run.label}") is in progress. Stop it first, or wait for it to end.`);
  }

  private execute(run: RunRecord, resume: boolean, onEvent?: (e: TrainEvent) => void): Promise<TrainOutcome> {
    const control = new TrainControl();
    const emit = (e: TrainEvent) => onEvent?.(e);
    this.active = { run, control, emit };
    const job = this.busy.then(() => this.train(run, resume, control, emit));
    this.busy = job.catch(() => undefined);
    return job.finally(() => {
      if (this.active?.run === run) this.active = undefined;
    });
  }

  private async train(run: RunRecord, resume: boolean, control: TrainControl, emit: (e: TrainEvent) => void): Promise<TrainOutcome> {
    let lm: LoadedModel | undefined;
    let reference: LoadedModel | undefined;
    let trainer: Trainer | undefined;
    let keepModel = false;
    const store = new IdbCheckpointStore({ run: run.id });
    try {
      emit({ kind: 'phase', phase: 'preparing', message: 'Checking the settings and the dataset' });
      const input: Record<string, unknown> = { ...run.input, model_name_or_path: run.repo, dataset: run.datasetName };
      if (run.revision !== DEFAULT_REVISION) input.model_revision = run.revision;
      if (input.save_total_limit === undefined) input.save_total_limit = DEFAULT_SAVE_TOTAL_LIMIT;
      let startingAdapter: CpuLoraAdapter | CpuBottleneckAdapter | undefined;
      const adapterRow = run.startAdapterId ? await this.adapterRow(run.startAdapterId) : undefined;
      if (run.startAdapterId && !adapterRow) throw new RunFailure('no-adapter', 'The adapter this run continues is no longer on this device. Import it again, or start without it.');
      if (adapterRow && rowKind(adapterRow) === 'prompt') {
        throw new RunFailure('no-adapter', `Only LoRA and bottleneck adapters can be trained further; "${adapterRow.label}" is a ${KIND_NAMES.prompt}. Start without it.`);
      }
      // The job names the adapter as a folder (what LLaMA-Factory reads); the adapter itself comes from IndexedDB.
      if (adapterRow) input.adapter_name_or_path = `adapters/${fileStem(adapterRow.label)}`;
      const { settings, notes } = parseSettingsWithNotes(input, 'the job');
      checkMethodSettings(settings);
      // dpo and rm train on preference pairs.
      const pairs = settings.stage === 'dpo' || settings.stage === 'rm';
      const { records, pairRecords } = await this.readRecords(run, pairs);
      const count = (pairs ? pairRecords : records).length;
      const limit = settings.max_samples ?? count;
      if (Math.min(count, limit) === 0) {
        throw new RunFailure(
          'empty-dataset',
          pairs
            ? `${run.datasetName} has no preference pair to train on: stage "${settings.stage}" needs records with "prompt", "chosen" and "rejected" (mark better answers on the Chat screen, or bring a file of pairs).`
            : `${run.datasetName} has no record to train on. Fix or add records on the Data screen.`,
        );
      }

      let checkpoint;
      if (resume) {
        const steps = await store.list();
        const latest = steps[steps.length - 1];
        if (latest === undefined) throw new CheckpointError(`The run "${run.label}" has no checkpoint to continue from; start it again.`);
        checkpoint = decodeCheckpoint(await store.read(latest), `${store.location}/${checkpointName(latest)}`);
      }

      emit({ kind: 'phase', phase: 'loading', message: `Loading ${run.repo} onto the GPU` });
      await this.deps.unloadChatModel();
      await this.dropCache();
      const ctx = await this.deps.gpu();
      const source = storeSource(this.storeOf(run.modelStore), run.repo, run.revision);
      lm = await loadModel(ctx, source);
      if (adapterRow) {
        // The trainer checks that finetuning_type fits the adapter's kind (lora continues LoRA, adapter bottleneck).
        startingAdapter = rowKind(adapterRow) === 'bottleneck' ? await readBottleneckAdapter(rowSource(adapterRow), lm.config) : await readAdapter(rowSource(adapterRow), lm.config);
      }
      emit({ kind: 'phase', phase: 'preparing', message: pairs ? 'Tokenizing the preference pairs' : 'Tokenizing the dataset' });
      let data: { train: readonly TrainExample[] | readonly TrainPair[]; val: readonly TrainExample[] | readonly TrainPair[]; problems: { reason: string }[] };
      const dataNotes: string[] = [];
      if (pairs) {
        const pref = preparePreferenceData(pairRecords.slice(0, limit), lm.tokenizer, lm.template, { cutoffLen: settings.cutoff_len, valSize: settings.val_size, seed: settings.seed, shuffle: false });
        if (pref.stats.truncatedPairs > 0) dataNotes.push(`${pref.stats.truncatedPairs} pair(s) have an answer cut at cutoff_len ${settings.cutoff_len}`);
        data = pref;
      } else {
        const sft = prepareSftData(records.slice(0, limit), lm.tokenizer, lm.template, {
          cutoffLen: settings.cutoff_len,
          trainOnPrompt: settings.train_on_prompt,
          maskHistory: settings.mask_history,
          valSize: settings.val_size,
          seed: settings.seed,
          shuffle: false,
          packing: settings.packing,
        });
        if (sft.stats.examplesWithoutTargets > 0) dataNotes.push(`${sft.stats.examplesWithoutTargets} example(s) have no answer token left within cutoff_len ${settings.cutoff_len}`);
        data = sft;
      }
      if (data.train.length === 0) {
        const why = data.problems[0]?.reason;
        throw new RunFailure('empty-dataset', `No record of ${run.datasetName} could be encoded for training${why ? ` (${why})` : ''}. Fix the records on the Data screen.`);
      }
      // DPO with full or freeze training compares with a frozen copy of the starting model: loaded a second time,
      // used for the reference log-probs before the first step, then freed. The adapter methods (lora, adapter,
      // prompt) compare with the model with the adapter switched off: no copy.
      if (settings.stage === 'dpo' && (settings.finetuning_type === 'full' || settings.finetuning_type === 'freeze') && usesReference(settings.pref_loss)) {
        emit({ kind: 'phase', phase: 'loading', message: 'Loading the frozen reference model' });
        reference = await loadModel(ctx, source);
      }
      // A reward model's head starts as Hugging Face initialises it: normal(0, config.json's initializer_range).
      const initRange = settings.stage === 'rm' ? (await readJson(source, 'config.json', true)).initializer_range : undefined;
      // Prompt tuning's "text" init: PEFT tokenizes the text as tokenizer(text) does, with the special tokens.
      const promptInitIds =
        settings.finetuning_type === 'prompt' && settings.prompt_tuning_init === 'text' ? lm.tokenizer.encode(settings.prompt_tuning_init_text!, { addSpecialTokens: true }) : undefined;
      trainer = Trainer.create({
        model: lm.model,
        settings,
        ...(typeof initRange === 'number' ? { initializerRange: initRange } : {}),
        train: data.train,
        val: data.val,
        padTokenId: lm.tokenizer.padTokenId ?? lm.tokenizer.eosTokenIds[0] ?? 0,
        store,
        ...(startingAdapter ? { startingAdapter } : {}),
        ...(promptInitIds ? { promptInitIds } : {}),
        ...(checkpoint ? { resume: checkpoint } : {}),
        ...(reference ? { reference: reference.model } : {}),
      });
      const t = trainer;
      if (pairs) {
        emit({ kind: 'phase', phase: 'preparing', message: 'Computing the reference log-probabilities' });
        await t.prepare();
        reference?.dispose();
        reference = undefined;
      }
      run.totalSteps = t.totalSteps;
      run.step = t.step;
      run.status = 'running';
      delete run.error;
      const history = t.history;
      run.metrics = history.metrics;
      run.evalMetrics = history.evalMetrics;
      await this.putRun(run);
      const allNotes = [...notes, ...t.notes, ...dataNotes];
      if (data.problems.length) allNotes.push(`${data.problems.length} record${data.problems.length === 1 ? '' : 's'} could not be encoded and ${data.problems.length === 1 ? 'is' : 'are'} left out`);
      emit({
        kind: 'started',
        run: structuredClone(run),
        notes: allNotes,
        trainableParameters: t.method.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0),
        sequences: data.train.length,
        valSequences: data.val.length,
        history,
        ...(checkpoint ? { resumedFrom: checkpoint.state.global_step } : {}),
      });
      emit({ kind: 'phase', phase: control.paused ? 'paused' : 'training' });

      const result = await t.run({
        control,
        onStep: (record) => {
          run.metrics.push(record);
          run.step = record.step;
        },
        onProgress: (p) => {
          const gpuBytes = ctx.stats.bytesAllocated;
          if (p.phase !== 'train') emit({ kind: 'phase', phase: p.phase });
          else if (p.last && p.last.step === p.step) emit({ kind: 'step', record: p.last, progress: p, gpuBytes });
          else emit({ kind: 'progress', progress: p, gpuBytes });
        },
        onEval: (record) => {
          run.evalMetrics.push(record);
          emit({ kind: 'eval', record });
          emit({ kind: 'phase', phase: control.paused ? 'paused' : 'training' });
        },
        onCheckpoint: (step) => {
          run.checkpointStep = step;
          run.step = step;
          void this.putRun(run).catch(() => undefined);
          emit({ kind: 'checkpoint', step });
          emit({ kind: 'phase', phase: control.paused ? 'paused' : 'training' });
        },
      });
      run.metrics = result.metrics;
      run.evalMetrics = result.evalMetrics;
      run.step = result.globalStep;
      if (result.status === 'stopped') {
        run.status = 'stopped';
        const steps = await store.list();
        const latest = steps[steps.length - 1];
        if (latest !== undefined) run.checkpointStep = latest;
        await this.putRun(run);
        keepModel = false;
        return { status: 'stopped', run: structuredClone(run) };
      }

      emit({ kind: 'phase', phase: 'saving', message: 'Saving the result on this device' });
      const tuned = await this.saveResult(run, t, lm, settings);
      run.result = tuned.ref;
      run.status = 'completed';
      delete run.checkpointStep;
      await this.putRun(run);
      // The run is complete: its checkpoints are not needed to continue it.
      for (const step of await store.list()) await store.delete(step).catch(() => undefined);
      t.dispose();
      trainer = undefined;
      // Keep the model on the GPU for comparing: an adapter's base is unchanged; full/freeze's is the tuned model. A
      // reward model does not generate: it is freed (scoring loads it when asked).
      if (tuned.reward) {
        return { status: 'completed', run: structuredClone(run), tuned };
      } else if (tuned.ref.kind === 'adapter') {
        const row = (await this.adapterRow(tuned.ref.id))!;
        await lm.loadAdapter(rowSource(row), row.id);
        this.remember(run.modelStore ?? 'models', run.repo, run.revision, lm, (await this.storeOf(run.modelStore).getModel(run.repo, run.revision))?.totalBytes ?? 0);
      } else {
        this.remember('tuned', tuned.ref.repo, DEFAULT_REVISION, lm, tuned.bytes);
      }
      keepModel = true;
      return { status: 'completed', run: structuredClone(run), tuned };
    } catch (e) {
      const error = trainErrorInfo(e);
      run.status = 'failed';
      run.error = error;
      try {
        const steps = await store.list();
        const latest = steps[steps.length - 1];
        if (latest !== undefined) run.checkpointStep = latest;
      } catch {
        // IndexedDB is gone too: the error above says enough
      }
      await this.putRun(run).catch(() => undefined);
      return { status: 'failed', run: structuredClone(run), error };
    } finally {
      trainer?.dispose();
      reference?.dispose();
      if (!keepModel) lm?.dispose();
      await store.close().catch(() => undefined);
    }
  }

  /** Saves what a completed run produced: the adapter folder (lora, adapter, prompt) or the model folder (full, freeze). */
  private async saveResult(run: RunRecord, t: Trainer, lm: LoadedModel, s: TrainSettings): Promise<TunedEntry> {
    if (s.stage === 'rm') return this.saveRewardModel(run, t, lm);
    const lora = t.method.lora;
    const createdAt = Date.now();
    const rowBase = {
      id: newId('adapter'),
      label: run.label,
      baseRepo: run.repo,
      baseRevision: run.revision,
      ...(run.modelStore === 'tuned' ? { baseStore: 'tuned' as const } : {}),
      origin: 'run' as const,
      runId: run.id,
      createdAt,
    };
    const other = t.method.bottleneck
      ? {
          kind: 'bottleneck' as const,
          files: exportBottleneckAdapter({ adapter: bottleneckWeights(t.method.bottleneck, await t.trainableWeights()), baseModel: run.repo }),
          modules: bottleneckKeys(t.method.bottleneck).length,
          summary: bottleneckSummary(t.method.bottleneck),
        }
      : t.method.prompt
        ? {
            kind: 'prompt' as const,
            files: exportPromptTuning({
              baseModel: run.repo,
              ...(run.revision !== DEFAULT_REVISION ? { revision: run.revision } : {}),
              ...t.method.prompt,
              embeddings: (await t.trainableWeights()).get(PROMPT_EMBEDDINGS)!,
            }),
            modules: t.method.prompt.numVirtualTokens,
            summary: promptSummary(t.method.prompt.numVirtualTokens, t.method.prompt.init),
          }
        : undefined;
    if (other) {
      const row: AdapterRow = {
        ...rowBase,
        kind: other.kind,
        r: 0,
        alpha: 0,
        useRslora: false,
        targetModules: [],
        modules: other.modules,
        summary: other.summary,
        config: other.files.get(ADAPTER_CONFIG)!,
        weights: other.files.get(ADAPTER_WEIGHTS)!,
      };
      await (await this.db()).put('adapters', row);
      return adapterEntry(row);
    }
    if (lora) {
      const files = exportPeftAdapter({
        baseModel: run.repo,
        ...(run.revision !== DEFAULT_REVISION ? { revision: run.revision } : {}),
        r: lora.r,
        alpha: lora.alpha,
        useRslora: lora.useRslora,
        dropout: s.lora_dropout,
        targetModules: lora.targetModules,
        fanInFanOut: lm.config.architecture === 'GPT2LMHeadModel',
        modules: loraModuleWeights(lora, await t.trainableWeights()),
      });
      const row: AdapterRow = {
        ...rowBase,
        kind: 'lora',
        r: lora.r,
        alpha: lora.alpha,
        useRslora: lora.useRslora,
        targetModules: lora.targetModules,
        modules: lora.modules.length,
        config: files.get(ADAPTER_CONFIG)!,
        weights: files.get(ADAPTER_WEIGHTS)!,
      };
      await (await this.db()).put('adapters', row);
      return adapterEntry(row);
    }
    // Full and freeze: the whole model, as a Hugging Face folder, in the tuned-models store.
    const weights = new Map<string, WeightTensor>();
    for (const p of lm.model.parameters()) weights.set(p.name, { dtype: 'F32', shape: p.shape, data: await readJoined(lm.model.ctx, p.parts) });
    const source = storeSource(this.storeOf(run.modelStore), run.repo, run.revision);
    const tokenizerFiles = new Map<string, Uint8Array>();
    for (const name of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'vocab.json', 'merges.txt']) {
      const bytes = await source.readFile(name);
      if (bytes) tokenizerFiles.set(name, bytes);
    }
    const generationConfig = await readJson(source, 'generation_config.json', false);
    const files = exportHfModel({ config: await readJson(source, 'config.json', true), weights, tokenizerFiles, ...(generationConfig ? { generationConfig } : {}) });
    const repo = `runs/${run.id}`;
    await putModelFiles(this.tunedModels, repo, DEFAULT_REVISION, files);
    const bytes = [...files.values()].reduce((n, b) => n + b.length, 0);
    // The base to compare with: the model this run started from (for a run on a tuned model, its own base).
    const parent = run.modelStore === 'tuned' ? ((await (await this.db()).get('tuned', run.repo)) as TunedModelRow | undefined) : undefined;
    const row: TunedModelRow = {
      repo,
      label: run.label,
      baseRepo: parent ? parent.baseRepo : run.repo,
      baseRevision: parent ? parent.baseRevision : run.revision,
      ...(parent?.baseStore === 'tuned' ? { baseStore: 'tuned' as const } : {}),
      runId: run.id,
      method: run.finetuningType,
      createdAt,
      bytes,
    };
    await (await this.db()).put('tuned', row);
    return modelEntry(row);
  }

  /**
   * A reward model run's result: the sequence-classification folder (LoRA merged into the decoder, score.weight,
   * no lm_head), kept in the tuned-models store like a full run's model, marked `reward`.
   */
  private async saveRewardModel(run: RunRecord, t: Trainer, lm: LoadedModel): Promise<TunedEntry> {
    const trained = await t.trainableWeights();
    const score = trained.get(SCORE_WEIGHT);
    if (!score) throw new RunFailure('error', 'The reward model run has no score head to save (score.weight).');
    const weights = new Map<string, WeightTensor>();
    for (const p of lm.model.parameters()) weights.set(p.name, { dtype: 'F32', shape: p.shape, data: await readJoined(lm.model.ctx, p.parts) });
    const lora = t.method.lora;
    const source = storeSource(this.storeOf(run.modelStore), run.repo, run.revision);
    const tokenizerFiles = new Map<string, Uint8Array>();
    for (const name of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'vocab.json', 'merges.txt']) {
      const bytes = await source.readFile(name);
      if (bytes) tokenizerFiles.set(name, bytes);
    }
    const generationConfig = await readJson(source, 'generation_config.json', false);
    const files = exportRewardModel({
      config: await readJson(source, 'config.json', true),
      weights,
      ...(lora
        ? { lora: { r: lora.r, alpha: lora.alpha, useRslora: lora.useRslora, fanInFanOut: lm.config.architecture === 'GPT2LMHeadModel', modules: loraModuleWeights(lora, trained) } }
        : {}),
      score,
      padTokenId: lm.tokenizer.padTokenId ?? lm.tokenizer.eosTokenIds[0] ?? 0,
      tokenizerFiles,
      ...(generationConfig ? { generationConfig } : {}),
    });
    const repo = `runs/${run.id}`;
    await putModelFiles(this.tunedModels, repo, DEFAULT_REVISION, files);
    const row: TunedModelRow = {
      repo,
      label: run.label,
      baseRepo: run.repo,
      baseRevision: run.revision,
      ...(run.modelStore === 'tuned' ? { baseStore: 'tuned' as const } : {}),
      runId: run.id,
      method: run.finetuningType,
      createdAt: Date.now(),
      bytes: [...files.values()].reduce((n, b) => n + b.length, 0),
      reward: true,
    };
    await (await this.db()).put('tuned', row);
    return modelEntry(row);
  }

  async pauseTraining(): Promise<void> {
    const a = this.active;
    if (!a) return;
    a.control.pause();
    a.run.status = 'paused';
    a.emit({ kind: 'phase', phase: 'paused' });
    await this.putRun(a.run).catch(() => undefined);
  }

  async resumeTraining(): Promise<void> {
    const a = this.active;
    if (!a) return;
    a.control.resume();
    a.run.status = 'running';
    a.emit({ kind: 'phase', phase: 'training' });
    await this.putRun(a.run).catch(() => undefined);
  }

  async stopTraining(): Promise<void> {
    const a = this.active;
    if (!a) return;
    a.control.stop();
    a.emit({ kind: 'phase', phase: 'checkpoint', message: 'Stopping after this step and saving a checkpoint' });
  }

  async activeRun(): Promise<RunRecord | undefined> {
    return this.active ? structuredClone(this.active.run) : undefined;
  }

  async listRuns(): Promise<RunRecord[]> {
    const runs = (await (await this.db()).getAll('runs')) as RunRecord[];
    return runs.sort((a, b) => b.createdAt - a.createdAt);
  }

  async unfinishedRun(): Promise<RunRecord | undefined> {
    const open: RunStatus[] = ['running', 'paused', 'stopped', 'interrupted', 'failed'];
    for (const run of await this.listRuns()) {
      if (!open.includes(run.status) || this.active?.run.id === run.id) continue;
      const store = new IdbCheckpointStore({ run: run.id });
      try {
        const steps = await store.list();
        const latest = steps[steps.length - 1];
        if (latest === undefined) continue;
        if (run.status === 'running' || run.status === 'paused') {
          // This worker is not running it: the tab that did was closed or reloaded.
          run.status = 'interrupted';
          await this.putRun(run);
        }
        run.checkpointStep = latest;
        return run;
      } finally {
        await store.close();
      }
    }
    return undefined;
  }

  async discardRun(runId: string): Promise<void> {
    if (this.active?.run.id === runId) throw new ModelError('bad-options', 'That run is training now: stop it first.');
    const store = new IdbCheckpointStore({ run: runId });
    try {
      for (const step of await store.list()) await store.delete(step);
    } finally {
      await store.close();
    }
    const run = await this.getRun(runId);
    if (run && run.status !== 'completed') {
      run.status = 'discarded';
      delete run.checkpointStep;
      await this.putRun(run);
    }
  }

  // ---- adapters and tuned models --------------------------------------------------------------------------------

  private async adapterRow(id: string): Promise<AdapterRow | undefined> {
    return (await (await this.db()).get('adapters', id)) as AdapterRow | undefined;
  }

  async listTuned(): Promise<TunedEntry[]> {
    const db = await this.db();
    const adapters = ((await db.getAll('adapters')) as AdapterRow[]).map(adapterEntry);
    const models = ((await db.getAll('tuned')) as TunedModelRow[]).map(modelEntry);
    return [...adapters, ...models].sort((a, b) => b.createdAt - a.createdAt);
  }

  async deleteTuned(ref: TunedRef): Promise<void> {
    const db = await this.db();
    if (ref.kind === 'adapter') {
      await db.delete('adapters', ref.id);
      for (const c of this.cache) if (c.lm.adapters.includes(ref.id)) c.lm.unloadAdapter(ref.id);
      return;
    }
    const i = this.cache.findIndex((c) => c.key === `tuned:${ref.repo}@${DEFAULT_REVISION}`);
    if (i >= 0) this.cache.splice(i, 1)[0]!.lm.dispose();
    await this.tunedModels.deleteModel(ref.repo, DEFAULT_REVISION);
    await db.delete('tuned', ref.repo);
  }

  async importAdapter(files: ExportFile[], baseRepo: string, baseRevision = DEFAULT_REVISION, label?: string): Promise<TunedEntry> {
    const found = new Map<string, Uint8Array>();
    for (const f of files) {
      if (/\.zip$/i.test(f.name)) {
        let entries: Record<string, Uint8Array>;
        try {
          entries = unzipSync(f.bytes);
        } catch (e) {
          throw new ModelError('bad-file', `${f.name} is not a zip file Graft can read (${e instanceof Error ? e.message : String(e)}).`, { file: f.name });
        }
        for (const [path, bytes] of Object.entries(entries)) {
          const base = path.split('/').pop()!;
          if ((base === ADAPTER_CONFIG || base === ADAPTER_WEIGHTS || base === 'adapter_model.bin') && !found.has(base)) found.set(base, bytes);
        }
      } else {
        found.set(f.name.split(/[\\/]/).pop()!, f.bytes);
      }
    }
    const where = label ?? files.map((f) => f.name).join(' + ');
    if (!found.has(ADAPTER_CONFIG) || (!found.has(ADAPTER_WEIGHTS) && !found.has('adapter_model.bin'))) {
      const missing = [ADAPTER_CONFIG, ADAPTER_WEIGHTS].filter((n) => !found.has(n));
      throw new ModelError('missing-file', `${where} lacks ${missing.join(' and ')}: pick the adapter's adapter_config.json and adapter_model.safetensors, or a zip that holds them.`, { file: missing[0]! });
    }
    let configJson: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(decoder.decode(found.get(ADAPTER_CONFIG)!));
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('it is not a JSON object');
      configJson = parsed as Record<string, unknown>;
    } catch (e) {
      throw new ModelError('bad-file', `${where}: ${ADAPTER_CONFIG} cannot be read (${e instanceof Error ? e.message : String(e)}); pick the adapter_config.json that was saved with the adapter.`, { file: ADAPTER_CONFIG });
    }
    const base = await this.models.getModel(baseRepo, baseRevision);
    if (!base?.complete) throw new ModelError('missing-file', `The base model ${baseRepo} is not on this device. Download it on the Model screen first, then import the adapter.`);
    const cfg = parseConfig(await readJson(storeSource(this.models, baseRepo, baseRevision), 'config.json', true));
    const source = memorySource(where, found);
    // The kind as LoadedModel.loadAdapter tells it; each reader checks the folder against the base model and
    // throws a ModelError that names what does not fit (hidden size, layers, modules) and the model it was made for.
    const kind: AdapterKind = isBottleneckConfig(configJson) ? 'bottleneck' : configJson.peft_type === 'PROMPT_TUNING' ? 'prompt' : 'lora';
    const common = {
      id: newId('adapter'),
      label: label?.trim() || `${fileStem(where.replace(/\.zip$/i, ''))} (imported)`,
      baseRepo,
      baseRevision,
      origin: 'import' as const,
      createdAt: Date.now(),
      kind,
      config: found.get(ADAPTER_CONFIG)!,
    };
    let row: AdapterRow;
    if (kind === 'lora') {
      const checked = await readAdapter(source, cfg);
      const targets = Array.isArray(configJson.target_modules) ? configJson.target_modules.map(String) : [...new Set([...checked.modules.keys()].map((m) => m.split('.').pop()!))];
      if (!found.has(ADAPTER_WEIGHTS)) throw new ModelError('missing-file', `${where} holds adapter_model.bin, which Graft cannot keep; save the adapter with safe_serialization (adapter_model.safetensors).`, { file: ADAPTER_WEIGHTS });
      row = {
        ...common,
        r: checked.config.r,
        alpha: checked.config.alpha,
        useRslora: checked.config.useRslora,
        targetModules: targets,
        modules: checked.modules.size,
        weights: found.get(ADAPTER_WEIGHTS)!,
      };
    } else {
      if (!found.has(ADAPTER_WEIGHTS)) throw new ModelError('missing-file', `${where} lacks ${ADAPTER_WEIGHTS}: pick the adapter's adapter_config.json and adapter_model.safetensors, or a zip that holds them.`, { file: ADAPTER_WEIGHTS });
      let modules: number;
      let summary: string;
      if (kind === 'bottleneck') {
        const checked = await readBottleneckAdapter(source, cfg);
        modules = bottleneckKeys(checked.config).length;
        summary = bottleneckSummary(checked.config);
      } else {
        const checked = await readPromptAdapter(source, cfg);
        modules = checked.numVirtualTokens;
        summary = promptSummary(checked.numVirtualTokens, configJson.prompt_tuning_init === 'TEXT' ? 'text' : 'random');
      }
      row = { ...common, r: 0, alpha: 0, useRslora: false, targetModules: [], modules, summary, weights: found.get(ADAPTER_WEIGHTS)! };
    }
    await (await this.db()).put('adapters', row);
    return adapterEntry(row);
  }

  /** Before other GPU work (the benchmark): refuses while a run trains; frees the models kept for comparing. */
  async yieldGpu(what: string): Promise<void> {
    this.checkIdle();
    if (this.generating) throw new ModelError('bad-options', `An answer is being generated. Wait for it, or stop it, before ${what}.`);
    await this.busy;
    await this.dropCache();
    await this.deps.unloadChatModel();
  }

  // ---- reward models -------------------------------------------------------------------------------------------------

  async scoreAnswers(request: ScoreRequest): Promise<ScoreResult> {
    if (this.active) throw new ModelError('bad-options', 'Training is running on the GPU. Score answers when it ends (or stop it).');
    const row = (await (await this.db()).get('tuned', request.rewardRepo)) as TunedModelRow | undefined;
    if (!row?.reward) throw new ModelError('bad-options', 'That reward model is no longer on this device. Train one with stage "rm" on the Method screen.');
    if (!request.prompt.trim()) throw new ModelError('bad-options', 'The prompt is empty: the reward model scores answers to a prompt.');
    if (request.answers.length === 0) throw new ModelError('bad-options', 'There is no answer to score: sample some first.');
    const job = this.busy.then(async () => {
      const rm = await loadRewardModel(await this.deps.gpu(), storeSource(this.tunedModels, request.rewardRepo, DEFAULT_REVISION));
      try {
        const encoded = request.answers.map((answer) =>
          encodeConversation({ messages: [{ role: 'user', content: request.prompt }, { role: 'assistant', content: answer }] }, rm.lm.tokenizer, rm.lm.template, { cutoffLen: rm.lm.maxPositions }),
        );
        const rewards = await rm.head.score(rm.lm.model, encoded.map((e) => e.inputIds), rm.padTokenId);
        return { rewards: [...rewards], tokens: encoded.map((e) => e.inputIds.length), truncated: encoded.map((e) => e.truncated) };
      } finally {
        rm.dispose();
      }
    });
    this.busy = job.catch(() => undefined);
    return job;
  }

  // ---- comparing --------------------------------------------------------------------------------------------------

  async compareGenerate(request: CompareRequest, onToken?: (textDelta: string, id: number) => void): Promise<ChatResult> {
    if (this.active) throw new ModelError('bad-options', 'Training is running on the GPU. Chat when it ends (or stop it).');
    if (this.generating) throw new ModelError('bad-options', 'An answer is being generated. Wait for it, or stop it first.');
    this.generating = true;
    const ctl = new AbortController();
    this.generation = ctl;
    try {
      const job = this.busy.then(() => this.generateNow(request, ctl.signal, onToken));
      this.busy = job.catch(() => undefined);
      return await job;
    } finally {
      this.generating = false;
      if (this.generation === ctl) this.generation = undefined;
    }
  }

  private async generateNow(request: CompareRequest, signal: AbortSignal, onToken?: (textDelta: string, id: number) => void): Promise<ChatResult> {
    const revision = request.baseRevision ?? DEFAULT_REVISION;
    let lm: LoadedModel;
    let adapter: string | null = null;
    const tuned = request.tuned;
    if (tuned?.kind === 'model') {
      const row = (await (await this.db()).get('tuned', tuned.repo)) as TunedModelRow | undefined;
      if (row?.reward) throw new ModelError('bad-options', `${row.label} is a reward model: it scores answers and does not write them. Pick it under "Rank sampled answers".`);
      lm = await this.cachedModel('tuned', tuned.repo, DEFAULT_REVISION);
    } else {
      lm = await this.cachedModel(request.baseStore ?? 'models', request.baseRepo, revision);
      if (tuned?.kind === 'adapter') {
        const row = await this.adapterRow(tuned.id);
        if (!row) throw new ModelError('bad-options', 'That adapter is no longer on this device.');
        if (!lm.adapters.includes(row.id)) await lm.loadAdapter(rowSource(row), row.id);
        adapter = row.id;
      }
    }
    const o = request.options;
    const ids = o.chat === false ? lm.tokenizer.encode(request.prompt) : lm.chatPromptIds(request.prompt);
    if (ids.length === 0) throw new ModelError('bad-options', 'The prompt is empty: write something for the model to answer.');
    const t0 = performance.now();
    const result = await lm.generate(
      ids,
      {
        maxNewTokens: o.maxNewTokens,
        adapter,
        ...(o.greedy !== undefined ? { greedy: o.greedy } : {}),
        ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
        ...(o.topK !== undefined ? { topK: o.topK } : {}),
        ...(o.topP !== undefined ? { topP: o.topP } : {}),
        ...(o.repetitionPenalty !== undefined ? { repetitionPenalty: o.repetitionPenalty } : {}),
        ...(o.seed !== undefined ? { seed: o.seed } : {}),
        ...(o.stopAtEos !== undefined ? { stopAtEos: o.stopAtEos } : {}),
        signal,
      },
      onToken ? (id, delta) => onToken(delta, id) : undefined,
    );
    return { ...result, ms: performance.now() - t0 };
  }

  async stopCompare(): Promise<void> {
    this.generation?.abort();
  }

  // ---- preferences --------------------------------------------------------------------------------------------------

  async addPreference(p: Omit<PreferenceRecord, 'id' | 'createdAt'>): Promise<PreferenceRecord> {
    if (!p.prompt.trim() || !p.chosen.trim() || !p.rejected.trim()) throw new ModelError('bad-options', 'A preference pair needs the prompt and both answers.');
    const db = await this.db();
    const rec = { ...p, createdAt: Date.now() };
    const id = (await db.add('preferences', rec)) as number;
    return { ...rec, id };
  }

  async listPreferences(): Promise<PreferenceRecord[]> {
    return ((await (await this.db()).getAll('preferences')) as PreferenceRecord[]).sort((a, b) => a.id - b.id);
  }

  async deletePreference(id: number): Promise<void> {
    await (await this.db()).delete('preferences', id);
  }

  // ---- exports ------------------------------------------------------------------------------------------------------

  async exportAdapter(id: string, as: 'files' | 'zip'): Promise<ExportFile[]> {
    const row = await this.adapterRow(id);
    if (!row) throw new ModelError('bad-options', 'That adapter is no longer on this device.');
    if (as === 'files') {
      return [
        { name: ADAPTER_CONFIG, bytes: row.config, mime: 'application/json' },
        { name: ADAPTER_WEIGHTS, bytes: row.weights, mime: 'application/octet-stream' },
      ];
    }
    const stem = `${fileStem(row.label)}-${ADAPTER_FOLDER_SUFFIX[rowKind(row)]}`;
    const zip = zipFiles(new Map([[`${stem}/${ADAPTER_CONFIG}`, row.config], [`${stem}/${ADAPTER_WEIGHTS}`, row.weights]]));
    return [{ name: `${stem}.zip`, bytes: zip, mime: 'application/zip' }];
  }

  async exportMergedModel(ref: TunedRef): Promise<ExportFile> {
    let files: Map<string, Uint8Array>;
    let label: string;
    /** What the zip holds: a merged model, or a reward model (a stage rm run's sequence-classification folder). */
    let kind = 'merged';
    if (ref.kind === 'model') {
      const row = (await (await this.db()).get('tuned', ref.repo)) as TunedModelRow | undefined;
      const model = await this.tunedModels.getModel(ref.repo, DEFAULT_REVISION);
      if (!row || !model) throw new ModelError('bad-options', 'That fine-tuned model is no longer on this device.');
      label = row.label;
      if (row.reward) kind = 'reward-model';
      files = new Map();
      for (const f of model.files) files.set(f.path, await this.tunedModels.readFile(ref.repo, DEFAULT_REVISION, f.path));
    } else {
      const row = await this.adapterRow(ref.id);
      if (!row) throw new ModelError('bad-options', 'That adapter is no longer on this device.');
      const refusal = mergeRefusal(rowKind(row));
      if (refusal) throw new ModelError('bad-options', refusal);
      label = row.label;
      const source = storeSource(this.storeOf(row.baseStore), row.baseRepo, row.baseRevision);
      const configJson = await readJson(source, 'config.json', true);
      const cfg = parseConfig(configJson);
      const adapter = await readAdapter(rowSource(row), cfg);
      const base = await SafetensorsWeights.read(source);
      const weights = new Map<string, WeightTensor>();
      for (const name of base.names) {
        const info = base.info(name);
        weights.set(name, { dtype: 'F32', shape: info.shape, data: base.float32(name) });
      }
      base.release();
      const merged = mergeLora(weights, {
        r: adapter.config.r,
        alpha: adapter.config.alpha,
        useRslora: adapter.config.useRslora,
        fanInFanOut: cfg.architecture === 'GPT2LMHeadModel',
        modules: new Map(
          [...adapter.modules].map(([m, w]) => [m, { a: w.a, aShape: [adapter.config.r, w.inFeatures] as const, b: w.b, bShape: [w.outFeatures, adapter.config.r] as const }]),
        ),
      });
      const tokenizerFiles = new Map<string, Uint8Array>();
      for (const name of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'vocab.json', 'merges.txt']) {
        const bytes = await source.readFile(name);
        if (bytes) tokenizerFiles.set(name, bytes);
      }
      const generationConfig = await readJson(source, 'generation_config.json', false);
      files = exportHfModel({ config: configJson, weights: merged, tokenizerFiles, ...(generationConfig ? { generationConfig } : {}) });
    }
    const stem = `${fileStem(label)}-${kind}`;
    const zip = zipFiles(new Map([...files].map(([name, bytes]) => [`${stem}/${name}`, bytes])));
    return { name: `${stem}.zip`, bytes: zip, mime: 'application/zip' };
  }

  private async runOrThrow(runId: string): Promise<RunRecord> {
    const run = await this.getRun(runId);
    if (!run) throw new ModelError('bad-options', 'That training run is no longer on this device.');
    return run;
  }

  private jobSettings(run: RunRecord): TrainSettings {
    const input: Record<string, unknown> = { ...run.input, model_name_or_path: run.repo, dataset: run.datasetName };
    if (run.revision !== DEFAULT_REVISION) input.model_revision = run.revision;
    return parseSettingsWithNotes(input, 'the job').settings;
  }

  async exportLlamaFactoryJob(runId: string): Promise<ExportFile> {
    const run = await this.runOrThrow(runId);
    const refusal = llamaFactoryRefusal(run.finetuningType);
    if (refusal) throw new ModelError('bad-options', refusal);
    const settings = this.jobSettings(run);
    if (settings.stage === 'dpo' || settings.stage === 'rm') {
      // A preference run: its pairs (a file from the Data screen, or the Chat screen's) as a ranking dataset.
      const { pairRecords } = await this.readRecords(run, true).catch(() => {
        throw new ModelError('bad-options', `The preference pairs of ${run.datasetName} are no longer on this device; open them again to export the job.`);
      });
      const job = exportLlamaFactoryJob({ settings, datasetName: run.datasetName.replace(/\.(jsonl?|parquet)$/i, ''), pairs: pairRecords });
      const stem = `${fileStem(run.label)}-llamafactory`;
      return { name: `${stem}.zip`, bytes: zipFiles(new Map([...job.files].map(([name, bytes]) => [`${stem}/${name}`, bytes]))), mime: 'application/zip' };
    }
    let records: Conversation[];
    let format: DatasetFormat;
    try {
      if (run.inlineRecords) {
        records = run.inlineRecords;
        format = 'alpaca';
      } else {
        records = (await datasets.conversations(run.datasetId)).records;
        const f = (await datasets.summary(run.datasetId)).format;
        format = f === null || f === 'mixed' ? 'sharegpt' : f;
      }
    } catch {
      throw new ModelError('bad-options', `The dataset ${run.datasetName} is no longer on this device; open it again on the Data screen to export the job.`);
    }
    const job = exportLlamaFactoryJob({ settings, datasetName: run.datasetName.replace(/\.(jsonl?|parquet)$/i, ''), records, format });
    const stem = `${fileStem(run.label)}-llamafactory`;
    const zip = zipFiles(new Map([...job.files].map(([name, bytes]) => [`${stem}/${name}`, bytes])));
    return { name: `${stem}.zip`, bytes: zip, mime: 'application/zip' };
  }

  async exportTrainingReport(runId: string, chartPng?: Uint8Array): Promise<ExportFile> {
    const run = await this.runOrThrow(runId);
    const stem = `${fileStem(run.label)}-report`;
    const last = run.metrics[run.metrics.length - 1];
    const report = {
      run: run.label,
      model: run.repo,
      revision: run.revision,
      dataset: run.datasetName,
      finetuning_type: run.finetuningType,
      status: run.status,
      steps: run.step,
      total_steps: run.totalSteps,
      final_loss: last?.loss ?? null,
      elapsed_s: last?.elapsed_s ?? null,
      started: new Date(run.createdAt).toISOString(),
      settings: run.input,
      log_history: run.metrics,
      eval_history: run.evalMetrics,
    };
    const files = new Map<string, Uint8Array>([[`${stem}/metrics.json`, jsonBytes(report)]]);
    try {
      files.set(`${stem}/train.yaml`, encoder.encode(settingsToYaml(this.jobSettings(run), { header: [`Written by Graft for the run "${run.label}".`] })));
    } catch {
      // settings that no longer parse: the report keeps them in metrics.json
    }
    if (chartPng && chartPng.length > 0) files.set(`${stem}/loss.png`, chartPng);
    return { name: `${stem}.zip`, bytes: zipFiles(files), mime: 'application/zip' };
  }

  async exportPreferences(): Promise<ExportFile> {
    const pairs = (await this.listPreferences()).map((p) => ({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected }));
    return { name: `graft-preferences-${day(Date.now())}.json`, bytes: jsonBytes(pairs), mime: 'application/json' };
  }

  // ---- the built-in demo -----------------------------------------------------------------------------------------------

  async installDemo(baseUrl: string): Promise<DemoInstall> {
    const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    const get = async (path: string): Promise<Uint8Array> => {
      let res: Response;
      try {
        res = await fetch(new URL(path, base).href);
      } catch (cause) {
        throw new ModelError('missing-file', `The demo's ${path} could not be read from the app (${String(cause)}). Reload the page while online once, so that the app is stored for offline use.`, { file: path });
      }
      if (!res.ok) throw new ModelError('missing-file', `The demo's ${path} is missing from the app (HTTP ${res.status}).`, { file: path });
      return new Uint8Array(await res.arrayBuffer());
    };
    const stored = await this.models.getModel(DEMO_REPO, DEFAULT_REVISION);
    const config = await get('model/config.json');
    const storedConfig = stored?.complete ? await this.models.readFile(DEMO_REPO, DEFAULT_REVISION, 'config.json').catch(() => undefined) : undefined;
    const weights = await get('model/model.safetensors');
    const storedWeightsSize = stored?.files.find((f) => f.path === 'model.safetensors')?.size;
    if (!stored?.complete || !storedConfig || decoder.decode(storedConfig) !== decoder.decode(config) || storedWeightsSize !== weights.length) {
      // A new app version may ship another demo model: replace what is stored.
      if (stored) await this.models.deleteModel(DEMO_REPO, DEFAULT_REVISION);
      const files = new Map<string, Uint8Array>();
      for (const name of DEMO_MODEL_FILES) files.set(name, name === 'config.json' ? config : name === 'model.safetensors' ? weights : await get(`model/${name}`));
      await putModelFiles(this.models, DEMO_REPO, DEFAULT_REVISION, files);
    }
    const dataBytes = await get(DEMO_DATASET_FILE);
    const parsed = parseDatasetText(dataBytes, DEMO_DATASET_FILE);
    if (parsed.problems.length || parsed.records.length === 0) throw new ModelError('bad-file', `The demo's ${DEMO_DATASET_FILE} cannot be read: ${parsed.problems[0]?.reason ?? 'it has no record'}.`);
    this.demoRecords = parsed.records;
    const rows = JSON.parse(decoder.decode(dataBytes)) as { instruction: string; input?: string; output: string }[];
    return {
      repo: DEMO_REPO,
      revision: DEFAULT_REVISION,
      datasetId: DEMO_DATASET,
      datasetName: DEMO_DATASET_FILE,
      pairs: rows.map((r) => ({ question: r.input ? `${r.instruction}\n${r.input}` : r.instruction, answer: r.output })),
    };
  }
}

/** Writes a whole model folder into a store as a complete model. */
async function putModelFiles(store: ModelStore, repo: string, revision: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  await store.planFiles(repo, revision, [...files].map(([path, bytes]) => ({ path, expectedSize: bytes.length })));
  for (const [path, bytes] of files) {
    const w = await store.openWriter(repo, revision, path, { resume: false });
    await w.append(bytes);
    await w.complete();
  }
  await store.markComplete(repo, revision);
}

function bottleneckSummary(c: Pick<BottleneckConfig, 'placement' | 'reductionFactor' | 'size' | 'nonLinearity'>): string {
  return `bottleneck adapter, ${c.placement} (${c.placement === 'houlsby' ? 'after attention and MLP' : 'after the MLP'}), reduction factor ${c.reductionFactor} (size ${c.size}), ${c.nonLinearity}`;
}

function promptSummary(n: number, init: 'random' | 'text'): string {
  return `prompt tuning, ${n} virtual token${n === 1 ? '' : 's'} (${init === 'text' ? 'started from a text' : 'random start'})`;
}

function adapterEntry(row: AdapterRow): TunedEntry {
  const kind = rowKind(row);
  const targets = row.targetModules.length > 4 ? `${row.targetModules.slice(0, 4).join(', ')}, …` : row.targetModules.join(', ');
  return {
    ref: { kind: 'adapter', id: row.id },
    label: row.label,
    baseRepo: row.baseRepo,
    baseRevision: row.baseRevision,
    ...(row.baseStore === 'tuned' ? { baseStore: 'tuned' as const } : {}),
    origin: row.origin,
    method: methodOfAdapter(kind),
    adapterKind: kind,
    ...(row.runId ? { runId: row.runId } : {}),
    createdAt: row.createdAt,
    bytes: row.config.length + row.weights.length,
    detail:
      kind === 'lora'
        ? `LoRA adapter, r ${row.r}, alpha ${row.alpha}${row.useRslora ? ' (rsLoRA)' : ''}, ${row.modules} modules: ${targets}`
        : (row.summary ?? KIND_NAMES[kind]),
  };
}

function modelEntry(row: TunedModelRow): TunedEntry {
  return {
    ref: { kind: 'model', repo: row.repo },
    label: row.label,
    baseRepo: row.baseRepo,
    baseRevision: row.baseRevision,
    ...(row.baseStore === 'tuned' ? { baseStore: 'tuned' as const } : {}),
    origin: 'run',
    method: row.method,
    runId: row.runId,
    createdAt: row.createdAt,
    bytes: row.bytes,
    detail: row.reward
      ? `reward model (sequence classification, ${row.method === 'lora' ? 'LoRA merged in' : row.method === 'full' ? 'every weight trained' : 'last layers trained'})`
      : row.method === 'full'
        ? 'fully fine-tuned model'
        : 'freeze-tuned model (last layers trained)',
    ...(row.reward ? { reward: true as const } : {}),
  };
}

/**
 * The training methods as engine.worker.ts exposes them. Callbacks from the page (comlink proxies) are wrapped
 * by the worker's `withCallback`, passed in here so that a page that went away never breaks a run.
 */
export function trainApi(
  service: TrainService,
  withCallback: <A extends unknown[], T>(fn: ((...args: A) => unknown) | undefined, run: (call?: (...args: A) => void) => Promise<T>) => Promise<T>,
): TrainApi {
  return {
    startTraining: (request, onEvent) => withCallback(onEvent, (call) => service.startTraining(request, call)),
    continueRun: (runId, onEvent) => withCallback(onEvent, (call) => service.continueRun(runId, call)),
    pauseTraining: () => service.pauseTraining(),
    resumeTraining: () => service.resumeTraining(),
    stopTraining: () => service.stopTraining(),
    activeRun: () => service.activeRun(),
    listRuns: () => service.listRuns(),
    unfinishedRun: () => service.unfinishedRun(),
    discardRun: (id) => service.discardRun(id),
    listTuned: () => service.listTuned(),
    deleteTuned: (ref) => service.deleteTuned(ref),
    importAdapter: (files, baseRepo, baseRevision, label) => service.importAdapter(files, baseRepo, baseRevision, label),
    scoreAnswers: (request) => service.scoreAnswers(request),
    compareGenerate: (request, onToken) => withCallback(onToken, (call) => service.compareGenerate(request, call)),
    stopCompare: () => service.stopCompare(),
    addPreference: (p) => service.addPreference(p),
    listPreferences: () => service.listPreferences(),
    deletePreference: (id) => service.deletePreference(id),
    exportAdapter: (id, as) => service.exportAdapter(id, as),
    exportMergedModel: (ref) => service.exportMergedModel(ref),
    exportLlamaFactoryJob: (runId) => service.exportLlamaFactoryJob(runId),
    exportTrainingReport: (runId, png) => service.exportTrainingReport(runId, png),
    exportPreferences: () => service.exportPreferences(),
    installDemo: (baseUrl) => service.installDemo(baseUrl),
  };
}
