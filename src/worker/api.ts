// The engine worker's API, as the UI sees it through comlink. The worker owns the GPU: the UI never calls
// WebGPU itself (design rule: ui → worker → engine). Everything here crosses the boundary by structured
// clone, except errors, which keep their class and code through the transfer handler in ./transfer.ts, and
// callbacks (download progress, streamed tokens), which the UI passes wrapped in comlink's `proxy()`.
import type { AdapterSummary } from '../engine/adapter-info';
import type { DownloadProgress } from '../hub/client';
import type { CachedModel } from '../hub/store';
import type { GenerateResult } from '../model/generate';
import type { ModelInfo } from '../model/info';
import type { LoadProgress } from '../model/load';
import type { BenchApi } from './bench-api';
import type { DataApi } from './data-api';
import type { TrainApi } from './train-api';

export type { AdapterSummary } from '../engine/adapter-info';
export type { DownloadProgress } from '../hub/client';
export type { CachedFile, CachedModel } from '../hub/store';
export type { ModelInfo } from '../model/info';
export type { LoadProgress } from '../model/load';
export { GpuError, formatBytes, type GpuErrorCode } from '../engine/errors';
export { HubError, type HubErrorCode } from '../hub/errors';
export { WorkerError } from './transfer';

/** A self-test passes when no output is further than this from the float64 reference. */
export const SELF_TEST_TOLERANCE = 1e-5;

/** Values in the default self-test: not a multiple of the workgroup size, more than one workgroup. */
export const SELF_TEST_DEFAULT_N = 65_539;

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

export interface ChatOptions {
  /** Render the prompt as one user message with the model's chat template and the generation prompt (default true). */
  chat?: boolean;
  maxNewTokens: number;
  greedy?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  /** Default true. */
  stopAtEos?: boolean;
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
