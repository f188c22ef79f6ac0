// Preference data for DPO (and its variants) and reward models: a prompt with a chosen and a rejected answer. The
// record formats, what is refused or flagged, and how pairs are encoded: docs/data.md ("Preference pairs").
// No Node imports: this runs in the browser worker too.
import type { Tokenizer } from '../model/tokenizer';
import type { ChatTemplate } from '../model/chat-template';
import { countTargets, encodeConversation, EncodeError, type EncodedExample } from './encode';
import { firstInvalidUtf8 } from './parse';
import { shuffled, splitTrainVal } from './shuffle';
import { describeSource, type ChatMessage, type Conversation, type DatasetProblem, type RecordSource } from './types';
import { alpacaHistory, describe, fail, isObject, RecordError } from './record-rules';

export type PreferenceFormat = 'pairs' | 'alpaca' | 'ranking';

/** A rating of both answers (higher is better), as some preference datasets carry it. */
export interface PreferenceScore {
  chosen: number;
  rejected: number;
}

/** One preference pair, whatever format it came in. */
export interface PreferenceRecord {
  system?: string;
  /** The conversation the answers reply to: alternating user / assistant turns that end with a user turn. */
  prompt: ChatMessage[];
  chosen: string;
  rejected: string;
  score?: PreferenceScore;
  /** Why the rejected answer was rejected (kept for people; not used in training). */
  rejectReason?: string;
  source?: RecordSource;
}

export type PreferenceNormaliseResult =
  | { ok: true; format: PreferenceFormat; record: PreferenceRecord }
  | { ok: false; format?: PreferenceFormat; reason: string };

const ROLES: Record<string, ChatMessage['role']> = { human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', system: 'system' };

/** Which preference format a record is in; null when it is not a preference record at all. */
export function detectPreferenceFormat(record: unknown): PreferenceFormat | null {
  if (!isObject(record)) return null;
  if (!('chosen' in record) && !('rejected' in record)) return null;
  if ('conversations' in record || 'messages' in record) return 'ranking';
  if ('instruction' in record) return 'alpaca';
  return 'pairs';
}

/** An answer: a string, or one message object {from, value} / {role, content} from the assistant. */
function answer(v: unknown, field: 'chosen' | 'rejected'): string {
  if (v === undefined || v === null) fail(`"${field}" is missing: a preference pair needs a ${field} answer`);
  let text: unknown = v;
  if (isObject(v)) {
    const role = typeof v.from === 'string' ? v.from : typeof v.role === 'string' ? v.role : undefined;
    if (role !== undefined && ROLES[role] !== 'assistant') fail(`"${field}" is a message from "${role}"; it must be the assistant's answer`);
    text = 'value' in v ? v.value : v.content;
  }
  if (typeof text !== 'string') fail(`"${field}" must be a string or a {from, value} message, not ${describe(text)}`);
  if ((text as string).trim() === '') fail(`"${field}" is empty: there is no answer to compare`);
  return text as string;
}

function optionalString(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(`"${field}" must be a string, not ${describe(v)}`);
  return (v as string).trim() === '' ? undefined : (v as string);
}

function score(v: unknown): PreferenceScore | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) fail(`"score" must be an object {chosen, rejected} of numbers, not ${describe(v)}`);
  const s = v as Record<string, unknown>;
  for (const k of ['chosen', 'rejected'] as const) {
    if (typeof s[k] !== 'number' || !Number.isFinite(s[k])) fail(`"score.${k}" must be a number, not ${describe(s[k])}`);
  }
  return { chosen: s.chosen as number, rejected: s.rejected as number };
}

/** Conversation turns (ShareGPT {from, value} or OpenAI {role, content}) → messages; a leading system turn is split off. */
function turns(list: unknown, field: string): { system?: string; messages: ChatMessage[] } {
  if (!Array.isArray(list)) return fail(`"${field}" must be a list of turns, not ${describe(list)}`);
  const messages = list.map((t, i): ChatMessage => {
    if (!isObject(t)) return fail(`"${field}" turn ${i + 1} must be an object`);
    const who = typeof t.from === 'string' ? t.from : typeof t.role === 'string' ? t.role : undefined;
    if (who === undefined) return fail(`"${field}" turn ${i + 1} has no "from" (or "role")`);
    const role = ROLES[who];
    if (!role) return fail(`"${field}" turn ${i + 1} is from "${who}"; the roles understood are human/user, gpt/assistant and system`);
    const text = 'value' in t ? t.value : t.content;
    if (typeof text !== 'string') return fail(`"${field}" turn ${i + 1} has no text`);
    return { role, content: text };
  });
  const out: { system?: string; messages: ChatMessage[] } = { messages };
  if (messages[0]?.role === 'system') {
    const s = messages.shift()!.content;
    if (s.trim() !== '') out.system = s;
  }
  return out;
}

