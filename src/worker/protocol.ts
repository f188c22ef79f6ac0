// The engine worker's protocol: every type that crosses the comlink boundary between the page (src/ui) and the
// worker (src/worker), in one file that imports nothing but types (as web-llm keeps its message.ts), so that the
// page and the worker never form an import circle. The values they share (names of built-in things, limits)
// are in ./constants.ts; the error classes that keep their type across the boundary in ./transfer.ts.
import type { TokenStats } from '../data/encode';
import type { Conversation, DatasetFormat, RecordSource } from '../data/types';
import type { AdapterSummary } from '../engine/adapter-info';
import type { DownloadProgress } from '../hub/client';
import type { CachedModel } from '../hub/store';
import type { JobPhase } from '../job/types';
import type { AdapterKind } from '../model/adapters';
import type { GenerateOptions, GenerateResult } from '../model/generate';
import type { MemoryEstimates, ModelInfo, ShapeNumbers } from '../model/info';
import type { LoadProgress } from '../model/load';
import type { EvalRecord, StepRecord, TrainProgress } from '../train/metrics';
import type { FinetuningType, SettingsProblem, TrainSettings } from '../train/settings';
import type { BenchApi } from './bench-api';

export type { AdapterSummary } from '../engine/adapter-info';
export type { DownloadProgress } from '../hub/client';
export type { CachedFile, CachedModel } from '../hub/store';
export type { ModelInfo, MemoryEstimates, ShapeNumbers } from '../model/info';
export type { LoadProgress } from '../model/load';
export type { TokenStats } from '../data/encode';
export type { DatasetFormat, RecordSource } from '../data/types';
export type { SettingsProblem, TrainSettings } from '../train/settings';
export type { EvalRecord, StepRecord, TrainProgress } from '../train/metrics';
export type { AdapterKind } from '../model/adapters';
export type { BenchApi, BenchEvent, BenchReport, BenchRequest, MatmulResult, Measured, PeakResult, TrainBenchResult } from './bench-api';

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

// ---- datasets, encoding, model cards, settings (worker/data-api.ts) ------------------------------------------

/** A problem of the dataset, for the problems list: where (line / record), why, and the row to open. */
export interface ProblemView {
  /** The table row it belongs to; undefined for a problem of the file as a whole. */
  row?: number;
  line?: number;
  index?: number;
  /** "line 7", "record 3", or "the file". */
  where: string;
  reason: string;
}

export interface DatasetSummary {
  id: string;
  name: string;
  bytes: number;
  /** `json`: one array of records; `jsonl`: one record per line. */
  container: 'json' | 'jsonl';
  /** The records' format: one, `mixed`, or null when none could be read. */
  format: DatasetFormat | 'mixed' | null;
  formatCounts: Partial<Record<DatasetFormat, number>>;
  /** Rows in the table (records the file holds, valid or not, removed ones excluded). */
  rows: number;
  /** Records that can be trained on. */
  valid: number;
  /** Every problem (rows and file), in file order; at most MAX_PROBLEMS of them. */
  problems: ProblemView[];
  problemCount: number;
  /** Rows changed (or removed) in the app. */
  edited: number;
}

/** A row's editable fields, by format. */
export type RowFields =
  | { kind: 'alpaca'; instruction: string; input: string; output: string; system: string; history: number }
  | { kind: 'chat'; format: 'sharegpt' | 'openai'; system: string; turns: { role: string; content: string }[] }
  | { kind: 'json'; json: string };

/** An edit of a row: new fields of the same kind, or removing the row from the dataset. */
export type RowEdit = RowFields | { kind: 'removed' };

export interface RowView {
  /** 0-based position in the table. */
  row: number;
  source: RecordSource;
  /** "line 7" / "record 3" */
  where: string;
  format: DatasetFormat | null;
  fields: RowFields;
  /** Why the row cannot be trained on; undefined when it can. */
  problem?: string;
  edited: boolean;
  removed: boolean;
  /** False for rows too large to edit in the page (their text is cut). */
  editable: boolean;
  /** First user message and last answer, for the table. */
  prompt: string;
  answer: string;
  /** Turns (user + assistant messages) of the valid record. */
  turns: number;
}

export interface RowQuery {
  offset: number;
  limit: number;
  /** 'problems': only rows that cannot be trained on. */
  only?: 'all' | 'problems';
}

export interface RowPage {
  rows: RowView[];
  /** Rows matching the query. */
  total: number;
}

export interface RowUpdate {
  row: RowView;
  summary: DatasetSummary;
}

/** Which tokenizer, template and encoding options to use (the settings' names in brackets). */
export interface EncodingChoice {
  repo: string;
  revision?: string;
  /** `cutoff_len` */
  cutoffLen: number;
  /** `train_on_prompt` */
  trainOnPrompt?: boolean;
  /** `mask_history` */
  maskHistory?: boolean;
}

