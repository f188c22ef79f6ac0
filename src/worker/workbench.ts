// What the worker's services share: the model stores (downloaded and fine-tuned models), the workbench
// database (runs, adapters, tuned models, preference pairs), the GPU — one piece of GPU work at a time, in the
// order asked — and the models kept on the GPU for comparing.
import type { GpuContext } from '../engine/context';
import { IdbModelStore } from '../hub/store-idb';
import type { ModelStore } from '../hub/store';
import type { LoadedModel } from '../model/load';
import { loadModel } from '../model/load';
import { ModelError, storeSource } from '../model/source';
import type { RunRecord, TrainEvent } from './protocol';
import type { TrainControl } from '../train/trainer';
import { openWorkbenchDb, TUNED_MODELS_DB, type WorkbenchDb } from './workbench-db';

export interface WorkbenchDeps {
  /** The worker's GPU context. */
  gpu(): Promise<GpuContext>;
  /** Frees the GPU memory the chat panel's model holds (before other work loads its own). */
  unloadChatModel(): Promise<void>;
  /** Default: the IndexedDB model store ("graft-models"). */
  models?: ModelStore;
  tunedModels?: ModelStore;
}

export type StoreName = 'models' | 'tuned';

/** The run this worker is training. */
export interface ActiveRun {
  run: RunRecord;
  control: TrainControl;
  emit(e: TrainEvent): void;
}

interface Cached {
  key: string;
  lm: LoadedModel;
  bytes: number;
}

/** Models kept for comparing: at most this many, or one when they are large. */
const MAX_CACHED = 2;
const LARGE_MODEL_BYTES = 512 * 1024 * 1024;

export class Workbench {
  readonly models: ModelStore;
  readonly tunedModels: ModelStore;
  /** The run in progress (or paused), if any. */
  active: ActiveRun | undefined;
  /** An answer is being generated (Chat's compare, the Evaluate screen): one at a time (`generate`). */
  generating = false;
  private dbPromise: Promise<WorkbenchDb> | undefined;
  private busy: Promise<unknown> = Promise.resolve();
  private readonly cache: Cached[] = [];

  constructor(readonly deps: WorkbenchDeps) {
    this.models = deps.models ?? new IdbModelStore();
    this.tunedModels = deps.tunedModels ?? new IdbModelStore({ name: TUNED_MODELS_DB });
  }

  db(): Promise<WorkbenchDb> {
    this.dbPromise ??= openWorkbenchDb().catch((e: unknown) => {
      this.dbPromise = undefined;
      throw e;
    });
    return this.dbPromise;
  }

  store(which: StoreName | undefined): ModelStore {
    return which === 'tuned' ? this.tunedModels : this.models;
  }

  gpu(): Promise<GpuContext> {
    return this.deps.gpu();
  }

  /** Runs GPU work after the work queued before it; a failure does not block what comes after. */
  queue<T>(work: () => Promise<T>): Promise<T> {
    const job = this.busy.then(work);
    this.busy = job.catch(() => undefined);
    return job;
  }

  /** Resolves when the queued GPU work is done. */
  idle(): Promise<unknown> {
    return this.busy;
  }

  /**
   * Generation on the GPU queue, one at a time and never while a run trains (`verb`: what the user may do once it
   * ends, e.g. "Chat"). `checkRequest` (the request's own checks) runs after those refusals, before the
   * generation starts. `slot.ctl` holds the generation's AbortController from before it is queued until it ends,
   * for the service's stop().
   */
  async generate<T>(verb: string, slot: { ctl?: AbortController }, work: (signal: AbortSignal) => Promise<T>, checkRequest?: () => void): Promise<T> {
    if (this.active) throw new ModelError('bad-options', `Training is running on the GPU. ${verb} when it ends (or stop it).`);
    if (this.generating) throw new ModelError('bad-options', 'An answer is being generated. Wait for it, or stop it first.');
    checkRequest?.();
    this.generating = true;
    const ctl = new AbortController();
    slot.ctl = ctl;
    try {
      return await this.queue(() => work(ctl.signal));
    } finally {
      this.generating = false;
      if (slot.ctl === ctl) slot.ctl = undefined;
    }
  }

  /** Throws while a run trains. */
  checkIdle(): void {
    if (this.active) throw new ModelError('bad-options', `A training run ("${this.active.run.label}") is in progress. Stop it first, or wait for it to end.`);
  }

  // ---- models on the GPU for comparing ------------------------------------------------------------------------

  /** Frees the models kept for comparing and the chat panel's (before a run loads its own). */
  async freeGpuModels(): Promise<void> {
    await this.deps.unloadChatModel();
    this.dropCache();
  }

  dropCache(): void {
    for (const c of this.cache.splice(0)) c.lm.dispose();
  }

  /** A stored model on the GPU, loaded or kept from before; least recently used ones make room. */
  async cachedModel(store: StoreName, repo: string, revision: string): Promise<LoadedModel> {
    const key = `${store}:${repo}@${revision}`;
    const hit = this.cache.find((c) => c.key === key);
    if (hit) {
      this.cache.splice(this.cache.indexOf(hit), 1);
      this.cache.push(hit);
      return hit.lm;
    }
    const entry = await this.store(store).getModel(repo, revision);
    const bytes = entry?.totalBytes ?? 0;
    // Make room first: large models one at a time.
    while (this.cache.length >= MAX_CACHED || (this.cache.length > 0 && (bytes > LARGE_MODEL_BYTES || this.cache.some((c) => c.bytes > LARGE_MODEL_BYTES)))) {
      this.cache.shift()!.lm.dispose();
    }
    await this.deps.unloadChatModel();
    const lm = await loadModel(await this.deps.gpu(), storeSource(this.store(store), repo, revision));
    this.cache.push({ key, lm, bytes });
    return lm;
  }

  /** Keeps a model that is already on the GPU (a run's, after it ended) for comparing. */
  remember(store: StoreName, repo: string, revision: string, lm: LoadedModel, bytes: number): void {
    const key = `${store}:${repo}@${revision}`;
    const old = this.cache.findIndex((c) => c.key === key);
    if (old >= 0) this.cache.splice(old, 1)[0]!.lm.dispose();
    while (this.cache.length >= MAX_CACHED) this.cache.shift()!.lm.dispose();
    this.cache.push({ key, lm, bytes });
  }

  /** Frees a kept model (a deleted tuned model). */
  forget(store: StoreName, repo: string, revision: string): void {
    const i = this.cache.findIndex((c) => c.key === `${store}:${repo}@${revision}`);
    if (i >= 0) this.cache.splice(i, 1)[0]!.lm.dispose();
  }

  /** Unloads an adapter from every kept model (a deleted adapter). */
  unloadAdapter(id: string): void {
    for (const c of this.cache) if (c.lm.adapters.includes(id)) c.lm.unloadAdapter(id);
  }
}
