// A dataset as the Data screen shows it: one row per record the file holds, valid or not, with its raw JSON
// value, so that a person can edit a record's fields and have it validated again. The container is read by
// src/data/json-file.ts (comments and trailing commas tolerated with a note, as on the command line); each record
// by the reader of its kind (SFT: normalize.ts, preference pairs: preference.ts), through a column mapping when
// one was chosen (dataset-info.ts). Pure data: no storage, no GPU.
import { datasetInfoEntry, recordMapper } from '../data/dataset-info';
import { readJsonRecords } from '../data/json-file';
import { detectFormat, normaliseRecord } from '../data/normalize';
import { detectPreferenceFormat, normalisePreferenceRecord, type PreferenceRecord } from '../data/preference';
import type { Conversation, DatasetFormat, DatasetProblem, RecordSource } from '../data/types';
import { MAX_PROBLEMS } from './constants';
import type { ColumnMapping, DatasetSummary, ProblemView, RecordKind, RowEdit, RowFields, RowView } from './protocol';

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
  /** A valid preference pair. */
  pair?: PreferenceRecord;
  problem?: string;
  format: DatasetFormat | null;
  kind: RecordKind | null;
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
  /** What the reader tolerated (comments, trailing commas). */
  notes: string[];
  mapping: ColumnMapping | null;
  /** The mapping as a record rewriter (dataset-info.ts's recordMapper). */
  mapper?: (record: unknown) => unknown;
}

/** A column mapping checked as a dataset_info.json entry (DatasetInfoError naming the key) → its record rewriter. */
export function mappingRewriter(m: ColumnMapping, fileName: string): (record: unknown) => unknown {
  const entry = { file_name: fileName, formatting: m.formatting, ranking: m.ranking === true, columns: m.columns };
  return recordMapper(datasetInfoEntry('column mapping', entry));
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

/** KTO records (LLaMA-Factory's kto_tag, TRL's {prompt, completion, label}) and pre-training text ({text}). */
function otherKind(v: unknown): 'kto' | 'text' | null {
  if (!isObject(v)) return null;
  if ('kto_tag' in v || ('completion' in v && typeof v.label === 'boolean')) return 'kto';
  if (typeof v.text === 'string' && detectFormat(v) === null) return 'text';
  return null;
}

const OTHER_REASON: Record<'kto' | 'text', string> = {
  kto: 'a KTO record (a desirable / undesirable label): Graft has no KTO stage; for DPO or a reward model, pair each prompt with a chosen and a rejected answer',
  text: 'pre-training text (a "text" field): Graft has no pre-training stage (LLaMA-Factory\'s stage pt) yet; for SFT, give each record an instruction and an output',
};

/** Reads a row's record by the reader of its kind (through the mapping, if any). */
function validate(row: Row, mapper?: (record: unknown) => unknown): void {
  row.conversation = undefined;
  row.pair = undefined;
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
    row.kind = null;
    return;
  }
  const value = mapper ? mapper(row.raw) : row.raw;
  if (detectPreferenceFormat(value) !== null) {
    row.kind = 'preference';
    row.format = null;
    const r = normalisePreferenceRecord(value);
    if (r.ok) row.pair = { ...r.record, source: row.source };
    else row.problem = r.reason;
    return;
  }
  const other = otherKind(value);
  if (other) {
    row.kind = other;
    row.format = null;
    row.problem = OTHER_REASON[other];
    return;
  }
  row.format = detectFormat(value);
  row.kind = row.format === null ? null : 'sft';
  const r = normaliseRecord(value);
  if (r.ok) row.conversation = { ...r.conversation, source: row.source };
  else row.problem = r.reason;
}

