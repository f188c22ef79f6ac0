// What the record readers (normalize.ts for SFT, preference.ts for pairs) share: a record breaks a rule by
// throwing a RecordError with its reason, which the reader turns into { ok: false, reason }.

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class RecordError extends Error {}

export const fail = (reason: string): never => {
  throw new RecordError(reason);
};

/** A value's kind in words, for reasons ("must be a string, not a list"). */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}
