// LLaMA-Factory's dataset_info.json (its data/README.md): an entry names where a dataset is (file_name, or
// hf_hub_url with subset, split, revision) and how its records read (formatting alpaca | sharegpt, columns, tags,
// ranking). `datasetInfoEntry` checks an entry; `recordMapper` rewrites each raw record into the format Graft's
// readers take (normalize.ts, preference.ts), so {question, answer} data mapped there is read as alpaca.
// docs/data.md ("dataset_info.json").
import { describe, isObject } from './record-rules';

export interface DatasetInfoColumns {
  prompt?: string;
  query?: string;
  response?: string;
  history?: string;
  messages?: string;
  system?: string;
  tools?: string;
  chosen?: string;
  rejected?: string;
  kto_tag?: string;
  images?: string;
  videos?: string;
  audios?: string;
}

export interface DatasetInfoTags {
  role_tag: string;
  content_tag: string;
  user_tag: string;
  assistant_tag: string;
  observation_tag: string;
  function_tag: string;
  system_tag: string;
}

export interface DatasetInfo {
  name: string;
  file_name?: string;
  hf_hub_url?: string;
  subset?: string;
  split?: string;
  revision?: string;
  formatting: 'alpaca' | 'sharegpt';
  ranking: boolean;
  columns: DatasetInfoColumns;
  tags: DatasetInfoTags;
}

/** LLaMA-Factory's defaults (data/parser.py DatasetAttr). */
export const DEFAULT_TAGS: DatasetInfoTags = {
  role_tag: 'from',
  content_tag: 'value',
  user_tag: 'human',
  assistant_tag: 'gpt',
  observation_tag: 'observation',
  function_tag: 'function_call',
  system_tag: 'system',
};

const COLUMN_KEYS = ['prompt', 'query', 'response', 'history', 'messages', 'system', 'tools', 'chosen', 'rejected', 'kto_tag', 'images', 'videos', 'audios'] as const;
const TAG_KEYS = Object.keys(DEFAULT_TAGS) as (keyof DatasetInfoTags)[];
const ENTRY_KEYS = new Set(['file_name', 'hf_hub_url', 'ms_hub_url', 'om_hub_url', 'script_url', 'cloud_file_name', 'subset', 'split', 'folder', 'revision', 'num_samples', 'formatting', 'ranking', 'columns', 'tags']);

export class DatasetInfoError extends Error {
  readonly code = 'dataset-info';
  constructor(message: string) {
    super(message);
    this.name = 'DatasetInfoError';
  }
}

const bad = (name: string, why: string): never => {
  throw new DatasetInfoError(`dataset_info.json: "${name}" ${why}`);
};

/** Checks one dataset_info.json entry and fills in LLaMA-Factory's defaults. Throws DatasetInfoError naming the key. */
export function datasetInfoEntry(name: string, entry: unknown): DatasetInfo {
  if (!isObject(entry)) return bad(name, `must be an object, not ${describe(entry)}`);
  for (const k of Object.keys(entry)) if (!ENTRY_KEYS.has(k)) bad(name, `has "${k}", which LLaMA-Factory's dataset_info.json does not define`);
  const str = (k: string): string | undefined => {
    const v = entry[k];
    if (v === undefined || v === null) return undefined;
    return typeof v === 'string' && v.trim() !== '' ? v : bad(name, `"${k}" must be a non-empty string, not ${describe(v)}`);
  };
  for (const k of ['ms_hub_url', 'om_hub_url', 'script_url', 'cloud_file_name']) {
    if (entry[k] !== undefined && entry.file_name === undefined && entry.hf_hub_url === undefined) bad(name, `is read from "${k}", which Graft cannot reach; use file_name or hf_hub_url`);
  }
  const formatting = str('formatting') ?? 'alpaca';
  if (formatting !== 'alpaca' && formatting !== 'sharegpt') bad(name, `"formatting" must be "alpaca" or "sharegpt", not "${formatting}"`);
  const ranking = entry.ranking ?? false;
  if (typeof ranking !== 'boolean') bad(name, `"ranking" must be true or false, not ${describe(ranking)}`);
  const columns: DatasetInfoColumns = {};
  if (entry.columns !== undefined) {
    if (!isObject(entry.columns)) bad(name, `"columns" must map LLaMA-Factory's column names to the file's fields`);
    for (const [k, v] of Object.entries(entry.columns as Record<string, unknown>)) {
      if (!(COLUMN_KEYS as readonly string[]).includes(k)) bad(name, `"columns" has "${k}"; LLaMA-Factory's columns are ${COLUMN_KEYS.join(', ')}`);
      if (typeof v !== 'string') bad(name, `"columns.${k}" must name a field of the records, not ${describe(v)}`);
      columns[k as keyof DatasetInfoColumns] = v as string;
    }
  }
  for (const k of ['images', 'videos', 'audios'] as const) if (columns[k] !== undefined) bad(name, `maps "${k}": Graft trains on text only`);
  const tags = { ...DEFAULT_TAGS };
  if (entry.tags !== undefined) {
    if (!isObject(entry.tags)) bad(name, '"tags" must be an object of role and content tags');
    for (const [k, v] of Object.entries(entry.tags as Record<string, unknown>)) {
      if (!(TAG_KEYS as string[]).includes(k)) bad(name, `"tags" has "${k}"; LLaMA-Factory's tags are ${TAG_KEYS.join(', ')}`);
      if (typeof v !== 'string') bad(name, `"tags.${k}" must be a string, not ${describe(v)}`);
      tags[k as keyof DatasetInfoTags] = v as string;
    }
  }
  const info: DatasetInfo = { name, formatting: formatting as DatasetInfo['formatting'], ranking: ranking as boolean, columns, tags };
  for (const k of ['file_name', 'hf_hub_url', 'subset', 'split', 'revision'] as const) {
    const v = str(k);
    if (v !== undefined) info[k] = v;
  }
  if (info.file_name === undefined && info.hf_hub_url === undefined) bad(name, 'has neither "file_name" nor "hf_hub_url"');
  return info;
}

