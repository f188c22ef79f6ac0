// The worker's models: hub downloads into IndexedDB (cancellable, resumable), the catalogue, storage, and one
// model loaded on the GPU for chat. engine.worker.ts exposes this through comlink; it takes plain callbacks so
// that it can be driven without a worker too.
import type { GpuContext } from '../engine/context';
import { DEFAULT_REVISION, downloadModel, type DownloadProgress } from '../hub/client';
import { checkRepo, type CachedModel, type ModelStore } from '../hub/store';
import { ModelError, storeSource } from '../model/source';
import { loadModel, type LoadedModel, type LoadProgress } from '../model/load';
import type { ChatOptions, ChatResult, HubSettings, HubSettingsUpdate, LoadedModelSummary, StorageInfo } from './protocol';
import { answerPrompt } from './answer';
import type { HubSettingsStore } from './settings';

interface Loaded {
  repo: string;
  revision: string;
  model: LoadedModel;
  summary: LoadedModelSummary;
}

interface RunningDownload {
  ctl: AbortController;
  listeners: Set<(p: DownloadProgress) => void>;
  promise: Promise<CachedModel>;
}

const key = (repo: string, revision: string) => `${repo}@${revision}`;

export class ModelService {
  private readonly downloads = new Map<string, RunningDownload>();
  private loaded: Loaded | undefined;
  private loading: Promise<unknown> = Promise.resolve();
  private generation: AbortController | undefined;

  constructor(
    private readonly store: ModelStore,
    private readonly settings: HubSettingsStore,
    private readonly gpu: () => Promise<GpuContext>,
  ) {}

  getHubSettings(): Promise<HubSettings> {
    return this.settings.get();
  }

  setHubSettings(update: HubSettingsUpdate): Promise<HubSettings> {
    return this.settings.update(update);
  }

  /**
   * Downloads or resumes a model. A second call for a model that is already downloading joins the running
   * download (its progress goes to both callers) instead of starting another writer.
   */
  async downloadModel(repo: string, onProgress?: (p: DownloadProgress) => void, revision = DEFAULT_REVISION): Promise<CachedModel> {
    repo = repo.trim();
    checkRepo(repo);
    const k = key(repo, revision);
    let running = this.downloads.get(k);
    if (!running) {
      const listeners = new Set<(p: DownloadProgress) => void>();
      const ctl = new AbortController();
      const promise = (async () => {
        const hub = await this.settings.current();
        return downloadModel(repo, this.store, {
          ...hub,
          revision,
          signal: ctl.signal,
          onProgress: (p) => listeners.forEach((l) => l(p)),
        });
      })().finally(() => this.downloads.delete(k));
      running = { ctl, listeners, promise };
      this.downloads.set(k, running);
    }
    if (onProgress) running.listeners.add(onProgress);
    try {
      return await running.promise;
    } finally {
      if (onProgress) running.listeners.delete(onProgress);
    }
  }

  cancelDownload(repo?: string): boolean {
    let any = false;
    for (const [k, d] of this.downloads) {
      if (repo === undefined || k.startsWith(`${repo.trim()}@`)) {
        d.ctl.abort();
        any = true;
      }
    }
    return any;
  }

  listModels(): Promise<CachedModel[]> {
    return this.store.listModels();
  }

  async deleteModel(repo: string, revision = DEFAULT_REVISION): Promise<void> {
    const running = this.downloads.get(key(repo, revision));
    if (running) {
      running.ctl.abort();
      // Let the download notice the abort and close its writer before the bytes go.
      await running.promise.catch(() => undefined);
    }
    if (this.loaded?.repo === repo && this.loaded.revision === revision) await this.unloadModel();
    await this.store.deleteModel(repo, revision);
  }

  async storageEstimate(): Promise<StorageInfo> {
    const e = await this.store.estimate();
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    const persisted = storage?.persisted ? await storage.persisted().catch(() => false) : false;
    return { ...e, persisted };
  }

  async persistStorage(): Promise<boolean> {
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    // navigator.storage.persist() exists on pages only; a worker can just tell whether it is already granted.
    if (storage && typeof storage.persist === 'function') return storage.persist();
    return storage?.persisted ? storage.persisted() : false;
  }

  loadModel(repo: string, revision = DEFAULT_REVISION, onProgress?: (p: LoadProgress) => void): Promise<LoadedModelSummary> {
    // Loads run one after another, so two quick clicks never leave two models on the GPU.
    const run = this.loading.then(() => this.doLoad(repo.trim(), revision, onProgress));
    this.loading = run.catch(() => undefined);
    return run;
  }

  private async doLoad(repo: string, revision: string, onProgress?: (p: LoadProgress) => void): Promise<LoadedModelSummary> {
    if (this.loaded?.repo === repo && this.loaded.revision === revision) return this.loaded.summary;
    const entry = await this.store.getModel(repo, revision);
    if (!entry) throw new ModelError('missing-file', `${repo} is not stored on this device. Download it first.`);
    if (!entry.complete) {
      throw new ModelError('missing-file', `${repo} is only partly downloaded. Resume the download (press Download again), then load it.`);
    }
    await this.unloadModel();
    const ctx = await this.gpu();
    const t0 = performance.now();
    const model = await loadModel(ctx, storeSource(this.store, repo, revision), onProgress ? { onProgress } : {});
    const summary: LoadedModelSummary = {
      repo,
      revision,
      info: model.info,
      templateOrigin: model.template.origin,
      maxPositions: model.maxPositions,
      loadMs: performance.now() - t0,
    };
    this.loaded = { repo, revision, model, summary };
    return summary;
  }

  loadedModel(): LoadedModelSummary | undefined {
    return this.loaded?.summary;
  }

  async unloadModel(): Promise<void> {
    const l = this.loaded;
    this.loaded = undefined;
    if (!l) return;
    this.generation?.abort();
    l.model.dispose();
  }

  async generate(prompt: string, options: ChatOptions, onToken?: (textDelta: string, id: number) => void): Promise<ChatResult> {
    const l = this.loaded;
    if (!l) throw new ModelError('bad-options', 'No model is loaded. Pick a downloaded model and press Load first.');
    if (this.generation) throw new ModelError('bad-options', 'A generation is already running. Stop it first, or wait for it to end.');
    const ctl = new AbortController();
    this.generation = ctl;
    try {
      return await answerPrompt(l.model, prompt, options, { signal: ctl.signal }, onToken);
    } finally {
      if (this.generation === ctl) this.generation = undefined;
    }
  }

  stopGeneration(): void {
    this.generation?.abort();
  }
}
