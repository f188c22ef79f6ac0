// A dataset file's container → its raw records: one JSON array (of any size; comments and trailing commas are
// tolerated with a note, through jsonc-parser) or JSON Lines (one record per line, each at most maxRecordBytes).
// The record readers (parse.ts for SFT, preference.ts for pairs) normalise what this
// returns. Nothing in a file makes this throw: problems carry where they are and why. docs/data.md ("Files").
import { createScanner, parse as parseJsonc, type ParseError } from 'jsonc-parser';
import type { DatasetProblem, RecordSource } from './types';

export const DEFAULT_MAX_RECORD_BYTES = 2 * 1024 * 1024;

export interface RawRecords {
  /** Each record's value with where it is (index for a JSON array, line for JSON Lines; both when recovered). */
  items: { value: unknown; where: RecordSource }[];
  problems: DatasetProblem[];
  /** What was tolerated (comments, trailing commas), for the person; at most one sentence. */
  notes: string[];
  /** `json`: one array of records; `jsonl`: one record per line. Decided from the first character that counts. */
  container: 'json' | 'jsonl';
}

export interface ReadJsonOptions {
  /** Longest JSON Lines record (line) accepted, in bytes. Default 2 MiB. A JSON array has no such limit. */
  maxRecordBytes?: number;
}

interface Line {
  /** 1-based */
  number: number;
  text: string | null;
  problem?: string;
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** Offset of the first byte that breaks UTF-8 in `b`, or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n: number;
    let min: number;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      min = 0x10000;
    } else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

const tooLong = (bytes: number, maxBytes: number) => `the line is ${mb(bytes)} long, more than the ${mb(maxBytes)} a JSON Lines record may have`;

/** Lines of bytes that are not all valid UTF-8: each line decoded on its own, so a bad byte costs one line. */
function linesOfBytes(bytes: Uint8Array, maxBytes: number): Line[] {
  const lines: Line[] = [];
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let number = 1;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    let stop = end;
    if (stop > start && bytes[stop - 1] === 0x0d) stop--;
    const slice = bytes.subarray(start, stop);
    if (slice.length > maxBytes) lines.push({ number, text: null, problem: tooLong(slice.length, maxBytes) });
    else {
      try {
        lines.push({ number, text: decoder.decode(slice) });
      } catch {
        const at = firstInvalidUtf8(slice);
        lines.push({ number, text: null, problem: `the line is not valid UTF-8 text (byte ${at + 1} of the line); save the file as UTF-8` });
      }
    }
    if (end === bytes.length) break;
    start = end + 1;
    number++;
  }
  return lines;
}

/** UTF-8 length of a string, without encoding it. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdfff ? 2 : 3; // a surrogate pair: 2 + 2
  }
  return n;
}

function linesOfText(text: string, maxBytes: number): Line[] {
  return text.split('\n').map((raw, i) => {
    const t = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    // UTF-8 takes 1 to 3 bytes per UTF-16 unit: measure only lines that may be too long.
    const bytes = t.length * 3 > maxBytes ? utf8Length(t) : 0;
    if (bytes > maxBytes) return { number: i + 1, text: null, problem: tooLong(bytes, maxBytes) };
    return { number: i + 1, text: t };
  });
}

/** 1-based line and column of a UTF-16 offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = text.indexOf('\n'); i >= 0 && i < end; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: end - lineStart + 1 };
}

/** The character that stands first once whitespace and comments are skipped, or '' for an empty file. */
function firstSignificant(text: string): string {
  const s = createScanner(text, false);
  for (;;) {
    const k = s.scan();
    if (k === 17 /* EOF */) return '';
    if (k === 12 || k === 13 || k === 14 || k === 15) continue; // comments, line breaks, whitespace
    return text.charAt(s.getTokenOffset());
  }
}

/** How many comments and trailing commas (a comma before ] or }) the text holds, outside strings. */
function tolerated(text: string): { comments: number; trailingCommas: number; firstComment?: number; firstComma?: number } {
  const s = createScanner(text, false);
  let comments = 0;
  let trailingCommas = 0;
  let firstComment: number | undefined;
  let firstComma: number | undefined;
  let pendingComma: number | undefined;
  for (let k = s.scan(); k !== 17; k = s.scan()) {
    if (k === 12 || k === 13) {
      comments++;
      firstComment ??= s.getTokenOffset();
      continue;
    }
    if (k === 14 || k === 15) continue;
    if ((k === 2 || k === 4) && pendingComma !== undefined) {
      trailingCommas++;
      firstComma ??= pendingComma;
    }
    pendingComma = k === 5 ? s.getTokenOffset() : undefined;
  }
  return { comments, trailingCommas, ...(firstComment !== undefined ? { firstComment } : {}), ...(firstComma !== undefined ? { firstComma } : {}) };
}

