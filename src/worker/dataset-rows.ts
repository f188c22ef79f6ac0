// A dataset as the Data screen shows it: one row per record the file holds, valid or not, with its raw JSON
// value, so that a person can edit a record's fields and have it validated again (src/data parses, with the
// same problems by line as the command line). Pure data: no storage, no GPU.
import { detectFormat, normaliseRecord } from '../data/normalize';
import { parseDatasetText } from '../data/parse';
import type { Conversation, DatasetFormat, DatasetProblem, RecordSource } from '../data/types';
import { MAX_PROBLEMS } from './constants';
import type { DatasetSummary, ProblemView, RowEdit, RowFields, RowView } from './protocol';

/** Rows whose text is longer than this are shown cut and cannot be edited in the page. */
const MAX_EDIT_CHARS = 200_000;
const PREVIEW_CHARS = 300;

// ---- rows -------------------------------------------------------------------------------------------------

export interface Row {
  source: RecordSource;
  /** The parsed JSON value; undefined when the text is not valid JSON. */
  raw: unknown;
  /** The text, when `raw` is undefined. */
  text?: string;
  conversation?: Conversation;
  problem?: string;
  format: DatasetFormat | null;
  edited: boolean;
  removed: boolean;
}

export interface Dataset {
  id: string;
  name: string;
  bytes: Uint8Array;
  container: 'json' | 'jsonl';
  rows: Row[];
  /** Problems of the file as a whole (no row to show). */
  fileProblems: DatasetProblem[];
  /** Per row: its last fields edit, and whether it is removed (stored, and replayed after a reload). */
  edits: Map<number, StoredEdit>;
}

