// What the start page shows about the GPU: the adapter the worker found, then the kernel self-test.
// Plain TypeScript so it is type-checked with the rest; the Svelte components only render the state.
import type { Remote } from 'comlink';
import {
  GpuError,
  HubError,
  SELF_TEST_TOLERANCE,
  type AdapterSummary,
  type DownloadProgress,
  type EngineApi,
  type GpuErrorCode,
  type SelfTestResult,
} from '../worker/api';

export interface ErrorInfo {
  name: string;
  code?: GpuErrorCode;
  message: string;
}

export type AdapterState =
  | { status: 'searching' }
  | { status: 'found'; adapter: AdapterSummary }
  | { status: 'missing'; error: ErrorInfo };

export type SelfTestState =
  | { status: 'waiting' }
  | { status: 'running' }
  | { status: 'passed' | 'failed'; result: SelfTestResult }
  | { status: 'error'; error: ErrorInfo }
  | { status: 'skipped' };

export interface GpuCheck {
  adapter: AdapterState;
  selfTest: SelfTestState;
}

/** What tests and curious people can read from the console as `window.__graft`. */
export interface GraftDebug {
  adapter?: AdapterSummary;
  adapterError?: ErrorInfo;
  selfTest?: SelfTestResult;
  selfTestError?: ErrorInfo;
  engine: Remote<EngineApi>;
  GpuError: typeof GpuError;
  HubError: typeof HubError;
  /** Download progress events the Models panel received, oldest first (the last 500). */
  downloadEvents: DownloadProgress[];
  /** The last generation the Chat panel finished. */
  lastGeneration?: { promptIds: number[]; newIds: number[]; text: string; stopReason: string };
}

declare global {
  interface Window {
    __graft?: GraftDebug;
  }
}

export function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof GpuError) return { name: e.name, code: e.code, message: e.message };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: 'Error', message: String(e) };
}

export function selfTestPassed(r: SelfTestResult): boolean {
  return r.n > 0 && r.maxAbsError <= SELF_TEST_TOLERANCE;
}

/** `window.__graft`, created on first use. */
export function graftDebug(engine: Remote<EngineApi>): GraftDebug {
  window.__graft ??= { engine, GpuError, HubError, downloadEvents: [] };
  return window.__graft;
}

/** Asks the worker for the adapter, then runs the self-test; reports each step through `update`. */
export async function runGpuCheck(engine: Remote<EngineApi>, update: (check: GpuCheck) => void): Promise<void> {
  const debug = graftDebug(engine);
  const check: GpuCheck = { adapter: { status: 'searching' }, selfTest: { status: 'waiting' } };
  update({ ...check });
  try {
    const adapter = await engine.adapterInfo();
    debug.adapter = adapter;
    check.adapter = { status: 'found', adapter };
  } catch (e) {
    debug.adapterError = errorInfo(e);
    update({ adapter: { status: 'missing', error: debug.adapterError }, selfTest: { status: 'skipped' } });
    return;
  }
  update({ adapter: check.adapter, selfTest: { status: 'running' } });
  try {
    const result = await engine.selfTest();
    debug.selfTest = result;
    update({ adapter: check.adapter, selfTest: { status: selfTestPassed(result) ? 'passed' : 'failed', result } });
  } catch (e) {
    debug.selfTestError = errorInfo(e);
    update({ adapter: check.adapter, selfTest: { status: 'error', error: debug.selfTestError } });
  }
}
