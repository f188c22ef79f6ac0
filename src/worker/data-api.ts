// The engine worker's dataset, encoding, model-description and settings methods (the Data, Model and Method
// screens use them). Everything that parses a file, tokenizes or renders a chat template runs here, never on
// the page's thread: a large JSONL file or a slow template must not freeze the UI.
//
// A dataset lives in the worker under an id. It is read with src/data (the same parser and the same problems by
// line as the command line), then kept as rows: one row per record the file holds, valid or not, with its raw
// JSON value, so that a person can edit a record's fields and have it validated again. The file's bytes and the
// edits are stored in IndexedDB (stores datasets and datasetEdits of the "graft" database, src/storage), so a
// reload finds the dataset again; the trainer reads the valid records through `datasetConversations(id)` below.
//
// engine.worker.ts spreads `dataApi` into the object it exposes; api.ts's EngineApi extends DataApi.
import { countTargets, encodeConversation, EncodeError, IGNORE_INDEX, tokenStats, type EncodedExample, type TokenStats } from '../data/encode';
import { detectFormat, normaliseRecord } from '../data/normalize';
import { parseDatasetText } from '../data/parse';
import { type Conversation, type DatasetFormat, type DatasetProblem, type RecordSource } from '../data/types';
import { DEFAULT_REVISION, fetchHubFile, resolveUrl } from '../hub/client';
import { HubError, isHubError } from '../hub/errors';
import { IdbModelStore } from '../hub/store-idb';
import type { ModelStore } from '../hub/store';
import { ChatTemplate } from '../model/chat-template';
import { describeFrom, estimateMemory, shapeNumbers, type MemoryEstimates, type ModelInfo, type ShapeNumbers } from '../model/info';
import { readJson, readText, storeSource, type ModelSource } from '../model/source';
import { Tokenizer } from '../model/tokenizer';
import { readWeightHeaders } from '../model/weights';
import { GraftDbConnection, type GraftDb } from '../storage';
import { parseSettingsWithNotes, SettingsError, settingsToYaml, settingsWarnings, type SettingsProblem, type TrainSettings } from '../train/settings';
import { HubSettingsStore } from './settings';

export type { MemoryEstimates, ModelInfo, ShapeNumbers } from '../model/info';
export type { TokenStats } from '../data/encode';
export type { DatasetFormat, RecordSource } from '../data/types';
export type { SettingsProblem, TrainSettings } from '../train/settings';

// ---- types the page sees ----------------------------------------------------------------------------------

/** A problem of the dataset, for the problems list: where (line / record), why, and the row to open. */
export interface ProblemView {
  /** The table row it belongs to; undefined for a problem of the file as a whole. */
  row?: number;
  line?: number;
  index?: number;
  /** "line 7", "record 3", or "the file". */
  where: string;
  reason: string;
}

export interface DatasetSummary {
  id: string;
  name: string;
  bytes: number;
  /** `json`: one array of records; `jsonl`: one record per line. */
  container: 'json' | 'jsonl';
  /** The records' format: one, `mixed`, or null when none could be read. */
  format: DatasetFormat | 'mixed' | null;
  formatCounts: Partial<Record<DatasetFormat, number>>;
  /** Rows in the table (records the file holds, valid or not, removed ones excluded). */
  rows: number;
  /** Records that can be trained on. */
  valid: number;
  /** Every problem (rows and file), in file order; at most MAX_PROBLEMS of them. */
  problems: ProblemView[];
  problemCount: number;
  /** Rows changed (or removed) in the app. */
  edited: number;
}

/** A row's editable fields, by format. */
export type RowFields =
  | { kind: 'alpaca'; instruction: string; input: string; output: string; system: string; history: number }
  | { kind: 'chat'; format: 'sharegpt' | 'openai'; system: string; turns: { role: string; content: string }[] }
  | { kind: 'json'; json: string };

/** An edit of a row: new fields of the same kind, or removing the row from the dataset. */
export type RowEdit = RowFields | { kind: 'removed' };