export interface StoredEdit {
  fields?: RowFields;
  removed?: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Where a row is, for people: "line 7" (JSON Lines, or a JSON list read line by line), "item 3" (1-based in a list). */
export function whereOf(s: RecordSource): string {
  if (s.line !== undefined) return `line ${s.line}`;
  if (s.index !== undefined) return `item ${s.index + 1}`;
  return 'a record';
}
const order = (s: RecordSource) => s.line ?? s.index ?? 0;

function fileLines(bytes: Uint8Array): string[] {
  let text = new TextDecoder('utf-8').decode(bytes);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** A line of a JSON array as one record's text (the `[`, `]` and trailing comma taken off), as parse.ts does. */
function arrayLineRecord(line: string): string {
  let t = line.trim();
  if (t.startsWith('[')) t = t.slice(1).trim();
  if (t.endsWith(']')) t = t.slice(0, -1).trim();
  if (t.endsWith(',')) t = t.slice(0, -1).trim();
  return t;
}

function validate(row: Row): void {
  row.conversation = undefined;
  row.problem = undefined;
  if (row.raw === undefined) {
    let reason = 'not valid JSON';
    try {
      JSON.parse(row.text ?? '');
    } catch (e) {
      reason = `not valid JSON: ${(e instanceof Error ? e.message : String(e)).replace(/\s*\(line \d+ column \d+\)/, '')}`;
    }
    row.problem = reason;
    row.format = null;
    return;
  }
  row.format = detectFormat(row.raw);
  const r = normaliseRecord(row.raw);
  if (r.ok) row.conversation = { ...r.conversation, source: row.source };
  else row.problem = r.reason;
}

/** Reads a file into rows. Problems and formats are parse.ts's; rows add the raw values for editing. */
export function buildDataset(id: string, name: string, bytes: Uint8Array): Dataset {
  const parsed = parseDatasetText(bytes, name);
  const lines = fileLines(bytes);
  let array: unknown[] | undefined;
  if (parsed.container === 'json') {
    try {
      const v: unknown = JSON.parse(lines.join('\n'));
      if (Array.isArray(v)) array = v;
    } catch {
      array = undefined;
    }
  }
  const rawOf = (s: RecordSource): { raw: unknown; text?: string } | undefined => {
    if (array && s.index !== undefined && s.line === undefined) return { raw: array[s.index] };
    if (s.line === undefined) return undefined;
    const line = lines[s.line - 1] ?? '';
    const text = parsed.container === 'json' ? arrayLineRecord(line) : line;
    try {
      return { raw: JSON.parse(text) };
    } catch {
      return { raw: undefined, text };
    }
  };
  const rows: Row[] = [];
  const fileProblems: DatasetProblem[] = [];
  for (const c of parsed.records) {
    const s = c.source ?? {};
    const r = rawOf(s);
    rows.push({ source: s, raw: r?.raw, conversation: c, format: detectFormat(r?.raw), edited: false, removed: false });
  }
  for (const p of parsed.problems) {
    const s: RecordSource = {};
    if (p.line !== undefined) s.line = p.line;
    if (p.index !== undefined) s.index = p.index;
    // Problems of the whole file: a JSON array that could not be read, a pretty-printed single object, an empty file.
    const wholeFile =
      (p.line === undefined && p.index === undefined) ||
      (parsed.container === 'json' && p.index === undefined) ||
      p.reason.startsWith(`${name} `);
    const r = wholeFile ? undefined : rawOf(s);
    if (!r) {
      fileProblems.push(p);
      continue;
    }
    const row: Row = { source: s, raw: r.raw, problem: p.reason, format: detectFormat(r.raw), edited: false, removed: false };
    if (r.text !== undefined) row.text = r.text;
    rows.push(row);
  }
  rows.sort((a, b) => order(a.source) - order(b.source));
  return { id, name, bytes, container: parsed.container, rows, fileProblems, edits: new Map() };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function rowText(row: Row): string {
  if (row.raw === undefined) return row.text ?? '';
  return JSON.stringify(row.raw) ?? '';
}

function fieldsOf(row: Row): RowFields {
  const raw = row.raw;
  const asJson = (): RowFields => {
    const t = row.raw === undefined ? (row.text ?? '') : (JSON.stringify(row.raw, null, 2) ?? '');
    return { kind: 'json', json: t.length > MAX_EDIT_CHARS ? t.slice(0, MAX_EDIT_CHARS) : t };
  };
  if (!isObject(raw)) return asJson();
  const fmt = detectFormat(raw);
  const okString = (v: unknown) => v === undefined || v === null || typeof v === 'string';
  if (fmt === 'alpaca') {
    if (!['instruction', 'input', 'output', 'system'].every((k) => okString(raw[k]))) return asJson();
    const history = Array.isArray(raw.history) ? raw.history.length : 0;
    return { kind: 'alpaca', instruction: str(raw.instruction), input: str(raw.input), output: str(raw.output), system: str(raw.system), history };
  }
  if (fmt === 'sharegpt') {
    const turns = raw.conversations;
    if (!Array.isArray(turns) || !turns.every((t) => isObject(t) && typeof t.from === 'string' && typeof t.value === 'string') || !okString(raw.system)) {
      return asJson();
    }
    return { kind: 'chat', format: 'sharegpt', system: str(raw.system), turns: (turns as Record<string, string>[]).map((t) => ({ role: t.from!, content: t.value! })) };
  }
  if (fmt === 'openai') {
    const list = raw.messages;
    const text = (c: unknown): string | undefined =>
      typeof c === 'string'
        ? c
        : Array.isArray(c) && c.every((p) => isObject(p) && p.type === 'text' && typeof p.text === 'string')
          ? c.map((p) => (p as { text: string }).text).join('')
          : undefined;
    if (!Array.isArray(list) || !list.every((m) => isObject(m) && typeof m.role === 'string' && text(m.content) !== undefined) || !okString(raw.system)) {
      return asJson();
    }
    return {
      kind: 'chat',
      format: 'openai',
      system: str(raw.system),
      turns: (list as Record<string, unknown>[]).map((m) => ({ role: m.role as string, content: text(m.content)! })),
    };
  }
  return asJson();
}

function clip(s: string): string {
  return s.length > PREVIEW_CHARS ? `${s.slice(0, PREVIEW_CHARS)}…` : s;
}

export function viewOf(row: Row, index: number): RowView {
  const c = row.conversation;
  const firstUser = c?.messages.find((m) => m.role === 'user')?.content;
  const lastAnswer = c ? c.messages[c.messages.length - 1]?.content : undefined;
  const fields = fieldsOf(row);
  let prompt = firstUser ?? '';
  let answer = lastAnswer ?? '';
  if (!c) {
    if (fields.kind === 'alpaca') {
      prompt = fields.input ? `${fields.instruction}\n${fields.input}` : fields.instruction;
      answer = fields.output;
    } else if (fields.kind === 'chat') {
      prompt = fields.turns.find((t) => ['human', 'user'].includes(t.role))?.content ?? '';
      answer = [...fields.turns].reverse().find((t) => ['gpt', 'assistant'].includes(t.role))?.content ?? '';
    } else {
      prompt = fields.json;
    }
  }
  const view: RowView = {
    row: index,
    source: row.source,
    where: whereOf(row.source),
    format: row.format,
    fields,
    edited: row.edited,
    removed: row.removed,
    editable: rowText(row).length <= MAX_EDIT_CHARS,
    prompt: clip(prompt),
    answer: clip(answer),
    turns: c?.messages.length ?? 0,
  };
  if (row.problem !== undefined) view.problem = row.problem;
  return view;
}

export function applyEdit(row: Row, edit: RowEdit): void {
  row.edited = true;
  if (edit.kind === 'removed') {
    row.removed = true;
    return;
  }
  row.removed = false;
  if (edit.kind === 'json') {
    try {
      row.raw = JSON.parse(edit.json);
      delete row.text;
    } catch {
      row.raw = undefined;
      row.text = edit.json;
    }
    validate(row);
    return;
  }
  const raw: Record<string, unknown> = isObject(row.raw) ? structuredClone(row.raw) : {};
  const setSystem = (s: string) => {
    if (s.trim() === '') delete raw.system;
    else raw.system = s;
  };
  if (edit.kind === 'alpaca') {
    raw.instruction = edit.instruction;
    raw.input = edit.input;
    raw.output = edit.output;
    setSystem(edit.system);
  } else if (edit.format === 'sharegpt') {
    const turns = Array.isArray(raw.conversations) ? (raw.conversations as unknown[]) : [];
    raw.conversations = edit.turns.map((t, i) => ({ ...(isObject(turns[i]) ? turns[i] : {}), from: t.role, value: t.content }));
    setSystem(edit.system);
  } else {
    const list = Array.isArray(raw.messages) ? (raw.messages as unknown[]) : [];
    raw.messages = edit.turns.map((t, i) => ({ ...(isObject(list[i]) ? list[i] : {}), role: t.role, content: t.content }));
    setSystem(edit.system);
  }
  row.raw = raw;
  delete row.text;
  validate(row);
}

function problemsOf(d: Dataset): ProblemView[] {
  const out: ProblemView[] = [];
  d.rows.forEach((r, i) => {
    if (r.removed || r.problem === undefined) return;
    const p: ProblemView = { row: i, where: whereOf(r.source), reason: r.problem };
    if (r.source.line !== undefined) p.line = r.source.line;
    if (r.source.index !== undefined) p.index = r.source.index;
    out.push(p);
  });
  for (const fp of d.fileProblems) {
    const p: ProblemView = { where: fp.line !== undefined ? `line ${fp.line}` : 'the file', reason: fp.reason };
    if (fp.line !== undefined) p.line = fp.line;
    out.push(p);
  }
  return out.sort((a, b) => (a.line ?? a.index ?? 0) - (b.line ?? b.index ?? 0));
}

export function summarize(d: Dataset): DatasetSummary {
  const counts: Partial<Record<DatasetFormat, number>> = {};
  let valid = 0;
  let rows = 0;
  let edited = 0;
  for (const r of d.rows) {
    if (r.edited) edited++;
    if (r.removed) continue;
    rows++;
    if (r.conversation && r.format) {
      valid++;
      counts[r.format] = (counts[r.format] ?? 0) + 1;
    }
  }
  const kinds = Object.keys(counts) as DatasetFormat[];
  const problems = problemsOf(d);
  return {
    id: d.id,
    name: d.name,
    bytes: d.bytes.length,
    container: d.container,
    format: kinds.length === 1 ? kinds[0]! : kinds.length > 1 ? 'mixed' : null,
    formatCounts: counts,
    rows,
    valid,
    problems: problems.slice(0, MAX_PROBLEMS),
    problemCount: problems.length,
    edited,
  };
}
