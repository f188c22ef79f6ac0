// Typed GPU errors. Each carries a `code` and a message written for the person using Graft: what happened
// and what to do about it. Plain structured cloning drops `code` and `name`; the worker's comlink transfer
// handler (src/worker/transfer.ts) is what carries them across the worker boundary.

export type GpuErrorCode =
  | 'no-webgpu'
  | 'no-adapter'
  | 'device-lost'
  | 'out-of-memory'
  | 'validation'
  | 'limit-exceeded';

/**
 * An error with a `code` a program can act on. Each subclass names itself in `name` (class names do not survive
 * minification); worker/transfer.ts carries name and code across the worker boundary.
 */
export class CodedError<C extends string = string> extends Error {
  constructor(
    name: string,
    readonly code: C,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = name;
  }
}

export class GpuError extends CodedError<GpuErrorCode> {
  constructor(code: GpuErrorCode, message: string, options?: { cause?: unknown }) {
    super('GpuError', code, message, options);
  }
}

export function noWebGpu(where: 'browser' | 'node'): GpuError {
  return new GpuError(
    'no-webgpu',
    where === 'browser'
      ? 'This browser has no WebGPU. Use a current Chrome or Edge (113+), or Safari 26+, or Firefox 141+ on Windows; on Linux start Chrome with --enable-unsafe-webgpu --enable-features=Vulkan.'
      : 'The Node WebGPU binding (npm package "webgpu") could not be loaded. Run `npm ci` in the Graft folder.',
  );
}

export function noAdapter(hint: string): GpuError {
  return new GpuError('no-adapter', `No WebGPU adapter was found. ${hint}`);
}

export function deviceLost(reason: string, message: string): GpuError {
  return new GpuError(
    'device-lost',
    `The GPU device was lost (${reason}${message ? `: ${message}` : ''}). Your stored models and checkpoints are safe; reload the page or restart the command to get a new device, and lower the batch size or sequence length if this happened during training.`,
  );
}

export function outOfMemory(what: string, bytes: number): GpuError {
  return new GpuError(
    'out-of-memory',
    `The GPU ran out of memory while allocating ${what} (${formatBytes(bytes)}). Lower the batch size, sequence length or LoRA rank, or pick a smaller model.`,
  );
}

export function limitExceeded(what: string, bytes: number, limit: number): GpuError {
  return new GpuError(
    'limit-exceeded',
    `${what} needs a buffer of ${formatPair(bytes, limit)[0]}, more than this adapter allows in one buffer (${formatPair(bytes, limit)[1]}). Lower the batch size or sequence length, or pick a smaller model.`,
  );
}

export function validation(message: string): GpuError {
  return new GpuError(
    'validation',
    `A GPU command was rejected, which is a bug in Graft. Please report it with this message: ${message}`,
  );
}

/** Human-readable size; exact bytes are added when rounding would hide the difference between two sizes. */
function formatPair(a: number, b: number): [string, string] {
  const fa = formatBytes(a);
  const fb = formatBytes(b);
  return fa === fb ? [`${fa} (${a} bytes)`, `${fb} (${b} bytes)`] : [fa, fb];
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