function toleratedNote(text: string, fileName: string): string | undefined {
  const t = tolerated(text);
  if (t.comments === 0 && t.trailingCommas === 0) return undefined;
  const parts: string[] = [];
  if (t.comments) parts.push(`${t.comments} comment${t.comments === 1 ? '' : 's'} (first at line ${lineColumn(text, t.firstComment!).line})`);
  if (t.trailingCommas) parts.push(`${t.trailingCommas} trailing comma${t.trailingCommas === 1 ? '' : 's'} (first at line ${lineColumn(text, t.firstComma!).line})`);
  return `${fileName} is not strict JSON: it has ${parts.join(' and ')}, which were ignored. Other JSON readers (LLaMA-Factory's included) refuse them; remove them to share the file.`;
}

/** A jsonc-parser error as a cause a person can act on. */
function errorCause(e: ParseError, text: string): string {
  const ch = text.charAt(e.offset);
  switch (e.error) {
    case 1: // InvalidSymbol
      if (ch === "'") return 'strings and property names must be in double quotes ("), not single quotes';
      return `unexpected character ${JSON.stringify(ch)}`;
    case 2:
      return 'a malformed number';
    case 3:
      return 'a property name in double quotes is expected';
    case 4:
      return 'a value is expected';
    case 5:
      return 'a colon (:) is expected after the property name';
    case 6:
      return 'a comma is expected between two items (is one missing at the end of the line before?)';
    case 7:
      return 'a closing } is missing';
    case 8:
      return 'a closing ] is missing';
    case 9:
      return 'there is more text after the end of the list';
    case 10:
    case 11:
      return 'a /* comment is not closed with */';
    case 12:
      return 'a string is not closed (a missing ")';
    case 13:
      return 'a number is cut off';
    case 14:
      return 'a malformed \\u escape';
    case 15:
      return 'an unknown escape after a backslash (write \\\\ for a backslash)';
    case 16:
      return 'a control character (a raw line break or tab) inside a string; write \\n or \\t';
    default:
      return 'a syntax error';
  }
}

const isRecordObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One JSON value by JSON.parse, else tolerating comments and trailing commas; the first real error otherwise. */
function parseOne(text: string): { ok: true; value: unknown; lenient: boolean } | { ok: false; error: ParseError } {
  try {
    return { ok: true, value: JSON.parse(text), lenient: false };
  } catch {
    const errors: ParseError[] = [];
    const value: unknown = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false });
    if (errors.length === 0) return { ok: true, value, lenient: true };
    return { ok: false, error: errors[0]! };
  }
}

function causeAt(text: string, e: ParseError): string {
  const at = lineColumn(text, e.offset);
  return `line ${at.line}, column ${at.column}: ${errorCause(e, text)}`;
}

/**
 * A JSON array whose whole-file parse failed (a broken record, bad bytes): when it holds one record per line, as
 * most exported datasets do, read it line by line so that only the broken records are lost. False when the file
 * is not laid out that way.
 */
function recoverArrayByLines(lines: Line[], out: RawRecords): boolean {
  const content = lines.filter((l) => l.problem !== undefined || (l.text ?? '').trim() !== '');
  const fragments: { line: Line; text: string | null }[] = [];
  content.forEach((l, k) => {
    if (l.text === null) return fragments.push({ line: l, text: null });
    let t = l.text.trim();
    if (k === 0 && t.startsWith('[')) t = t.slice(1).trim();
    if (k === content.length - 1 && t.endsWith(']')) t = t.slice(0, -1).trim();
    if (t.endsWith(',')) t = t.slice(0, -1).trim();
    if (t !== '') fragments.push({ line: l, text: t });
  });
  const parsed = fragments.map((f) => {
    if (f.text === null) return { ok: false as const, error: f.line.problem! };
    const p = parseOne(f.text);
    if (!p.ok) return { ok: false as const, error: `not valid JSON at column ${p.error.offset + 1} of the record: ${errorCause(p.error, f.text)}` };
    return isRecordObject(p.value) ? { ok: true as const, value: p.value } : { ok: false as const, error: 'not a JSON object' };
  });
  const good = parsed.filter((p) => p.ok).length;
  if (good === 0 || good * 2 < fragments.length) return false;
  parsed.forEach((p, index) => {
    const line = fragments[index]!.line.number;
    if (p.ok) out.items.push({ value: p.value, where: { line, index } });
    else out.problems.push({ line, index, reason: p.error });
  });
  return true;
}

