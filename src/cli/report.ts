// How a failure reaches the person at the terminal: one line on stderr with the error's own message (Graft's
// typed errors are written as sentences that say what to do), and the exit code. The stack and the chain of
// causes only with GRAFT_DEBUG=1.
import { CodedError } from '../engine/errors';
import { describeFileFailure, fileFailureAdvice, isSystemError } from '../train/file-error';

/**
 * Errors whose message is written for the person: Graft's own classes all carry a string `code` (CodedError,
 * HubError, ModelError, SettingsError, ...); these are printed as they are, without their class name.
 */
function writtenForPerson(e: Error): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && !isSystemError(e);
}

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

/**
 * The one line for stderr (without the newline): the message of Graft's own errors; a file-system error as a
 * sentence naming the file; anything else (a bug) with what to do about it. Never a class name.
 */
export function oneLine(e: unknown, debug: boolean): string {
  const err = e instanceof Error ? e : undefined;
  let text: string;
  if (isSystemError(e)) {
    const what = describeFileFailure(e, e.path ?? 'a file');
    text = `${what[0]!.toUpperCase()}${what.slice(1)}: ${fileFailureAdvice(e.code)}.`;
  } else {
    text = (err ? err.message : String(e)).replace(/\s*\n\s*/g, ' ').trim() || 'an unexpected failure without a message';
    if (err && !writtenForPerson(err) && !debug) text = `${text.replace(/[.\s]+$/, '')} (an unexpected failure, probably a bug in Graft: run again with GRAFT_DEBUG=1 and report what it prints).`;
  }
  return /^graft[ :]/.test(text) ? text : `graft: ${text}`;
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
