// Errors keep their type across the worker boundary: a comlink 'throw' handler that carries GpuErrors, HubErrors
// and the model layer's typed errors (as WorkerErrors) with their codes (docs/worker.md, "Errors across the
// boundary"). Both sides must import this module (the worker and the UI each have their own copy of comlink).
import { transferHandlers, type TransferHandler } from 'comlink';
import { GpuError, type GpuErrorCode } from '../engine/errors';
import { HubError, isSerializedHubError, reviveHubError, serializeHubError } from '../hub/errors';

interface SerializedGpuError {
  graftGpuError: true;
  code: GpuErrorCode;
  message: string;
  stack?: string;
}

/** The model layer's errors whose name and code survive the boundary (as WorkerError). */
export const NAMED_ERRORS = ['ModelError', 'UnsupportedModelError', 'TokenizerError', 'ChatTemplateError', 'SafetensorsError'] as const;

interface SerializedNamedError {
  graftNamedError: true;
  name: string;
  code: string;
  message: string;
  file?: string;
  stack?: string;
}

/** A typed error from the worker's model layer, as the page sees it: name, code and file kept. */
export class WorkerError extends Error {
  readonly code: string;
  readonly file: string | undefined;
  constructor(name: string, code: string, message: string, file?: string) {
    super(message);
    this.name = name;
    this.code = code;
    this.file = file;
  }
}

type Thrown = { value: unknown };

function isSerializedGpuError(v: unknown): v is SerializedGpuError {
  return typeof v === 'object' && v !== null && (v as { graftGpuError?: unknown }).graftGpuError === true;
}

function isSerializedNamedError(v: unknown): v is SerializedNamedError {
  return typeof v === 'object' && v !== null && (v as { graftNamedError?: unknown }).graftNamedError === true;
}

/** Rebuilds a GpuError from its wire form (exported for tests). */
export function reviveGpuError(s: SerializedGpuError): GpuError {
  const e = new GpuError(s.code, s.message);
  if (s.stack) e.stack = s.stack;
  return e;
}

export function reviveNamedError(s: SerializedNamedError): WorkerError {
  const e = new WorkerError(s.name, s.code, s.message, s.file);
  if (s.stack) e.stack = s.stack;
  return e;
}

function namedWire(e: unknown): SerializedNamedError | undefined {
  if (!(e instanceof Error) || !(NAMED_ERRORS as readonly string[]).includes(e.name)) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  const wire: SerializedNamedError = { graftNamedError: true, name: e.name, code, message: e.message };
  const file = (e as { file?: unknown }).file;
  if (typeof file === 'string') wire.file = file;
  if (e.stack) wire.stack = e.stack;
  return wire;
}

let installed = false;

export function installErrorTransfer(): void {
  if (installed) return;
  const builtin = transferHandlers.get('throw') as TransferHandler<Thrown, unknown> | undefined;
  if (!builtin) throw new Error("comlink has no 'throw' transfer handler: check the comlink version");
  const handler: TransferHandler<Thrown, unknown> = {
    canHandle: (v): v is Thrown => builtin.canHandle(v),
    serialize(thrown) {
      const e = thrown.value;
      if (e instanceof GpuError) {
        const wire: SerializedGpuError = { graftGpuError: true, code: e.code, message: e.message };
        if (e.stack) wire.stack = e.stack;
        return [wire, []];
      }
      if (e instanceof HubError) return [serializeHubError(e), []];
      const named = namedWire(e);
      if (named) return [named, []];
      return builtin.serialize(thrown);
    },
    deserialize(wire) {
      if (isSerializedGpuError(wire)) throw reviveGpuError(wire);
      if (isSerializedHubError(wire)) throw reviveHubError(wire);
      if (isSerializedNamedError(wire)) throw reviveNamedError(wire);
      return builtin.deserialize(wire);
    },
  };
  // Map.set on an existing key keeps its position, so this stays ahead of any handler added later.
  transferHandlers.set('throw', handler as TransferHandler<unknown, unknown>);
  installed = true;
}

installErrorTransfer();
