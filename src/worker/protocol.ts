// The engine worker's protocol: every type that crosses the comlink boundary between the page (src/ui) and the
// worker (src/worker), here and in ./protocol-data.ts (the dataset, encoding, model-card and settings methods,
// re-exported below). Both import nothing but types (as web-llm keeps its message.ts), so that the page and the
// worker never form an import circle. The values they share (names of built-in things, limits) are in
// ./constants.ts; the error classes that keep their type across the boundary in ./transfer.ts.
import type { Conversation } from '../data/types';
import type { AdapterSummary } from '../engine/adapter-info';
import type { SimilarityScores } from '../eval/metrics';
import type { DownloadProgress } from '../hub/client';
import type { CachedModel } from '../hub/store';
import type { JobPhase } from '../job/types';
import type { AdapterKind } from '../model/adapters';
import type { GenerateOptions, GenerateResult } from '../model/generate';
import type { ModelInfo } from '../model/info';
import type { LoadProgress } from '../model/load';
import type { EvalRecord, StepRecord, TrainProgress } from '../train/metrics';
import type { FinetuningType, SettingsProblem } from '../train/settings';
import type { BenchApi } from './bench-api';
import type { DataApi } from './protocol-data';

export type { AdapterSummary } from '../engine/adapter-info';
export type { DownloadProgress } from '../hub/client';
export type { CachedFile, CachedModel } from '../hub/store';
export type { ModelInfo, MemoryEstimates, ShapeNumbers, ByPrecision } from '../model/info';
export type { PlanPrecision } from '../model/memory-plan';
export type { LoadProgress } from '../model/load';
export type { TokenStats } from '../data/encode';
export type { DatasetFormat, RecordSource } from '../data/types';
export type { SettingsProblem, TrainSettings } from '../train/settings';
export type { EvalRecord, StepRecord, TrainProgress } from '../train/metrics';
export type { AdapterKind } from '../model/adapters';
export type { SimilarityScores } from '../eval/metrics';
export type { BenchApi, BenchEvent, BenchReport, BenchRequest, MatmulResult, Measured, PeakResult, TrainBenchResult } from './bench-api';
export type * from './protocol-data';

/** finetuning_type: lora, full, freeze, adapter (bottleneck adapters) or prompt (prompt tuning). */
export type FinetuningKind = FinetuningType;

// ---- the engine: GPU, models, chat ------------------------------------------------------------------------

export interface SelfTestOptions {
  /** How many values to run through the kernel (default SELF_TEST_DEFAULT_N). */
  n?: number;
  /** Seed for the inputs (default 1). */
  seed?: number;
}

export interface SelfTestResult {
  /** The op that ran. */
  kernel: 'swiglu_forward';
  /** Largest |gpu − reference| over all outputs. */
  maxAbsError: number;
  /** Number of values compared. */
  n: number;
  /** The adapter the kernel ran on. */
  adapter: AdapterSummary;
  /** Where the kernel was dispatched from: always 'worker' (the UI has no GPU access). */
  ranIn: 'worker' | 'window';
  /** Wall time of upload, dispatch and readback, in milliseconds. */
  gpuMs: number;
}

/** Where models come from. The token is never sent back to the page, only whether there is one. */
export interface HubSettings {
  /** The hub's address, e.g. https://huggingface.co or a mirror. */
  endpoint: string;
  /** The default endpoint (for a "reset" button). */
  defaultEndpoint: string;
  /** An access token is set (held in the worker's memory, and stored only when rememberToken is on). */
  hasToken: boolean;
  /** The token is stored on this device (IndexedDB) and survives a reload. */
  rememberToken: boolean;
}

export interface HubSettingsUpdate {
  /** '' resets to the default endpoint. */
  endpoint?: string;
  /** A new token; null forgets it (in memory and on the device). */
  token?: string | null;
  rememberToken?: boolean;
}

export interface DownloadRequest {
  /** Branch, tag or commit (default main). */
  revision?: string;
}

