// Reading a dataset file: JSON (one array of records) or JSON Lines (one record per line), as text or bytes.
// Every record that cannot be used is skipped and reported with where it is (line for JSON Lines, 1-based;
// index for a JSON array, 0-based) and why; the rest is read. Nothing in a file makes this throw.
import { normaliseRecord } from './normalize';
import type { Conversation, DatasetFormat, DatasetProblem } from './types';

export interface ParseOptions {
  /** The records' format; when left out it is detected per record (files may mix ShareGPT and OpenAI). */
  format?: DatasetFormat;
  /** Longest record (line) accepted, in bytes. Default 2 MiB, far beyond any `cutoff_len`. */
  maxRecordBytes?: number;
}

export interface ParsedDataset {
  records: Conversation[];
  problems: DatasetProblem[];
  /** The records' format: one of them, `mixed` when several occur, null when no record could be read. */
  format: DatasetFormat | 'mixed' | null;
  /** How many records of each format were read. */
  formatCounts: Partial<Record<DatasetFormat, number>>;
  /** `json`: one array of records; `jsonl`: one record per line. Detected from the content. */
  container: 'json' | 'jsonl';
}

export const DEFAULT_MAX_RECORD_BYTES = 2 * 1024 * 1024;

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
    if (slice.length > maxBytes) {
      lines.push({ number, text: null, problem: `the line is ${mb(slice.length)} long, more than the ${mb(maxBytes)} a record may have` });
    } else {
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
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text.split('\n').map((raw, i) => {
    const t = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    // UTF-8 takes 1 to 3 bytes per UTF-16 unit: measure only lines that may be too long.
    const bytes = t.length * 3 > maxBytes ? utf8Length(t) : 0;
    if (bytes > maxBytes) {
      return { number: i + 1, text: null, problem: `the line is ${mb(bytes)} long, more than the ${mb(maxBytes)} a record may have` };
    }
    return { number: i + 1, text: t };
  });
}

/** The line of a JSON.parse error, from its "line N" or "position N" (V8's two message styles). */
function errorLine(message: string, text: string): number | undefined {
  const line = /line (\d+)/.exec(message);
  if (line) return Number(line[1]);
  const pos = /position (\d+)/.exec(message);
  if (!pos) return undefined;
  let n = 1;
  const end = Math.min(Number(pos[1]), text.length);
  for (let i = 0; i < end; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

const jsonMessage = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(/\s*\(line \d+ column \d+\)/, '');

class Collector {
  readonly records: Conversation[] = [];
  readonly problems: DatasetProblem[] = [];
  readonly counts: Partial<Record<DatasetFormat, number>> = {};
  constructor(private readonly format: DatasetFormat | undefined) {}

  add(value: unknown, where: { line?: number; index?: number }): void {
    const r = normaliseRecord(value, this.format);
    if (r.ok) {
      this.records.push({ ...r.conversation, source: where });
      this.counts[r.format] = (this.counts[r.format] ?? 0) + 1;
    } else {
      this.problems.push({ ...where, reason: r.reason });
    }
  }

  result(container: 'json' | 'jsonl'): ParsedDataset {
    const kinds = Object.keys(this.counts) as DatasetFormat[];
    const format = kinds.length === 1 ? kinds[0]! : kinds.length > 1 ? 'mixed' : (this.format ?? null);
    this.problems.sort((a, b) => (a.line ?? a.index ?? 0) - (b.line ?? b.index ?? 0));
    return { records: this.records, problems: this.problems, format, formatCounts: this.counts, container };
  }
}

function parseJsonLines(lines: Line[], out: Collector, fileName: string): void {
  const usable = lines.filter((l) => l.problem !== undefined || (l.text ?? '').trim() !== '');
  // A pretty-printed single object is not JSON Lines; say so instead of reporting each of its lines.
  const first = usable[0];
  if (first?.text && usable.length > 1) {
    let firstOk = true;
    try {
      JSON.parse(first.text);
    } catch {
      firstOk = false;
    }
    if (!firstOk && lines.every((l) => l.problem === undefined)) {
      const whole = lines.map((l) => l.text).join('\n');
      try {
        const v: unknown = JSON.parse(whole);
        out.problems.push({
          line: first.number,
          reason: `${fileName} holds a single JSON ${Array.isArray(v) ? 'value' : 'object'} spread over several lines; put one record per line (JSON Lines) or wrap the records in a [...] list`,
        });
        return;
      } catch {
        // not one JSON value either: report line by line below
      }
    }
  }
  for (const l of usable) {
    if (l.problem !== undefined) {
      out.problems.push({ line: l.number, reason: l.problem });
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(l.text!);
    } catch (e) {
      out.problems.push({ line: l.number, reason: `not valid JSON: ${jsonMessage(e)}` });
      continue;
    }
    out.add(value, { line: l.number });
  }
}

/**
 * A JSON array whose whole-file parse failed (a broken record, bad bytes, an over-long line): when it holds
 * one record per line, as most exported datasets do, read it line by line so that only the broken records are
 * lost. Returns false when the file is not laid out that way.
 */
function recoverArrayByLines(lines: Line[], out: Collector): boolean {
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
    try {
      const value: unknown = JSON.parse(f.text);
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? { ok: true as const, value } : { ok: false as const, error: 'not a JSON object' };
    } catch (e) {
      return { ok: false as const, error: `not valid JSON: ${jsonMessage(e)}` };
    }
  });
  const good = parsed.filter((p) => p.ok).length;
  if (good === 0 || good * 2 < fragments.length) return false;
  parsed.forEach((p, index) => {
    const line = fragments[index]!.line.number;
    if (p.ok) out.add(p.value, { line, index });
    else out.problems.push({ line, index, reason: p.error });
  });
  return true;
}

