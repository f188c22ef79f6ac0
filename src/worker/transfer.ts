// Errors keep their type across the worker boundary. comlink serializes a thrown Error as a plain
// {name, message, stack} and rebuilds a plain Error, so a GpuError would lose its class and `code`. This
// wraps comlink's built-in 'throw' handler: GpuErrors travel as {name, code, message, stack} and are rebuilt
// as GpuErrors; everything else goes through comlink's own handler unchanged.
//
// Both sides must import this module (the worker and the UI each have their own copy of comlink).
import { transferHandlers, type TransferHandler } from 'comlink';
import { GpuError, type GpuErrorCode } from '../engine/errors';

interface SerializedGpuError {
  graftGpuError: true;
  code: GpuErrorCode;
  message: string;
  stack?: string;
}

type Thrown = { value: unknown };

function isSerializedGpuError(v: unknown): v is SerializedGpuError {
  return typeof v === 'object' && v !== null && (v as { graftGpuError?: unknown }).graftGpuError === true;
}

/** Rebuilds a GpuError from its wire form (exported for tests). */
export function reviveGpuError(s: SerializedGpuError): GpuError {
  const e = new GpuError(s.code, s.message);
  if (s.stack) e.stack = s.stack;
  return e;
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
      return builtin.serialize(thrown);
    },
    deserialize(wire) {
      if (isSerializedGpuError(wire)) throw reviveGpuError(wire);
      return builtin.deserialize(wire);
    },
  };
  // Map.set on an existing key keeps its position, so this stays ahead of any handler added later.
  transferHandlers.set('throw', handler as TransferHandler<unknown, unknown>);
  installed = true;
}

installErrorTransfer();