export interface StorageInfo {
  /** Bytes this site stores (all of it, not only models). */
  usage?: number;
  /** Bytes it may store. */
  quota?: number;
  /** quota − usage. */
  available?: number;
  /** The browser promised not to evict this site's data (navigator.storage.persisted()). */
  persisted: boolean;
}

export interface LoadedModelSummary {
  repo: string;
  revision: string;
  info: ModelInfo;
  /** Where the chat template came from: the model's own, or Graft's default (ChatML). */
  templateOrigin: string;
  /** Positions (prompt + new tokens) the model was loaded with. */
  maxPositions: number;
  /** Wall time of the load, in milliseconds. */
  loadMs: number;
}

/** The sampling options are GenerateOptions' (model/generate.ts), with their defaults. */
export interface ChatOptions extends Pick<GenerateOptions, 'maxNewTokens' | 'greedy' | 'temperature' | 'topK' | 'topP' | 'repetitionPenalty' | 'seed' | 'stopAtEos'> {
  /** Render the prompt as one user message with the model's chat template and the generation prompt (default true). */
  chat?: boolean;
}

export interface ChatResult extends GenerateResult {
  /** Wall time of the generation (prefill included), in milliseconds. */
  ms: number;
}

/**
 * The datasets, encoding, model descriptions and settings checks of src/worker/data-api.ts are part of it too,
 * and training, comparing, exports and the demo of src/worker/train-api.ts.
 */
export interface EngineApi extends DataApi, TrainApi, BenchApi {
  /** What the browser's WebGPU adapter offers. Throws GpuError 'no-webgpu' or 'no-adapter'. */
  adapterInfo(): Promise<AdapterSummary>;
  /** Runs the SwiGLU kernel on seeded inputs and compares it with the float64 reference. */
  selfTest(options?: SelfTestOptions): Promise<SelfTestResult>;
  /**
   * For tests only (test/browser/faults.test.ts): destroys the worker's current GPU device, as if the browser had
   * lost it, so that what a run does on a lost device can be checked. Resolves false when the worker has no device
   * yet. Changes nothing else: the next GPU call makes a new device, as after a real loss.
   */
  loseDeviceForTest(): Promise<boolean>;

  // Models on this device ------------------------------------------------------------------------------------
  getHubSettings(): Promise<HubSettings>;
  /** Changes the endpoint (stored on this device) and the token. Throws HubError 'bad-response' for a bad address. */
  setHubSettings(update: HubSettingsUpdate): Promise<HubSettings>;
  /**
   * Downloads (or resumes) a model into IndexedDB. `onProgress` must be wrapped in comlink's `proxy()`.
   * Throws HubError ('not-found', 'unauthorized', 'network', 'integrity', 'quota', 'aborted' after
   * cancelDownload, 'bad-response'). A model already complete resolves at once, without any request.
   */
  downloadModel(repo: string, onProgress?: (p: DownloadProgress) => void, request?: DownloadRequest): Promise<CachedModel>;
  /** Cancels a running download (all of them without `repo`); what was stored is kept for resuming. */
  cancelDownload(repo?: string): Promise<boolean>;
  /** The catalogue: every model stored, complete or partial. */
  listModels(): Promise<CachedModel[]>;
  /** Deletes a stored model (cancelling its download and unloading it first). */
  deleteModel(repo: string, revision?: string): Promise<void>;
  storageEstimate(): Promise<StorageInfo>;
  /**
   * Asks the browser to keep this site's data (navigator.storage.persist). Browsers only offer that to pages,
   * not to workers; where the worker cannot ask, this returns whether storage is persisted already, and the
   * page asks itself (src/ui does, on the button press).
   */
  persistStorage(): Promise<boolean>;

  // Chat -----------------------------------------------------------------------------------------------------
  /** Loads a stored model onto the GPU (replacing the loaded one). `onProgress` wrapped in `proxy()`. */
  loadModel(repo: string, revision?: string, onProgress?: (p: LoadProgress) => void): Promise<LoadedModelSummary>;
  /** The loaded model, if any. */
  loadedModel(): Promise<LoadedModelSummary | undefined>;
  unloadModel(): Promise<void>;
  /**
   * Generates from `prompt` with the loaded model; `onToken(textDelta, id)` (wrapped in `proxy()`) streams the
   * text as it is generated. Throws ModelError 'bad-options' (as WorkerError) when no model is loaded.
   */
  generate(prompt: string, options: ChatOptions, onToken?: (textDelta: string, id: number) => void): Promise<ChatResult>;
  /** Stops a running generation; it resolves with stopReason 'aborted' and the tokens so far. */
  stopGeneration(): Promise<void>;
}