/** The prompt turns must alternate user, assistant, ... and end with a non-empty user turn. */
function checkPrompt(messages: ChatMessage[], field: string): void {
  if (messages.length === 0) fail('the prompt is empty: there is nothing the answers reply to');
  messages.forEach((m, i) => {
    const expected = i % 2 === 0 ? 'user' : 'assistant';
    if (m.role !== expected) fail(`${field}: turn ${i + 1} is from the ${m.role}, but the turns must alternate user, assistant, ... and end with the user's turn that the answers reply to`);
  });
  if (messages.length % 2 === 0) fail(`${field} ends with an assistant turn; it must end with the user's turn that chosen and rejected answer`);
  if (messages[messages.length - 1]!.content.trim() === '') fail('the prompt is empty: the last user turn has no text');
}

function pairsRecord(r: Record<string, unknown>): Omit<PreferenceRecord, 'chosen' | 'rejected'> {
  if (r.prompt === undefined || r.prompt === null) fail('"prompt" is missing');
  if (typeof r.prompt !== 'string') fail(`"prompt" must be a string, not ${describe(r.prompt)}`);
  if ((r.prompt as string).trim() === '') fail('the prompt is empty: there is nothing the answers reply to');
  const system = optionalString(r.system, 'system');
  return { ...(system !== undefined ? { system } : {}), prompt: [{ role: 'user', content: r.prompt as string }] };
}

function alpacaRecord(r: Record<string, unknown>): Omit<PreferenceRecord, 'chosen' | 'rejected'> {
  const { instruction, input } = r;
  if (typeof instruction !== 'string') fail(`"instruction" must be a string, not ${describe(instruction)}`);
  if (input !== undefined && input !== null && typeof input !== 'string') fail(`"input" must be a string, not ${describe(input)}`);
  const inp = typeof input === 'string' ? input : '';
  const user = inp !== '' ? `${instruction as string}\n${inp}` : (instruction as string);
  if (user.trim() === '') fail('the prompt is empty: "instruction" and "input" are both empty');
  const prompt = alpacaHistory(r.history, false);
  prompt.push({ role: 'user', content: user });
  const system = optionalString(r.system, 'system');
  return { ...(system !== undefined ? { system } : {}), prompt };
}

function rankingRecord(r: Record<string, unknown>): Omit<PreferenceRecord, 'chosen' | 'rejected'> {
  const field = 'conversations' in r ? 'conversations' : 'messages';
  const t = turns(r[field], field);
  checkPrompt(t.messages, `"${field}"`);
  const system = optionalString(r.system, 'system') ?? t.system;
  return { ...(system !== undefined ? { system } : {}), prompt: t.messages };
}

/** Normalises one preference record (the formats and rules: docs/data.md, "Preference pairs"). */
export function normalisePreferenceRecord(record: unknown): PreferenceNormaliseResult {
  if (!isObject(record)) return { ok: false, reason: `a record must be a JSON object, not ${describe(record)}` };
  const format = detectPreferenceFormat(record);
  if (format === null) {
    const fields = Object.keys(record).slice(0, 6).map((k) => `"${k}"`).join(', ') || 'none';
    return { ok: false, reason: `not a preference pair (fields ${fields}): expected "prompt", "chosen" and "rejected" (or LLaMA-Factory's ranking format)` };
  }
  try {
    const head = format === 'pairs' ? pairsRecord(record) : format === 'alpaca' ? alpacaRecord(record) : rankingRecord(record);
    const chosen = answer(record.chosen, 'chosen');
    const rejected = answer(record.rejected, 'rejected');
    if (chosen.trim() === rejected.trim()) fail('chosen and rejected are the same answer, so the pair prefers nothing');
    const s = score(record.score);
    const reason = optionalString(record.reject_reason, 'reject_reason');
    const out: PreferenceRecord = { ...head, chosen, rejected };
    if (s) out.score = s;
    if (reason !== undefined) out.rejectReason = reason;
    return { ok: true, format, record: out };
  } catch (e) {
    if (e instanceof RecordError) return { ok: false, format, reason: e.message };
    throw e;
  }
}

/** The warning for a pair whose score rates the chosen answer at or below the rejected one; undefined if none. */
export function scoreWarning(r: Pick<PreferenceRecord, 'score'>): string | undefined {
  const s = r.score;
  if (!s || s.chosen > s.rejected) return undefined;
  return `its score rates the chosen answer ${s.chosen} and the rejected one ${s.rejected}: chosen should score higher; check that the answers are not swapped`;
}

// ---- reading a file ------------------------------------------------------------------------------------------

