// The engine worker's API, as the UI sees it through comlink. The worker owns the GPU: the UI never calls
// WebGPU itself (design rule: ui → worker → engine). Everything here crosses the boundary by structured
// clone, except errors, which keep their class and code through the transfer handler in ./transfer.ts.
import type { AdapterSummary } from '../engine/adapter-info';

export type { AdapterSummary } from '../engine/adapter-info';
export { GpuError, formatBytes, type GpuErrorCode } from '../engine/errors';

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

export interface EngineApi {
  /** What the browser's WebGPU adapter offers. Throws GpuError 'no-webgpu' or 'no-adapter'. */
  adapterInfo(): Promise<AdapterSummary>;
  /** Runs the SwiGLU kernel on seeded inputs and compares it with the float64 reference. */
  selfTest(options?: SelfTestOptions): Promise<SelfTestResult>;
}