export interface RowView {
  /** 0-based position in the table. */
  row: number;
  source: RecordSource;
  /** "line 7" / "record 3" */
  where: string;
  format: DatasetFormat | null;
  fields: RowFields;
  /** Why the row cannot be trained on; undefined when it can. */
  problem?: string;
  edited: boolean;
  removed: boolean;
  /** False for rows too large to edit in the page (their text is cut). */
  editable: boolean;
  /** First user message and last answer, for the table. */
  prompt: string;
  answer: string;
  /** Turns (user + assistant messages) of the valid record. */
  turns: number;
}

export interface RowQuery {
  offset: number;
  limit: number;
  /** 'problems': only rows that cannot be trained on. */
  only?: 'all' | 'problems';
}

export interface RowPage {
  rows: RowView[];
  /** Rows matching the query. */
  total: number;
}

export interface RowUpdate {
  row: RowView;
  summary: DatasetSummary;
}

/** Which tokenizer, template and encoding options to use (the settings' names in brackets). */
export interface EncodingChoice {
  repo: string;
  revision?: string;
  /** `cutoff_len` */
  cutoffLen: number;
  /** `train_on_prompt` */
  trainOnPrompt?: boolean;
  /** `mask_history` */
  maskHistory?: boolean;
}

export interface DatasetTokenStats {
  repo: string;
  revision: string;
  cutoffLen: number;
  stats: TokenStats;
  /** Records that could not be encoded (left out of the stats). */
  problems: ProblemView[];
  templateOrigin: string;
  ms: number;
}

export interface TokenView {
  id: number;
  /** The text this token adds (a character split over several tokens shows on the last one). */
  text: string;
  /** The vocabulary entry, e.g. "Ġthe" or "<|im_start|>". */
  token: string;
  /** Its label is the token itself (trained), or -100 (masked: context only). */
  trained: boolean;
  /** Beyond cutoff_len: cut off, not seen in training at all. */
  cut: boolean;
  special: boolean;
}

export interface EncodedRowView {
  row: number;
  where: string;
  repo: string;
  cutoffLen: number;
  /** The conversation rendered with the chat template (what the tokens spell). */
  rendered: string;
  /** Every token of the rendered text, the cut ones included (at most MAX_TOKENS_SHOWN). */
  tokens: TokenView[];
  /** Tokens whose label is the token (within cutoff_len). */
  trained: number;
  /** Tokens labelled -100 (within cutoff_len). */
  masked: number;
  /** Tokens beyond cutoff_len. */
  cut: number;
  fullLength: number;
  /** Tokens not sent because there are more than MAX_TOKENS_SHOWN. */
  omitted: number;
  templateOrigin: string;
}

export interface ModelCard {
  repo: string;
  revision: string;
  /** Where it was read from: this device's store, or the hub (config and weight headers only). */
  from: 'device' | 'hub';
  info: ModelInfo;
  shape: ShapeNumbers;
  /**
   * The largest weight that must fit one storage binding, in bytes as f32 on the GPU. The embedding, lm_head
   * and GPT-2's position table are split by rows when too large (src/model/params.ts), so they are not it.
   */
  largestTensor: { name: string; bytes: number };
  /** Estimates for the asked sequence length and LoRA rank. */
  estimates: MemoryEstimates;
  /** Bytes of every file of the model as stored (device) or of the weight files (hub). */
  downloadBytes: number;
}

export interface SettingsCheck {
  ok: boolean;
  problems: SettingsProblem[];
  /** Accepted keys that change nothing in Graft. */
  notes: string[];
  /** Valid but probably unintended combinations. */
  warnings: string[];
  /** The job as LLaMA-Factory YAML ('' when not valid). */
  yaml: string;
  settings?: TrainSettings;
}