export interface ParsedPreferenceDataset {
  records: PreferenceRecord[];
  /** Records that were skipped, with where they are and why. */
  problems: DatasetProblem[];
  /** Records that were kept but look wrong (a score that prefers the rejected answer). */
  warnings: DatasetProblem[];
  /** The records' format: one of them, `mixed` when several occur, null when none could be read. */
  format: PreferenceFormat | 'mixed' | null;
  container: 'json' | 'jsonl';
}

export interface PreferenceParseOptions {
  /** Longest record (line) accepted, in bytes. Default 2 MiB. */
  maxRecordBytes?: number;
}

const MAX_RECORD_BYTES = 2 * 1024 * 1024;

interface Line {
  number: number;
  text: string | null;
  problem?: string;
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

function linesOf(input: string | Uint8Array, maxBytes: number): Line[] {
  const out: Line[] = [];
  if (typeof input === 'string') {
    const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
    const enc = new TextEncoder();
    text.split('\n').forEach((raw, i) => {
      const t = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      const bytes = t.length * 3 > maxBytes ? enc.encode(t).length : 0;
      out.push(bytes > maxBytes ? { number: i + 1, text: null, problem: `the line is ${mb(bytes)} long, more than the ${mb(maxBytes)} a record may have` } : { number: i + 1, text: t });
    });
    return out;
  }
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let start = input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf ? 3 : 0;
  for (let number = 1; ; number++) {
    let end = input.indexOf(0x0a, start);
    if (end < 0) end = input.length;
    const stop = end > start && input[end - 1] === 0x0d ? end - 1 : end;
    const slice = input.subarray(start, stop);
    if (slice.length > maxBytes) out.push({ number, text: null, problem: `the line is ${mb(slice.length)} long, more than the ${mb(maxBytes)} a record may have` });
    else {
      try {
        out.push({ number, text: decoder.decode(slice) });
      } catch {
        out.push({ number, text: null, problem: `the line is not valid UTF-8 text (byte ${firstInvalidUtf8(slice) + 1} of the line); save the file as UTF-8` });
      }
    }
    if (end === input.length) break;
    start = end + 1;
  }
  return out;
}

const jsonMessage = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(/\s*\(line \d+ column \d+\)/, '');

/**
 * Reads a preference dataset: a JSON array of records or JSON Lines. Nothing in a file makes this throw; every
 * record that cannot be used is in `problems`, each kept pair whose score prefers the rejected answer in
 * `warnings`.
 */
export function parsePreferenceText(input: string | Uint8Array | ArrayBuffer, fileName: string, options: PreferenceParseOptions = {}): ParsedPreferenceDataset {
  const lines = linesOf(input instanceof ArrayBuffer ? new Uint8Array(input) : input, options.maxRecordBytes ?? MAX_RECORD_BYTES);
  const records: PreferenceRecord[] = [];
  const problems: DatasetProblem[] = [];
  const warnings: DatasetProblem[] = [];
  const formats = new Set<PreferenceFormat>();
  const add = (value: unknown, where: RecordSource) => {
    const r = normalisePreferenceRecord(value);
    if (!r.ok) {
      problems.push({ ...where, reason: r.reason });
      return;
    }
    formats.add(r.format);
    const record = { ...r.record, source: where };
    records.push(record);
    const w = scoreWarning(record);
    if (w) warnings.push({ ...where, reason: w });
  };
  const first = lines.find((l) => l.text === null || l.text.trim() !== '');
  const container: 'json' | 'jsonl' = first?.text?.trimStart().startsWith('[') ? 'json' : 'jsonl';
  if (!first) problems.push({ reason: `${fileName} is empty` });
  else if (container === 'json') {
    const bad = lines.find((l) => l.problem !== undefined);
    if (bad) problems.push({ line: bad.number, reason: `${bad.problem}, so ${fileName} cannot be read as one JSON list` });
    else {
      const text = lines.map((l) => l.text).join('\n');
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        const m = /position (\d+)/.exec(e instanceof Error ? e.message : '');
        const line = m ? text.slice(0, Number(m[1])).split('\n').length : undefined;
        problems.push({ ...(line !== undefined ? { line } : {}), reason: `${fileName} is not valid JSON, so no record could be read: ${jsonMessage(e)}` });
      }
      if (value !== undefined) {
        if (!Array.isArray(value)) problems.push({ reason: `${fileName} must hold a list of records` });
        else value.forEach((v, index) => add(v, { index }));
      }
    }
  } else {
    for (const l of lines) {
      if (l.problem !== undefined) {
        problems.push({ line: l.number, reason: l.problem });
        continue;
      }
      if (l.text!.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(l.text!);
      } catch (e) {
        problems.push({ line: l.number, reason: `not valid JSON: ${jsonMessage(e)}` });
        continue;
      }
      add(value, { line: l.number });
    }
  }
  const format = formats.size === 1 ? [...formats][0]! : formats.size > 1 ? 'mixed' : null;
  return { records, problems, warnings, format, container };
}

