// What the record readers (normalize.ts for SFT, preference.ts for pairs) share: a record breaks a rule by
// throwing a RecordError with its reason, which the reader turns into { ok: false, reason }.
import type { ChatMessage } from './types';

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

/**
 * An alpaca record's "history" ([[user, assistant], ...], earlier turns first) as messages; none when absent.
 * `answered`: each earlier answer must be non-empty (SFT learns from them).
 */
export function alpacaHistory(history: unknown, answered: boolean): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (history === undefined || history === null) return messages;
  if (!Array.isArray(history)) fail(`"history" must be a list of [user, assistant] pairs, not ${describe(history)}`);
  (history as unknown[]).forEach((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      fail(`"history" item ${i} must be a [user, assistant] pair of strings`);
    }
    const [u, a] = pair as [string, string];
    if (answered && a.trim() === '') fail(`"history" item ${i} has an empty answer`);
    messages.push({ role: 'user', content: u }, { role: 'assistant', content: a });
  });
  return messages;
}