/** Reads a whole dataset_info.json text: name → entry (checked lazily: datasetInfoEntry). Throws DatasetInfoError. */
export function parseDatasetInfo(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DatasetInfoError(`dataset_info.json is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isObject(v)) throw new DatasetInfoError('dataset_info.json must be an object of dataset names');
  return v;
}

/** Whether an entry says anything about the records' shape (otherwise the records are read as they are). */
export function mapsRecords(info: DatasetInfo): boolean {
  return info.formatting === 'sharegpt' || info.ranking || Object.keys(info.columns).length > 0;
}

const text = (v: unknown) => (v === undefined || v === null ? '' : v);

/**
 * A function that rewrites a raw record of this dataset into the format Graft reads: alpaca columns into
 * {instruction, input, output | chosen, rejected, system, history}; ShareGPT columns and tags into
 * {conversations: [{from: human|gpt|system, value}], system, chosen, rejected}. A record's `task` is kept.
 * Values that are not what the format asks are passed on as they are, for the reader to name.
 */
export function recordMapper(info: DatasetInfo): (record: unknown) => unknown {
  const c = info.columns;
  if (info.formatting === 'alpaca') {
    const prompt = c.prompt ?? 'instruction';
    const query = c.query ?? 'input';
    const response = c.response ?? 'output';
    const history = c.history;
    const system = c.system;
    return (r) => {
      if (!isObject(r)) return r;
      const out: Record<string, unknown> = { instruction: text(r[prompt]), input: text(r[query]) };
      if (info.ranking) {
        // LLaMA-Factory's alpaca ranking: chosen / rejected columns (or a response list [chosen, rejected])
        const resp = r[response];
        out.chosen = c.chosen !== undefined ? r[c.chosen] : Array.isArray(resp) ? resp[0] : r.chosen;
        out.rejected = c.rejected !== undefined ? r[c.rejected] : Array.isArray(resp) ? resp[1] : r.rejected;
      } else out.output = r[response];
      if (history !== undefined && r[history] !== undefined) out.history = r[history];
      if (system !== undefined && r[system] !== undefined) out.system = r[system];
      if (r.task !== undefined) out.task = r.task;
      return out;
    };
  }
  const t = info.tags;
  const messages = c.messages ?? 'conversations';
  const roleOf = (m: unknown) => (isObject(m) ? m[t.role_tag] : undefined);
  const turn = (m: unknown) => {
    if (!isObject(m)) return m;
    const role = roleOf(m);
    const from = role === t.user_tag ? 'human' : role === t.assistant_tag ? 'gpt' : role === t.system_tag ? 'system' : role;
    return { from, value: m[t.content_tag] };
  };
  return (r) => {
    if (!isObject(r)) return r;
    const list = r[messages];
    const out: Record<string, unknown> = { conversations: Array.isArray(list) ? list.map(turn) : list };
    if (c.system !== undefined && r[c.system] !== undefined) out.system = r[c.system];
    if (info.ranking) {
      out.chosen = turn(r[c.chosen ?? 'chosen']);
      out.rejected = turn(r[c.rejected ?? 'rejected']);
    }
    if (r.task !== undefined) out.task = r.task;
    return out;
  };
}