export interface DatasetTokenStats {
  repo: string;
  revision: string;
  cutoffLen: number;
  stats: TokenStats;
  /** Records that could not be encoded (left out of the stats). */
  problems: ProblemView[];
  templateOrigin: string;
  ms: number;
}

export interface TokenView {
  id: number;
  /** The text this token adds (a character split over several tokens shows on the last one). */
  text: string;
  /** The vocabulary entry, e.g. "Ġthe" or "<|im_start|>". */
  token: string;
  /** Its label is the token itself (trained), or -100 (masked: context only). */
  trained: boolean;
  /** Beyond cutoff_len: cut off, not seen in training at all. */
  cut: boolean;
  special: boolean;
}

export interface EncodedRowView {
  row: number;
  where: string;
  repo: string;
  cutoffLen: number;
  /** The conversation rendered with the chat template (what the tokens spell). */
  rendered: string;
  /** Every token of the rendered text, the cut ones included (at most MAX_TOKENS_SHOWN). */
  tokens: TokenView[];
  /** Tokens whose label is the token (within cutoff_len). */
  trained: number;
  /** Tokens labelled -100 (within cutoff_len). */
  masked: number;
  /** Tokens beyond cutoff_len. */
  cut: number;
  fullLength: number;
  /** Tokens not sent because there are more than MAX_TOKENS_SHOWN. */
  omitted: number;
  templateOrigin: string;
}

export interface ModelCard {
  repo: string;
  revision: string;
  /** Where it was read from: this device's store, or the hub (config and weight headers only). */
  from: 'device' | 'hub';
  info: ModelInfo;
  shape: ShapeNumbers;
  /**
   * The largest weight that must fit one storage binding, in bytes as f32 on the GPU. The embedding, lm_head
   * and GPT-2's position table are split by rows when too large (src/model/params.ts), so they are not it.
   */
  largestTensor: { name: string; bytes: number };
  /** Estimates for the asked sequence length and LoRA rank. */
  estimates: MemoryEstimates;
  /** Bytes of every file of the model as stored (device) or of the weight files (hub). */
  downloadBytes: number;
}

export interface SettingsCheck {
  ok: boolean;
  problems: SettingsProblem[];
  /** Accepted keys that change nothing in Graft. */
  notes: string[];
  /** Valid but probably unintended combinations. */
  warnings: string[];
  /** The job as LLaMA-Factory YAML ('' when not valid). */
  yaml: string;
  settings?: TrainSettings;
}

export interface DataApi {
  /** Reads a dataset from bytes (a dropped or picked file; pass the ArrayBuffer with comlink's transfer()) or text (pasted). */
  openDataset(input: ArrayBuffer | string, name: string): Promise<DatasetSummary>;
  /** Fetches and reads a dataset (the built-in samples); `url` must be absolute. */
  openDatasetUrl(url: string, name: string): Promise<DatasetSummary>;
  /** The dataset stored under `id` (after a reload), or undefined when it is gone. */
  restoreDataset(id: string): Promise<DatasetSummary | undefined>;
  datasetSummary(id: string): Promise<DatasetSummary>;
  datasetRows(id: string, query: RowQuery): Promise<RowPage>;
  /** Changes (or removes) one row and validates it again. */
  updateDatasetRow(id: string, row: number, edit: RowEdit): Promise<RowUpdate>;
  /** The dataset with its edits as JSON Lines (valid and invalid rows, removed ones left out). */
  datasetJsonl(id: string): Promise<string>;
  /** Token statistics with a stored model's tokenizer and chat template. */
  datasetTokenStats(id: string, encoding: EncodingChoice): Promise<DatasetTokenStats>;
  /** One row rendered and tokenized, with its labels. Throws EncodeError-like WorkerError when it cannot be encoded. */
  encodeDatasetRow(id: string, row: number, encoding: EncodingChoice): Promise<EncodedRowView>;
  /** Describes a stored model (`from: 'device'`) or one on the hub (config.json and weight headers only). */
  describeModelCard(repo: string, revision: string | undefined, options: { seqLen: number; loraRank: number; from: 'device' | 'hub' }): Promise<ModelCard>;
  /** src/model/info.ts's estimateMemory, for models described by numbers (the built-in list). */
  estimateModelMemory(parameters: number, shape: ShapeNumbers, seqLen: number, loraRank: number): Promise<MemoryEstimates>;
  /** Validates job settings (LLaMA-Factory names) and writes the job YAML; problems are returned, not thrown. */
  checkSettings(input: Record<string, unknown>): Promise<SettingsCheck>;
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
