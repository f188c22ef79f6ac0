// The UI's handle on the engine worker. The UI never calls WebGPU; everything GPU goes through here.
import { wrap, type Remote } from 'comlink';
import type { EngineApi } from '../worker/api';
import '../worker/transfer';

let engine: Remote<EngineApi> | undefined;

export function getEngine(): Remote<EngineApi> {
  if (!engine) {
    const worker = new Worker(new URL('../worker/engine.worker.ts', import.meta.url), {
      type: 'module',
      name: 'graft-engine',
    });
    engine = wrap<EngineApi>(worker);
  }
  return engine;
}
