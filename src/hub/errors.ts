// Typed hub and storage errors. `code` survives structured cloning across the worker boundary; the message
// is written for the person downloading: what happened and what to do about it.

export type HubErrorCode =
  | 'not-found'
  | 'unauthorized'
  | 'network'
  | 'integrity'
  | 'quota'
  | 'aborted'
  | 'bad-response'
  /** The endpoint setting is not a hub address Graft may use (plain http to another computer). */
  | 'bad-endpoint';

export class HubError extends Error {
  readonly code: HubErrorCode;
  /** The repository file the error is about, when there is one. */
  readonly file: string | undefined;
  /** The HTTP status that caused it, when there is one. */
  readonly status: number | undefined;
  constructor(code: HubErrorCode, message: string, options?: { file?: string; status?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HubError';
    this.code = code;
    this.file = options?.file;
    this.status = options?.status;
  }
}

export function isHubError(e: unknown, code?: HubErrorCode): e is HubError {
  return e instanceof HubError && (code === undefined || e.code === code);
}

/** True for a storage-full error from IndexedDB (QuotaExceededError) or the file system (ENOSPC, EDQUOT). */
export function isQuotaError(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as { name?: unknown; code?: unknown; inner?: unknown; cause?: unknown };
  if (x.name === 'QuotaExceededError' || x.code === 'ENOSPC' || x.code === 'EDQUOT') return true;
  // DOMException code 22 is QUOTA_EXCEEDED_ERR in older engines.
  if (x.code === 22 && typeof DOMException !== 'undefined' && e instanceof DOMException) return true;
  return (x.cause !== undefined && x.cause !== e && isQuotaError(x.cause)) || false;
}

export function quotaError(what: string, cause?: unknown): HubError {
  return new HubError(
    'quota',
    `There is not enough storage space for ${what}. Delete models you no longer need (or free disk space), ` +
      'then start the download again: what was already stored is kept and the download resumes.',
    { cause },
  );
}

/** A HubError's wire form for the worker boundary (comlink rebuilds plain Errors otherwise). */
export interface SerializedHubError {
  graftHubError: true;
  code: HubErrorCode;
  message: string;
  file?: string;
  status?: number;
  stack?: string;
}

export function serializeHubError(e: HubError): SerializedHubError {
  const s: SerializedHubError = { graftHubError: true, code: e.code, message: e.message };
  if (e.file !== undefined) s.file = e.file;
  if (e.status !== undefined) s.status = e.status;
  if (e.stack) s.stack = e.stack;
  return s;
}

export function isSerializedHubError(v: unknown): v is SerializedHubError {
  return typeof v === 'object' && v !== null && (v as { graftHubError?: unknown }).graftHubError === true;
}

export function reviveHubError(s: SerializedHubError): HubError {
  const opts: { file?: string; status?: number } = {};
  if (s.file !== undefined) opts.file = s.file;
  if (s.status !== undefined) opts.status = s.status;
  const e = new HubError(s.code, s.message, opts);
  if (s.stack) e.stack = s.stack;
  return e;
}