export interface DataApi {
  /** Reads a dataset from bytes (a dropped or picked file; pass the ArrayBuffer with comlink's transfer()) or text (pasted). */
  openDataset(input: ArrayBuffer | string, name: string): Promise<DatasetSummary>;
  /** Fetches and reads a dataset (the built-in samples); `url` must be absolute. */
  openDatasetUrl(url: string, name: string): Promise<DatasetSummary>;
  /** The dataset stored under `id` (after a reload), or undefined when it is gone. */
  restoreDataset(id: string): Promise<DatasetSummary | undefined>;
  datasetSummary(id: string): Promise<DatasetSummary>;
  datasetRows(id: string, query: RowQuery): Promise<RowPage>;
  /** Changes (or removes) one row and validates it again. */
  updateDatasetRow(id: string, row: number, edit: RowEdit): Promise<RowUpdate>;
  /** The dataset with its edits as JSON Lines (valid and invalid rows, removed ones left out). */
  datasetJsonl(id: string): Promise<string>;
  /** Token statistics with a stored model's tokenizer and chat template. */
  datasetTokenStats(id: string, encoding: EncodingChoice): Promise<DatasetTokenStats>;
  /** One row rendered and tokenized, with its labels. Throws EncodeError-like WorkerError when it cannot be encoded. */
  encodeDatasetRow(id: string, row: number, encoding: EncodingChoice): Promise<EncodedRowView>;
  /** Describes a stored model (`from: 'device'`) or one on the hub (config.json and weight headers only). */
  describeModelCard(repo: string, revision: string | undefined, options: { seqLen: number; loraRank: number; from: 'device' | 'hub' }): Promise<ModelCard>;
  /** src/model/info.ts's estimateMemory, for models described by numbers (the built-in list). */
  estimateModelMemory(parameters: number, shape: ShapeNumbers, seqLen: number, loraRank: number): Promise<MemoryEstimates>;
  /** Validates job settings (LLaMA-Factory names) and writes the job YAML; problems are returned, not thrown. */
  checkSettings(input: Record<string, unknown>): Promise<SettingsCheck>;
}

export const MAX_PROBLEMS = 500;
export const MAX_TOKENS_SHOWN = 4096;
/** Rows whose text is longer than this are shown cut and cannot be edited in the page. */
const MAX_EDIT_CHARS = 200_000;
const PREVIEW_CHARS = 300;

// ---- rows -------------------------------------------------------------------------------------------------