// ---- encoding --------------------------------------------------------------------------------------------------

/** The conversation of one answer: the prompt turns, then the answer as the assistant's turn. */
export function preferenceConversation(r: PreferenceRecord, which: 'chosen' | 'rejected'): Conversation {
  const c: Conversation = { messages: [...r.prompt, { role: 'assistant', content: r[which] }] };
  if (r.system !== undefined) c.system = r.system;
  if (r.source) c.source = r.source;
  return c;
}

/** A pair encoded for training: two SFT examples sharing a prompt. */
export interface EncodedPair {
  chosen: EncodedExample;
  rejected: EncodedExample;
  score?: PreferenceScore;
  rejectReason?: string;
  source?: RecordSource;
}

export interface PreferenceEncodeOptions {
  /** `cutoff_len`: each of chosen and rejected is cut to this many tokens. */
  cutoffLen: number;
}

/**
 * Encodes both answers of a pair like SFT examples (prompt labels −100, truncation to cutoff_len). Throws
 * EncodeError (naming the record) when the rule cannot be applied or an answer has no token left.
 */
export function encodePreferencePair(r: PreferenceRecord, tokenizer: Pick<Tokenizer, 'encode'>, template: Pick<ChatTemplate, 'render'>, options: PreferenceEncodeOptions): EncodedPair {
  const chosen = encodeConversation(preferenceConversation(r, 'chosen'), tokenizer, template, { cutoffLen: options.cutoffLen });
  const rejected = encodeConversation(preferenceConversation(r, 'rejected'), tokenizer, template, { cutoffLen: options.cutoffLen });
  for (const [which, e] of [['chosen', chosen], ['rejected', rejected]] as const) {
    if (countTargets(e.labels) === 0) {
      throw new EncodeError(
        `${describeSource(r.source)}: the prompt alone fills cutoff_len (${options.cutoffLen} tokens), so no token of the ${which} answer is left to compare; raise cutoff_len or shorten the prompt`,
        r.source,
      );
    }
  }
  const out: EncodedPair = { chosen, rejected };
  if (r.score) out.score = r.score;
  if (r.rejectReason !== undefined) out.rejectReason = r.rejectReason;
  if (r.source) out.source = r.source;
  return out;
}

export interface PreferenceDataOptions extends PreferenceEncodeOptions {
  /** `val_size`: a fraction in [0, 1) or a number of pairs held out for evaluation. Default 0. */
  valSize?: number;
  /** Seed of the split and the shuffle (default 42). */
  seed?: number;
  /** Shuffle the training pairs (default true). */
  shuffle?: boolean;
}

export interface PreferenceStats {
  pairs: number;
  /** Pairs with an answer longer than cutoff_len (cut). */
  truncatedPairs: number;
  /** Tokens of both answers after truncation. */
  tokens: number;
  /** Labelled (answer) tokens of both answers. */
  targetTokens: number;
}

export interface PreferenceData {
  train: EncodedPair[];
  val: EncodedPair[];
  /** Records that could not be encoded (left out). */
  problems: DatasetProblem[];
  stats: PreferenceStats;
}

export function preferenceStats(pairs: readonly EncodedPair[]): PreferenceStats {
  const s: PreferenceStats = { pairs: pairs.length, truncatedPairs: 0, tokens: 0, targetTokens: 0 };
  for (const p of pairs) {
    if (p.chosen.truncated || p.rejected.truncated) s.truncatedPairs++;
    s.tokens += p.chosen.inputIds.length + p.rejected.inputIds.length;
    s.targetTokens += countTargets(p.chosen.labels) + countTargets(p.rejected.labels);
  }
  return s;
}

/** Records → encoded training and validation pairs: encode, split off val_size with the seed, shuffle the rest. */
export function preparePreferenceData(records: readonly PreferenceRecord[], tokenizer: Pick<Tokenizer, 'encode'>, template: Pick<ChatTemplate, 'render'>, options: PreferenceDataOptions): PreferenceData {
  const seed = options.seed ?? 42;
  const pairs: EncodedPair[] = [];
  const problems: DatasetProblem[] = [];
  for (const r of records) {
    try {
      pairs.push(encodePreferencePair(r, tokenizer, template, options));
    } catch (e) {
      if (!(e instanceof EncodeError)) throw e;
      problems.push({ ...r.source, reason: e.message });
    }
  }
  let { train, val } = splitTrainVal(pairs, options.valSize ?? 0, seed);
  if (!options.valSize) train = options.shuffle === false ? pairs.slice() : shuffled(pairs, seed);
  else if (options.shuffle === false) {
    const order = new Map(pairs.map((p, i) => [p, i]));
    train.sort((a, b) => order.get(a)! - order.get(b)!);
  }
  return { train, val, problems, stats: preferenceStats(train) };
}
