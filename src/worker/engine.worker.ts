// The engine worker: the only place in the web app that touches WebGPU. The UI talks to it through the
// typed comlink API in ./api.ts. Callbacks from the page (progress, streamed tokens) arrive as comlink
// proxies; calling one posts a message back to the page, so they are called without waiting and released
// when the call they belong to ends.
import { expose, releaseProxy, type Remote } from 'comlink';
import { requestBrowserAdapter } from '../engine/adapter-browser';
import { summarizeAdapter } from '../engine/adapter-info';
import { installCachedPlans } from '../engine/autotune';
import { GpuContext } from '../engine/context';
import { IdbModelStore } from '../hub/store-idb';
import type { AdapterSummary, EngineApi, SelfTestOptions, SelfTestResult } from './protocol';
import { benchApi, BenchService } from './bench-api';
import { dataApi } from './data-api';
import { ModelService } from './models';
import { runSelfTest } from './selftest';
import { HubSettingsStore } from './settings';
import { createTrainServices } from './train-api';
import { IdbTuneCache } from './tune-cache-idb';
import './transfer';

let context: Promise<GpuContext> | undefined;
const tuneCache = new IdbTuneCache();

/** One device for the worker's life; a lost device is replaced on the next call. */
async function getContext(): Promise<GpuContext> {
  if (context) {
    const ctx = await context.catch(() => undefined);
    if (ctx && !ctx.isLost) return ctx;
  }
  context = requestBrowserAdapter()
    .then((adapter) => GpuContext.create(adapter))
    .then(async (ctx) => {
      // The matmul plans the Bench screen tuned on this GPU: training and generation on this context run them.
      await installCachedPlans(ctx, tuneCache).catch((e: unknown) => console.warn('Graft: the tuned matmul plans could not be read.', e));
      return ctx;
    });
  return context;
}

const modelStore = new IdbModelStore();
const models = new ModelService(modelStore, new HubSettingsStore(), getContext);

/**
 * A page callback (a comlink proxy) as a plain function that never throws and never waits: a page that went
 * away must not break the work. `release()` frees the proxy's port.
 */
function callback<A extends unknown[]>(fn: ((...args: A) => unknown) | undefined): { call?: (...args: A) => void; release(): void } {
  if (!fn) return { release() {} };
  return {
    call: (...args: A) => {
      try {
        void Promise.resolve(fn(...args)).catch(() => undefined);
      } catch {
        // the page is gone
      }
    },
    release() {
      const r = (fn as unknown as Partial<Remote<() => void>>)[releaseProxy];
      if (typeof r === 'function') r.call(fn);
    },
  };
}

async function withCallback<A extends unknown[], T>(fn: ((...args: A) => unknown) | undefined, run: (call?: (...args: A) => void) => Promise<T>): Promise<T> {
  const cb = callback(fn);
  try {
    return await run(cb.call);
  } finally {
    cb.release();
  }
}

const { yieldGpu, ...training } = createTrainServices({ gpu: getContext, unloadChatModel: () => models.unloadModel() }, withCallback);
const bench = new BenchService({ gpu: getContext, models: modelStore, beforeGpuWork: () => yieldGpu('the benchmark'), tuneCache });

const api: EngineApi = {
  async adapterInfo(): Promise<AdapterSummary> {
    return summarizeAdapter(await requestBrowserAdapter());
  },
  async selfTest(options?: SelfTestOptions): Promise<SelfTestResult> {
    return runSelfTest(await getContext(), options);
  },
  // For tests only: the device every service shares (getContext's), destroyed the way a lost device ends.
  async loseDeviceForTest(): Promise<boolean> {
    const ctx = await context?.catch(() => undefined);
    if (!ctx) return false;
    ctx.device.destroy();
    return true;
  },

  getHubSettings: () => models.getHubSettings(),
  setHubSettings: (update) => models.setHubSettings(update),
  downloadModel: (repo, onProgress, request) =>
    withCallback(onProgress, (call) => models.downloadModel(repo, call, request?.revision)),
  cancelDownload: async (repo) => models.cancelDownload(repo),
  listModels: () => models.listModels(),
  deleteModel: (repo, revision) => models.deleteModel(repo, revision),
  storageEstimate: () => models.storageEstimate(),
  persistStorage: () => models.persistStorage(),

  loadModel: (repo, revision, onProgress) => withCallback(onProgress, (call) => models.loadModel(repo, revision, call)),
  loadedModel: async () => models.loadedModel(),
  unloadModel: () => models.unloadModel(),
  generate: (prompt, options, onToken) => withCallback(onToken, (call) => models.generate(prompt, options, call)),
  stopGeneration: async () => models.stopGeneration(),

  // Datasets, encoding, model descriptions and settings checks (src/worker/data-api.ts).
  ...dataApi,
  // Training, comparing base and tuned, exports and the demo (src/worker/train-api.ts).
  ...training,
  // The benchmark (src/worker/bench-api.ts).
  ...benchApi(bench, withCallback),
};

expose(api);