function parseJsonArray(lines: Line[], out: Collector, fileName: string): void {
  const text = lines.map((l) => l.text ?? '').join('\n');
  if (lines.every((l) => l.problem === undefined)) {
    try {
      const value: unknown = JSON.parse(text);
      if (!Array.isArray(value)) {
        out.problems.push({ reason: `${fileName} must hold a list of records` });
        return;
      }
      value.forEach((v, index) => out.add(v, { index }));
      return;
    } catch (e) {
      if (recoverArrayByLines(lines, out)) return;
      const line = errorLine(e instanceof Error ? e.message : '', text);
      out.problems.push({ ...(line !== undefined ? { line } : {}), reason: `${fileName} is not valid JSON, so no record could be read: ${jsonMessage(e)}` });
      return;
    }
  }
  if (recoverArrayByLines(lines, out)) return;
  const bad = lines.find((l) => l.problem !== undefined)!;
  out.problems.push({ line: bad.number, reason: `${bad.problem}, so ${fileName} cannot be read as one JSON list` });
}

/**
 * Reads a dataset file's records. `input`: the text, or the raw bytes (then invalid UTF-8 is reported by line).
 * `fileName` appears in messages about the file as a whole.
 */
export function parseDatasetText(input: string | Uint8Array | ArrayBuffer, fileName: string, options: ParseOptions = {}): ParsedDataset {
  const maxBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const lines = typeof input === 'string' ? linesOfText(input, maxBytes) : linesOfBytes(input instanceof Uint8Array ? input : new Uint8Array(input), maxBytes);
  const out = new Collector(options.format);
  const firstContent = lines.find((l) => l.text === null || l.text.trim() !== '');
  if (!firstContent) {
    out.problems.push({ reason: `${fileName} is empty` });
    return out.result('jsonl');
  }
  const isArray = firstContent.text !== null && firstContent.text.trimStart().startsWith('[');
  if (isArray) parseJsonArray(lines, out, fileName);
  else parseJsonLines(lines, out, fileName);
  return out.result(isArray ? 'json' : 'jsonl');
}
