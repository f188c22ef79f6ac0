// How a failure reaches the person at the terminal: one line on stderr with the error's own message (Graft's
// typed errors are written as sentences that say what to do), and the exit code. The stack and the chain of
// causes only with GRAFT_DEBUG=1.
import { CodedError } from '../engine/errors';

/** Errors whose message is written for the person: no hint about GRAFT_DEBUG is added to them. */
const TYPED = new Set([
  'UsageError',
  'CliError',
  'HubError',
  'GpuError',
  'SafetensorsError',
  'UnsupportedModelError',
  'TokenizerError',
  'ChatTemplateError',
  'AdapterError',
  'ModelError',
  'GenerateError',
]);

/** A failure the CLI itself diagnosed (a missing folder, a bad adapter path). Exit code 1. */
export class CliError extends CodedError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('CliError', code, message, options);
  }
}

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

export function exitCodeFor(e: unknown): number {
  const x = e as { name?: unknown; code?: unknown };
  if (x?.name === 'UsageError') return EXIT_USAGE;
  if (x?.name === 'HubError' && x.code === 'aborted') return EXIT_INTERRUPTED;
  if (x?.name === 'AbortError') return EXIT_INTERRUPTED;
  return EXIT_FAILURE;
}

/** The one line for stderr (without the newline). */
export function oneLine(e: unknown, debug: boolean): string {
  const err = e instanceof Error ? e : undefined;
  let message = err ? err.message : String(e);
  message = message.replace(/\s*\n\s*/g, ' ').trim() || (err?.name ?? 'Error');
  const name = err?.name ?? '';
  const typed = TYPED.has(name);
  // Unexpected errors keep their class name, which is often all that tells a bug apart ("TypeError: ...").
  const text = typed || !err ? message : `${name || 'Error'}: ${message}`;
  const prefixed = /^graft[ :]/.test(text) ? text : `graft: ${text}`;
  return `${prefixed}${typed || debug ? '' : ' (set GRAFT_DEBUG=1 to see where)'}`;
}

/** The stack and causes, for GRAFT_DEBUG=1. */
export function debugDetails(e: unknown): string {
  const out: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && depth < 8; depth++) {
    if (cur instanceof Error) {
      out.push(depth === 0 ? (cur.stack ?? String(cur)) : `caused by: ${cur.stack ?? String(cur)}`);
      cur = (cur as { cause?: unknown }).cause;
    } else {
      if (depth > 0) out.push(`caused by: ${String(cur)}`);
      break;
    }
  }
  return out.join('\n');
}