/** Reads a file into rows. Problems of the container are json-file.ts's; each record is read by its kind's reader. */
export function buildDataset(id: string, name: string, bytes: Uint8Array, mapping: ColumnMapping | null = null): Dataset {
  const parsed = readJsonRecords(bytes, name);
  const mapper = mapping ? mappingRewriter(mapping, name) : undefined;
  let lines: string[] | undefined;
  const textOf = (line: number): string => {
    lines ??= fileLines(bytes);
    const t = lines[line - 1] ?? '';
    return parsed.container === 'json' ? arrayLineRecord(t) : t;
  };
  const rows: Row[] = [];
  const fileProblems: DatasetProblem[] = [];
  for (const { value, where } of parsed.items) {
    const row: Row = { source: where, raw: value, format: null, kind: null, edited: false, removed: false };
    validate(row, mapper);
    rows.push(row);
  }
  for (const p of parsed.problems) {
    const s: RecordSource = {};
    if (p.line !== undefined) s.line = p.line;
    if (p.index !== undefined) s.index = p.index;
    // Problems of the whole file: a JSON array that could not be read, a pretty-printed single object, an empty file.
    const wholeFile =
      p.line === undefined ||
      (parsed.container === 'json' && p.index === undefined) ||
      p.reason.startsWith(`${name} `);
    if (wholeFile) {
      fileProblems.push(p);
      continue;
    }
    // A record the container could not read (bad JSON, bad bytes, too long): its line's text, to fix it here.
    const text = textOf(p.line!);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      raw = undefined;
    }
    const row: Row = { source: s, raw, problem: p.reason, format: detectFormat(raw), kind: null, edited: false, removed: false };
    if (raw === undefined) row.text = text;
    rows.push(row);
  }
  rows.sort((a, b) => order(a.source) - order(b.source));
  const d: Dataset = { id, name, bytes, container: parsed.container, rows, fileProblems, edits: new Map(), notes: parsed.notes, mapping };
  if (mapper) d.mapper = mapper;
  return d;
}

/** Chooses (or drops) the dataset's column mapping and reads every row again through it; edits are kept. */
export function applyMapping(d: Dataset, mapping: ColumnMapping | null): void {
  const mapper = mapping ? mappingRewriter(mapping, d.name) : undefined;
  d.mapping = mapping;
  if (mapper) d.mapper = mapper;
  else delete d.mapper;
  for (const r of d.rows) if (r.raw !== undefined || r.edited) validate(r, mapper);
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
    kind: row.kind,
  };
  if (row.problem !== undefined) view.problem = row.problem;
  if (c?.task !== undefined) view.task = c.task;
  const pair = row.pair;
  if (pair) {
    const lastUser = [...pair.prompt].reverse().find((m) => m.role === 'user')?.content ?? '';
    view.prompt = clip(lastUser);
    view.answer = clip(pair.chosen);
    view.chosen = clip(pair.chosen);
    view.rejected = clip(pair.rejected);
    view.turns = pair.prompt.length;
  }
  return view;
}

export function applyEdit(row: Row, edit: RowEdit, mapper?: (record: unknown) => unknown): void {
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
    validate(row, mapper);
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
  validate(row, mapper);
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

/** Fields of the rows no reader recognised (objects of no known format), in order of appearance; at most 12. */
function unknownFields(d: Dataset): string[] {
  const seen = new Set<string>();
  for (const r of d.rows) {
    if (r.removed || r.kind !== null || !isObject(r.raw)) continue;
    for (const k of Object.keys(r.raw)) if (seen.size < 12) seen.add(k);
    if (seen.size >= 12) break;
  }
  return [...seen];
}

export function summarize(d: Dataset): DatasetSummary {
  const counts: Partial<Record<DatasetFormat, number>> = {};
  const kindCounts: Partial<Record<RecordKind, number>> = {};
  const tasks: Record<string, number> = {};
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
      kindCounts.sft = (kindCounts.sft ?? 0) + 1;
      if (r.conversation.task !== undefined) tasks[r.conversation.task] = (tasks[r.conversation.task] ?? 0) + 1;
    } else if (r.pair) {
      valid++;
      kindCounts.preference = (kindCounts.preference ?? 0) + 1;
    } else if (r.kind === 'kto' || r.kind === 'text') kindCounts[r.kind] = (kindCounts[r.kind] ?? 0) + 1;
  }
  const formats = Object.keys(counts) as DatasetFormat[];
  const kinds = Object.keys(kindCounts) as RecordKind[];
  const problems = problemsOf(d);
  return {
    id: d.id,
    name: d.name,
    bytes: d.bytes.length,
    container: d.container,
    format: formats.length === 1 ? formats[0]! : formats.length > 1 ? 'mixed' : null,
    formatCounts: counts,
    rows,
    valid,
    problems: problems.slice(0, MAX_PROBLEMS),
    problemCount: problems.length,
    edited,
    kind: kinds.length === 1 ? kinds[0]! : kinds.length > 1 ? 'mixed' : null,
    kindCounts,
    tasks,
    notes: [...d.notes],
    unknownFields: unknownFields(d),
    mapping: d.mapping,
  };
}