// ---- training, results, comparing, exports, the demo ---------------------------------------------------------

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

export type TrainPhase = JobPhase;

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

// ---- the Evaluate screen (src/worker/evaluate.ts) --------------------------------------------------------------

/** The held-out set: a run's own val_size split, a stored dataset's split under the given settings, or pasted pairs. */
export type EvaluateSet =
  | { kind: 'run'; runId: string }
  | { kind: 'dataset'; datasetId: string }
  | { kind: 'pairs'; pairs: { prompt: string; answer: string }[] };

export interface EvaluateRequest {
  baseRepo: string;
  baseRevision?: string;
  /** Where the base model is kept (default: the downloaded models). */
  baseStore?: 'models' | 'tuned';
  /** The result to compare with the base (an adapter or a fine-tuned model), or null for the base alone. */
  tuned: TunedRef | null;
  set: EvaluateSet;
  /**
   * The job's settings (LLaMA-Factory names, the Method screen's): val_size, seed, max_samples and cutoff_len split
   * and cut a dataset, cutoff_len cuts pasted pairs. A run's set uses the run's own settings.
   */
  input?: Record<string, unknown>;
  /** max_new_tokens of the greedy answers. */
  maxNewTokens: number;
  /** At most this many held-out records (the first ones), default all. */
  limit?: number;
}

/** One model's answers as LLaMA-Factory's do_predict writes them. */
export interface EvaluateSide {
  label: string;
  /** predict_results.json's fields (predict_bleu-4, predict_rouge-1/2/l, predict_runtime, ..._per_second). */
  metrics: Record<string, number>;
  /** generated_predictions.jsonl and predict_results.json, the bytes `graft train --do_predict` writes. */
  files: ExportFile[];
}

export interface EvaluateExample {
  /** The prompt as the model saw it (special tokens kept, as LLaMA-Factory's "prompt"). */
  prompt: string;
  reference: string;
  base: string;
  baseScores: SimilarityScores;
  tuned?: string;
  tunedScores?: SimilarityScores;
}

export interface EvaluateResult {
  /** What was answered: "the val_size split of demo_qa.json (2 of 6 records)", "5 pasted pairs". */
  setName: string;
  examples: EvaluateExample[];
  base: EvaluateSide;
  tuned?: EvaluateSide;
  /** Records that could not be turned into a prompt, with why. */
  skipped: { where: string; reason: string }[];
  /** greedy, max_new_tokens, cutoff_len, val_size and seed as used. */
  settings: { max_new_tokens: number; cutoff_len: number; val_size?: number; seed?: number };
}

export type EvaluateEvent =
  | { kind: 'phase'; message: string }
  | { kind: 'progress'; side: 'base' | 'tuned'; done: number; total: number };

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
  /** Renames a result and the run that made it; the name is made unique ("name 2"). */
  renameTuned(ref: TunedRef, label: string): Promise<TunedEntry>;
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

  /**
   * The Evaluate screen: greedy answers of the base (and of `tuned`) to a held-out set, scored with LLaMA-Factory's
   * BLEU-4 and ROUGE (src/job/predict.ts). `onEvent` wrapped in proxy(). stopEvaluation() ends it with
   * JobError 'stopped' after the answer in progress.
   */
  evaluate(request: EvaluateRequest, onEvent?: (e: EvaluateEvent) => void): Promise<EvaluateResult>;
  stopEvaluation(): Promise<void>;

  /** Puts the built-in demo model and dataset (the app's own files under `baseUrl`, e.g. https://host/app/demo/) on the device. */
  installDemo(baseUrl: string): Promise<DemoInstall>;
}