function readArray(text: string, out: RawRecords, fileName: string, maxBytes: number): void {
  const p = parseOne(text);
  if (p.ok) {
    if (!Array.isArray(p.value)) {
      out.problems.push({ reason: `${fileName} must hold a list of records` });
      return;
    }
    if (p.lenient) {
      const note = toleratedNote(text, fileName);
      if (note) out.notes.push(note);
    }
    p.value.forEach((value, index) => out.items.push({ value, where: { index } }));
    return;
  }
  if (recoverArrayByLines(linesOfText(text, maxBytes), out)) return;
  const at = lineColumn(text, p.error.offset);
  out.problems.push({ line: at.line, reason: `${fileName} is not valid JSON, so no record could be read: ${causeAt(text, p.error)}` });
}

function readLines(lines: Line[], out: RawRecords, fileName: string): void {
  const usable = lines.filter((l) => l.problem !== undefined || (l.text ?? '').trim() !== '');
  // A pretty-printed single object is not JSON Lines; say so instead of reporting each of its lines.
  const first = usable[0];
  if (first?.text && usable.length > 1 && lines.every((l) => l.problem === undefined)) {
    let firstOk = true;
    try {
      JSON.parse(first.text);
    } catch {
      firstOk = false;
    }
    if (!firstOk) {
      const p = parseOne(lines.map((l) => l.text).join('\n'));
      if (p.ok) {
        out.problems.push({
          line: first.number,
          reason: `${fileName} holds a single JSON ${Array.isArray(p.value) ? 'value' : 'object'} spread over several lines; put one record per line (JSON Lines) or wrap the records in a [...] list`,
        });
        return;
      }
    }
  }
  for (const l of usable) {
    if (l.problem !== undefined) {
      out.problems.push({ line: l.number, reason: l.problem });
      continue;
    }
    const p = parseOne(l.text!);
    if (!p.ok) {
      out.problems.push({ line: l.number, reason: `not valid JSON at column ${p.error.offset + 1}: ${errorCause(p.error, l.text!)}` });
      continue;
    }
    if (p.lenient) {
      const note = toleratedNote(l.text!, `line ${l.number}`);
      if (note && out.notes.length === 0) out.notes.push(note.replace(/^line \d+ is/, `${fileName} is`).replace(/\(first at line \d+\)/g, `(first on line ${l.number})`));
    }
    out.items.push({ value: p.value, where: { line: l.number } });
  }
}

/**
 * Reads a dataset file's records. `input`: the text, or the raw bytes (then invalid UTF-8 is reported by line).
 * `fileName` appears in messages about the file as a whole. JSON or JSON Lines is decided first, from the first
 * character that is not whitespace or a comment ("[": one JSON list), so that a JSON list of any size and with
 * any line lengths loads; JSON Lines records are limited to maxRecordBytes each.
 */
export function readJsonRecords(input: string | Uint8Array | ArrayBuffer, fileName: string, options: ReadJsonOptions = {}): RawRecords {
  const maxBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  let text: string | undefined;
  let badBytes: Uint8Array | undefined;
  if (typeof input === 'string') text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  else {
    const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
    } catch {
      badBytes = bytes;
    }
  }
  const out: RawRecords = { items: [], problems: [], notes: [], container: 'jsonl' };
  if (badBytes) {
    // Not all UTF-8: line by line, so that only the lines with bad bytes are lost.
    const lines = linesOfBytes(badBytes, Number.MAX_SAFE_INTEGER);
    const firstText = lines.find((l) => l.text !== null && l.text.trim() !== '');
    out.container = firstText?.text?.trimStart().startsWith('[') ? 'json' : 'jsonl';
    if (out.container === 'json') {
      if (!recoverArrayByLines(lines, out)) {
        const bad = lines.find((l) => l.problem !== undefined)!;
        out.problems.push({ line: bad.number, reason: `${bad.problem}, so ${fileName} cannot be read as one JSON list` });
      }
    } else readLines(lines.map((l) => (l.text !== null && utf8Length(l.text) > maxBytes ? { number: l.number, text: null, problem: tooLong(utf8Length(l.text), maxBytes) } : l)), out, fileName);
    return out;
  }
  const first = firstSignificant(text!);
  if (first === '') {
    out.problems.push({ reason: `${fileName} is empty` });
    return out;
  }
  if (first === '[') {
    out.container = 'json';
    readArray(text!, out, fileName, maxBytes);
  } else readLines(linesOfText(text!, maxBytes), out, fileName);
  return out;
}