interface Row {
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

interface Dataset {
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

interface StoredEdit {
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
function buildDataset(id: string, name: string, bytes: Uint8Array): Dataset {
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

function viewOf(row: Row, index: number): RowView {
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

function applyEdit(row: Row, edit: RowEdit): void {
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

function summarize(d: Dataset): DatasetSummary {
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

// ---- storage ----------------------------------------------------------------------------------------------

// The "graft" database (src/storage): store "datasets" holds each file's bytes once (written when it is opened),
// store "datasetEdits" its edits (rewritten on each edit, small), both keyed by the dataset id.
const FILES = 'datasets';
const EDITS = 'datasetEdits';
/** Datasets kept on the device; older ones are deleted when a new one is opened. */
const KEEP = 4;

interface StoredFile {
  id: string;
  name: string;
  bytes: Uint8Array;
  savedAt: number;
}

interface StoredEdits {
  id: string;
  edits: [number, StoredEdit][];
}

function replay(row: Row, e: StoredEdit): void {
  if (e.fields) applyEdit(row, e.fields);
  if (e.removed) applyEdit(row, { kind: 'removed' });
}

function newId(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return `ds-${Date.now().toString(36)}-${[...b].map((x) => x.toString(16).padStart(2, '0')).join('')}`;
}

/** The worker's datasets: in memory, and in IndexedDB for reloads. */
export class DatasetService {
  private readonly open = new Map<string, Dataset>();
  private readonly connection: GraftDbConnection | undefined;

  /**
   * `store`: keep datasets in IndexedDB for reloads (true: globalThis.indexedDB; or the factory to use, as tests
   * pass fake-indexeddb's); off where there is none.
   */
  constructor(store: boolean | IDBFactory = globalThis.indexedDB !== undefined) {
    this.connection = store === false ? undefined : new GraftDbConnection(store === true ? undefined : store);
  }

  private db(): Promise<GraftDb> | undefined {
    return this.connection?.get();
  }

  /** Stores a new dataset's file (and forgets the oldest beyond KEEP), or only its edits. */
  private async save(d: Dataset, what: 'file' | 'edits'): Promise<void> {
    const dbp = this.db();
    if (!dbp) return;
    try {
      const db = await dbp;
      if (what === 'edits') {
        const edits: StoredEdits = { id: d.id, edits: [...d.edits] };
        await db.put(EDITS, edits);
        return;
      }
      const file: StoredFile = { id: d.id, name: d.name, bytes: d.bytes, savedAt: Date.now() };
      await db.put(FILES, file);
      const keys = (await db.getAllKeys(FILES)) as string[];
      if (keys.length > KEEP) {
        const all = (await db.getAll(FILES)) as StoredFile[];
        all.sort((a, b) => b.savedAt - a.savedAt);
        for (const old of all.slice(KEEP)) {
          await db.delete(FILES, old.id);
          await db.delete(EDITS, old.id);
        }
      }
    } catch (e) {
      // The dataset still works for this visit; it will not survive a reload.
      console.warn('Graft: the dataset could not be stored on this device.', e);
    }
  }

  async openBytes(input: ArrayBuffer | Uint8Array | string, name: string): Promise<DatasetSummary> {
    const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input instanceof Uint8Array ? input : new Uint8Array(input);
    const d = buildDataset(newId(), name.trim() || 'dataset.jsonl', bytes);
    // One dataset in memory at a time (the others stay stored, and come back with restore()).
    this.open.clear();
    this.open.set(d.id, d);
    await this.save(d, 'file');
    return summarize(d);
  }

  async openUrl(url: string, name: string): Promise<DatasetSummary> {
    let res: Response;
    try {
      res = await fetch(url);
    } catch (cause) {
      throw new HubError('network', `${name} could not be fetched (${String(cause)}). Check the connection and try again.`, { cause });
    }
    if (!res.ok) throw new HubError(res.status === 404 ? 'not-found' : 'bad-response', `${name} could not be fetched: the server answered ${res.status}.`, { status: res.status });
    return this.openBytes(await res.arrayBuffer(), name);
  }

  async restore(id: string): Promise<DatasetSummary | undefined> {
    const have = this.open.get(id);
    if (have) return summarize(have);
    const dbp = this.db();
    if (!dbp) return undefined;
    const db = await dbp;
    const stored = (await db.get(FILES, id)) as StoredFile | undefined;
    if (!stored) return undefined;
    const edits = ((await db.get(EDITS, id)) as StoredEdits | undefined)?.edits ?? [];
    const d = buildDataset(stored.id, stored.name, stored.bytes);
    for (const [row, edit] of edits) {
      const r = d.rows[row];
      if (!r || typeof edit !== 'object' || edit === null) continue;
      replay(r, edit);
      d.edits.set(row, edit);
    }
    this.open.clear();
    this.open.set(d.id, d);
    return summarize(d);
  }

  async get(id: string): Promise<Dataset> {
    if (!this.open.has(id)) await this.restore(id);
    const d = this.open.get(id);
    if (!d) throw new EncodeError('This dataset is no longer on this device. Open the file again.');
    return d;
  }

  async summary(id: string): Promise<DatasetSummary> {
    return summarize(await this.get(id));
  }

  async rows(id: string, q: RowQuery): Promise<RowPage> {
    const d = await this.get(id);
    const match: number[] = [];
    d.rows.forEach((r, i) => {
      if (q.only === 'problems' ? !r.removed && r.problem !== undefined : true) match.push(i);
    });
    const offset = Math.max(0, Math.floor(q.offset));
    const limit = Math.max(0, Math.min(500, Math.floor(q.limit)));
    return { rows: match.slice(offset, offset + limit).map((i) => viewOf(d.rows[i]!, i)), total: match.length };
  }

  async update(id: string, index: number, edit: RowEdit): Promise<RowUpdate> {
    const d = await this.get(id);
    const row = d.rows[index];
    if (!row) throw new EncodeError(`There is no row ${index + 1} in ${d.name}.`);
    applyEdit(row, edit);
    const before = d.edits.get(index) ?? {};
    d.edits.set(index, edit.kind === 'removed' ? { ...before, removed: true } : { fields: edit, removed: false });
    await this.save(d, 'edits');
    return { row: viewOf(row, index), summary: summarize(d) };
  }

  async jsonl(id: string): Promise<string> {
    const d = await this.get(id);
    return d.rows
      .filter((r) => !r.removed)
      .map((r) => (r.raw === undefined ? (r.text ?? '') : JSON.stringify(r.raw)))
      .join('\n')
      .concat('\n');
  }

  /** The records that can be trained on, edits applied, in file order (for the trainer). */
  async conversations(id: string): Promise<{ name: string; records: Conversation[] }> {
    const d = await this.get(id);
    return { name: d.name, records: d.rows.filter((r) => !r.removed && r.conversation).map((r) => r.conversation!) };
  }

  async row(id: string, index: number): Promise<{ d: Dataset; row: Row }> {
    const d = await this.get(id);
    const row = d.rows[index];
    if (!row || row.removed) throw new EncodeError(`There is no row ${index + 1} in ${d.name}.`);
    return { d, row };
  }
}

// ---- tokenizers and templates (no GPU) --------------------------------------------------------------------

export interface TextSide {
  tokenizer: Tokenizer;
  template: ChatTemplate;
}

/** The tokenizer and chat template of a model folder, read as loadModel reads them (src/model/load.ts). */
export async function readTextSide(source: ModelSource): Promise<TextSide> {
  const configJson = await readJson(source, 'config.json', true, 'every model folder needs one');
  const genJson = await readJson(source, 'generation_config.json', false);
  const tokenizerJson = await readText(source, 'tokenizer.json', true, 'the model needs it to turn text into tokens');
  const tokenizerConfig = await readJson(source, 'tokenizer_config.json', false);
  const chatTemplateJinja = await readText(source, 'chat_template.jinja', false);
  const genIds = genJson ?? Object.fromEntries(['bos_token_id', 'eos_token_id', 'pad_token_id'].filter((k) => configJson[k] != null).map((k) => [k, configJson[k]]));
  const tokenizer = new Tokenizer({ tokenizerJson, tokenizerConfig, generationConfig: genIds });
  const template = ChatTemplate.fromModelFiles({ tokenizerConfig, chatTemplateJinja: chatTemplateJinja ?? null });
  return { tokenizer, template };
}

// ---- model descriptions -----------------------------------------------------------------------------------

/** Weights split by rows when larger than one binding (src/model/params.ts): not limited by it. */
const SPLITTABLE = /(^|\.)(embed_tokens|wte|wpe)\.weight$|^lm_head\.weight$/;

/** A source over the hub: small files whole, weight headers with Range requests. */
function hubSource(repo: string, revision: string, hub: { endpoint: string; token?: string }): ModelSource {
  const headers = (extra: Record<string, string> = {}) => ({ ...extra, ...(hub.token ? { Authorization: `Bearer ${hub.token}` } : {}) });
  return {
    name: repo,
    async readFile(path) {
      try {
        return await fetchHubFile(repo, path, { endpoint: hub.endpoint, revision, ...(hub.token ? { token: hub.token } : {}) });
      } catch (e) {
        if (path !== 'config.json' && isHubError(e, 'not-found')) return undefined;
        throw e;
      }
    },
    async readHead(path, length) {
      const url = resolveUrl(repo, path, { endpoint: hub.endpoint, revision });
      let res: Response;
      try {
        res = await fetch(url, { headers: headers({ Range: `bytes=0-${Math.max(0, length - 1)}` }) });
      } catch (cause) {
        throw new HubError('network', `${repo}: ${path} could not be fetched (${String(cause)}).`, { file: path, cause });
      }
      if (res.status === 404) return undefined;
      if (res.status === 401 || res.status === 403) {
        throw new HubError('unauthorized', `${repo} needs an access token (Hub settings) to be described.`, { file: path, status: res.status });
      }
      if (!res.ok) throw new HubError('bad-response', `${repo}: ${path} could not be read (HTTP ${res.status}).`, { file: path, status: res.status });
      const bytes = new Uint8Array(await res.arrayBuffer());
      const range = /\/(\d+)\s*$/.exec(res.headers.get('Content-Range') ?? '');
      const size = res.status === 206 && range ? Number(range[1]) : bytes.length;
      return { bytes: bytes.subarray(0, Math.min(length, bytes.length)), size };
    },
  };
}

function largestTensor(tensors: Map<string, { shape: number[] }>): { name: string; bytes: number } {
  let best = { name: '', bytes: 0 };
  for (const [name, t] of tensors) {
    if (SPLITTABLE.test(name)) continue;
    const bytes = 4 * t.shape.reduce((a, b) => a * b, 1);
    if (bytes > best.bytes) best = { name, bytes };
  }
  return best;
}

// ---- the API ----------------------------------------------------------------------------------------------

const modelStore: ModelStore = new IdbModelStore();
export const datasets = new DatasetService();
const textSides = new Map<string, Promise<TextSide>>();

/** The tokenizer and template of a stored model, read once per model. */
export function storedTextSide(repo: string, revision = DEFAULT_REVISION): Promise<TextSide> {
  const key = `${repo}@${revision}`;
  let p = textSides.get(key);
  if (!p) {
    p = readTextSide(storeSource(modelStore, repo, revision));
    textSides.set(key, p);
    p.catch(() => textSides.delete(key));
  }
  return p;
}

/** For the trainer: the valid records of a dataset the Data screen opened, edits applied. */
export function datasetConversations(id: string): Promise<{ name: string; records: Conversation[] }> {
  return datasets.conversations(id);
}

function encodeOptions(e: EncodingChoice) {
  return { cutoffLen: e.cutoffLen, trainOnPrompt: e.trainOnPrompt === true, maskHistory: e.maskHistory === true };
}

function checkCutoff(cutoffLen: number): void {
  if (!Number.isInteger(cutoffLen) || cutoffLen < 1) throw new EncodeError(`cutoff_len must be a positive whole number, not ${cutoffLen}.`);
}

export const dataApi: DataApi = {
  openDataset: (input, name) => datasets.openBytes(input, name),
  openDatasetUrl: (url, name) => datasets.openUrl(url, name),
  restoreDataset: (id) => datasets.restore(id),
  datasetSummary: (id) => datasets.summary(id),
  datasetRows: (id, query) => datasets.rows(id, query),
  updateDatasetRow: (id, row, edit) => datasets.update(id, row, edit),
  datasetJsonl: (id) => datasets.jsonl(id),

  async datasetTokenStats(id, encoding) {
    checkCutoff(encoding.cutoffLen);
    const revision = encoding.revision ?? DEFAULT_REVISION;
    const t0 = performance.now();
    const [d, side] = await Promise.all([datasets.get(id), storedTextSide(encoding.repo, revision)]);
    const examples: EncodedExample[] = [];
    const problems: ProblemView[] = [];
    const options = encodeOptions(encoding);
    for (let i = 0; i < d.rows.length; i++) {
      const r = d.rows[i]!;
      if (r.removed || !r.conversation) continue;
      try {
        examples.push(encodeConversation(r.conversation, side.tokenizer, side.template, options));
      } catch (e) {
        if (!(e instanceof EncodeError)) throw e;
        const p: ProblemView = { row: i, where: whereOf(r.source), reason: e.message };
        if (r.source.line !== undefined) p.line = r.source.line;
        if (r.source.index !== undefined) p.index = r.source.index;
        problems.push(p);
      }
    }
    return {
      repo: encoding.repo,
      revision,
      cutoffLen: encoding.cutoffLen,
      stats: tokenStats(examples),
      problems: problems.slice(0, MAX_PROBLEMS),
      templateOrigin: side.template.origin,
      ms: performance.now() - t0,
    };
  },

  async encodeDatasetRow(id, index, encoding) {
    checkCutoff(encoding.cutoffLen);
    const revision = encoding.revision ?? DEFAULT_REVISION;
    const [{ row }, side] = await Promise.all([datasets.row(id, index), storedTextSide(encoding.repo, revision)]);
    const where = whereOf(row.source);
    if (!row.conversation) throw new EncodeError(`${where} cannot be encoded: ${row.problem ?? 'it is not a valid record'}.`, row.source);
    // Encode without cutting, then mark what cutoff_len cuts: the counts within the cut-off are exactly those of
    // encodeConversation with cutoff_len (the labels are computed before truncation).
    const full = encodeConversation(row.conversation, side.tokenizer, side.template, { ...encodeOptions(encoding), cutoffLen: Number.MAX_SAFE_INTEGER });
    const ids = full.inputIds;
    const kept = Math.min(encoding.cutoffLen, ids.length);
    const trained = countTargets(full.labels.slice(0, kept));
    const decoder = side.tokenizer.streamDecoder();
    const shown = Math.min(ids.length, MAX_TOKENS_SHOWN);
    const tokens: TokenView[] = [];
    for (let t = 0; t < shown; t++) {
      const text = t === ids.length - 1 ? decoder.next(ids.slice(0, t + 1)) + decoder.finish(ids) : decoder.next(ids.slice(0, t + 1));
      tokens.push({
        id: ids[t]!,
        text,
        token: side.tokenizer.idToToken(ids[t]!) ?? `#${ids[t]}`,
        trained: full.labels[t] !== IGNORE_INDEX,
        cut: t >= encoding.cutoffLen,
        special: side.tokenizer.isSpecial(ids[t]!),
      });
    }
    const c = row.conversation;
    const messages = [...(c.system !== undefined ? [{ role: 'system' as const, content: c.system }] : []), ...c.messages];
    return {
      row: index,
      where,
      repo: encoding.repo,
      cutoffLen: encoding.cutoffLen,
      rendered: side.template.render(messages, { addGenerationPrompt: false }),
      tokens,
      trained,
      masked: kept - trained,
      cut: ids.length - kept,
      fullLength: ids.length,
      omitted: ids.length - shown,
      templateOrigin: side.template.origin,
    };
  },

  async describeModelCard(repo, revision = DEFAULT_REVISION, options) {
    repo = repo.trim();
    let source: ModelSource;
    let downloadBytes = 0;
    if (options.from === 'device') {
      source = storeSource(modelStore, repo, revision);
      const m = await modelStore.getModel(repo, revision);
      downloadBytes = m?.expectedBytes ?? m?.totalBytes ?? 0;
    } else {
      // A fresh read of the stored hub settings: the Models panel may have changed the endpoint since. (An access
      // token that is not remembered lives only in the download service's memory and is not used here.)
      source = hubSource(repo, revision, await new HubSettingsStore().current());
    }
    const cfg = await readJson(source, 'config.json', true, 'every model folder needs one');
    const headers = await readWeightHeaders(source);
    const info = describeFrom(cfg, headers);
    const shape = shapeNumbers(cfg);
    if (options.from === 'hub') downloadBytes = headers.files.reduce((s, f) => s + f.size, 0);
    return {
      repo,
      revision,
      from: options.from,
      info,
      shape,
      largestTensor: largestTensor(headers.tensors),
      estimates: estimateMemory(info.parameters, shape, options.seqLen, options.loraRank),
      downloadBytes,
    };
  },

  async estimateModelMemory(parameters, shape, seqLen, loraRank) {
    return estimateMemory(parameters, shape, seqLen, loraRank);
  },

  async checkSettings(input) {
    try {
      const { settings, notes } = parseSettingsWithNotes(input, 'the settings');
      // LLaMA-Factory has no bottleneck adapters and no prompt tuning: those jobs run in Graft only.
      const graftOnly = settings.finetuning_type === 'adapter' || settings.finetuning_type === 'prompt';
      const yaml = settingsToYaml(settings, {
        header: graftOnly
          ? [`Written by Graft. Runs in Graft (graft train train.yaml), not in LLaMA-Factory, which has no ${settings.finetuning_type === 'adapter' ? 'bottleneck adapters' : 'prompt tuning'}.`]
          : ['Written by Graft. Runs in Graft and in LLaMA-Factory: llamafactory-cli train train.yaml'],
      });
      return { ok: true, problems: [], notes, warnings: settingsWarnings(settings), yaml, settings };
    } catch (e) {
      if (e instanceof SettingsError) return { ok: false, problems: e.problems, notes: [], warnings: [], yaml: '' };
      throw e;
    }
  },
};
