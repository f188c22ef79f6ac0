// Preference data for DPO (and its variants) and reward models: a prompt with a chosen and a rejected answer. The
// record formats, what is refused or flagged, and how pairs are encoded: docs/data.md ("Preference pairs").
// No Node imports: this runs in the browser worker too.
import type { Tokenizer } from '../model/tokenizer';
import type { ChatTemplate } from '../model/chat-template';
import { countTargets, encodeTurns, EncodeError, IGNORE_INDEX, inferSeqlen, type EncodedExample } from './encode';
import { readJsonRecords } from './json-file';
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
  /** What was tolerated in the file (comments, trailing commas), in a sentence. */
  notes: string[];
}

export interface PreferenceParseOptions {
  /** Longest JSON Lines record (line) accepted, in bytes. Default 2 MiB. A JSON list has no such limit. */
  maxRecordBytes?: number;
  /** Rewrites each raw record before it is read (dataset_info.json's columns and tags): see dataset-info.ts. */
  mapRecord?: (record: unknown) => unknown;
}

/**
 * Reads a preference dataset: a JSON array of records or JSON Lines (the container: json-file.ts). Nothing in a
 * file makes this throw; every record that cannot be used is in `problems`, each kept pair whose score prefers
 * the rejected answer in `warnings`.
 */
export function parsePreferenceText(input: string | Uint8Array | ArrayBuffer, fileName: string, options: PreferenceParseOptions = {}): ParsedPreferenceDataset {
  const raw = readJsonRecords(input, fileName, options.maxRecordBytes !== undefined ? { maxRecordBytes: options.maxRecordBytes } : {});
  const records: PreferenceRecord[] = [];
  const problems = raw.problems;
  const warnings: DatasetProblem[] = [];
  const formats = new Set<PreferenceFormat>();
  for (const { value, where } of raw.items) {
    const r = normalisePreferenceRecord(options.mapRecord ? options.mapRecord(value) : value);
    if (!r.ok) {
      problems.push({ ...where, reason: r.reason });
      continue;
    }
    formats.add(r.format);
    const record = { ...r.record, source: where };
    records.push(record);
    const w = scoreWarning(record);
    if (w) warnings.push({ ...where, reason: w });
  }
  problems.sort((a, b) => (a.line ?? a.index ?? 0) - (b.line ?? b.index ?? 0));
  const format = formats.size === 1 ? [...formats][0]! : formats.size > 1 ? 'mixed' : null;
  return { records, problems, warnings, format, container: raw.container, notes: raw.notes };
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
 * Encodes both answers of a pair as LLaMA-Factory's pairwise processor does: the prompt (every turn before the
 * answer, earlier answers included, all labelled −100) and each answer in tokens; the prompt and the LONGER answer
 * share cutoff_len by infer_seqlen, and both answers are cut to that answer length. Throws EncodeError (naming the
 * record) when the rule cannot be applied or an answer has no token left.
 */
export function encodePreferencePair(r: PreferenceRecord, tokenizer: Pick<Tokenizer, 'encode'>, template: Pick<ChatTemplate, 'render'>, options: PreferenceEncodeOptions): EncodedPair {
  const { cutoffLen } = options;
  if (!Number.isInteger(cutoffLen) || cutoffLen < 1) throw new Error(`cutoff_len must be a positive whole number, got ${cutoffLen}`);
  const side = (which: 'chosen' | 'rejected') => {
    const turns = encodeTurns(preferenceConversation(r, which), tokenizer, template);
    const prompt = turns.flatMap((t, k) => (k < turns.length - 1 ? [...t.source, ...t.target] : t.source));
    return { prompt, answer: turns[turns.length - 1]!.target };
  };
  const c = side('chosen');
  const j = side('rejected');
  if (c.prompt.length !== j.prompt.length || c.prompt.some((x, i) => x !== j.prompt[i])) {
    throw new EncodeError(`${describeSource(r.source)}: the prompt's tokens differ between the chosen and the rejected answer, so they cannot share one prompt; the chat template changes the prompt after the answer`, r.source);
  }
  const [sourceLen, targetLen] = inferSeqlen(c.prompt.length, Math.max(c.answer.length, j.answer.length), cutoffLen);
  const prompt = c.prompt.slice(0, sourceLen);
  const example = (answer: number[]): EncodedExample => {
    const kept = answer.slice(0, targetLen);
    const e: EncodedExample = {
      inputIds: [...prompt, ...kept],
      labels: [...new Array<number>(sourceLen).fill(IGNORE_INDEX), ...kept],
      truncated: sourceLen < c.prompt.length || kept.length < answer.length,
      fullLength: c.prompt.length + answer.length,
    };
    if (r.source) e.source = r.source;
    return e;
  };
  const chosen = example(c.answer);
  const rejected = example(j.answer);
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
