// The engine worker: the only place in the web app that touches WebGPU. The UI talks to it through the
// typed comlink API in ./api.ts.
import { expose } from 'comlink';
import { requestBrowserAdapter } from '../engine/adapter-browser';
import { summarizeAdapter } from '../engine/adapter-info';
import { GpuContext } from '../engine/context';
import type { AdapterSummary, EngineApi, SelfTestOptions, SelfTestResult } from './api';
import { runSelfTest } from './selftest';
import './transfer';

let context: Promise<GpuContext> | undefined;

/** One device for the worker's life; a lost device is replaced on the next call. */
async function getContext(): Promise<GpuContext> {
  if (context) {
    const ctx = await context.catch(() => undefined);
    if (ctx && !ctx.isLost) return ctx;
  }
  context = requestBrowserAdapter().then((adapter) => GpuContext.create(adapter));
  return context;
}

const api: EngineApi = {
  async adapterInfo(): Promise<AdapterSummary> {
    return summarizeAdapter(await requestBrowserAdapter());
  },
  async selfTest(options?: SelfTestOptions): Promise<SelfTestResult> {
    return runSelfTest(await getContext(), options);
  },
};

expose(api);
