// The engine worker as the page sees it: the protocol's types (./protocol.ts), the values page and worker share
// (./constants.ts), and the error classes that keep their type and code across comlink (./transfer.ts). The
// worker owns the GPU: the UI never calls WebGPU itself (ui → worker → engine).
export type * from './protocol';
export * from './constants';
export { GpuError, formatBytes, type GpuErrorCode } from '../engine/errors';
export { HubError, type HubErrorCode } from '../hub/errors';
export { WorkerError } from './transfer';
