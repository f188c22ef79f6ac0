// Datasets from the Hugging Face hub: `org/name` → the files of its train split → records, through the same
// normalisation and problem reports as a local file. Which files and how they are fetched: docs/hub.md
// ("Datasets from the hub"). No Node imports: this runs in the browser worker too.
import { fetchHubFile, DEFAULT_ENDPOINT, DEFAULT_REVISION, type HubOptions } from '../hub/client';
import { formatBytes } from '../engine/errors';
import { HubError } from '../hub/errors';
import { sha256Hex } from '../hub/sha256';
import { Gunzip } from 'fflate';
import { parseDatasetText, type ParsedDataset, type ParseOptions } from './parse';
import { parseParquetDataset } from './parquet';
import type { DatasetFormat, DatasetProblem } from './types';

/** A file in a dataset repository, as the tree API lists it. */
export interface HubDatasetFile {
  path: string;
  size?: number;
  /** The LFS sha256, for files stored in LFS (parquet files usually are). */
  sha256?: string;
  /** The git blob id: changes whenever the file changes. */
  oid?: string;
}

/** Keeps downloaded dataset files between sessions (IndexedDB in the app, a folder on the command line). */
export interface DatasetFileCache {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, bytes: Uint8Array): Promise<void>;
}

export interface HubDatasetProgress {
  phase: 'list' | 'download' | 'cached' | 'parse';
  /** The file concerned ('' while listing). */
  file: string;
  /** 0-based position of the file among `count`. */
  index: number;
  count: number;
}

export interface HubDatasetOptions extends HubOptions, ParseOptions {
  /** A data file of the repository to read, instead of picking the split's files. */
  file?: string;
  /** The split to read (default "train"). */
  split?: string;
  /** Refuse datasets whose files add up to more than this (default 2 GiB): they are read into memory. */
  maxBytes?: number;
  /** Attempts per file after a network or integrity failure (default 2 more). */
  retries?: number;
  retryDelayMs?: number;
  cache?: DatasetFileCache;
  onProgress?: (p: HubDatasetProgress) => void;
}

export interface HubDataset extends ParsedDataset {
  repo: string;
  revision: string;
  /** The files read, in order. */
  files: string[];
}

export const DEFAULT_MAX_DATASET_BYTES = 2 * 1024 ** 3;

const DATA_FILE = /\.(parquet|jsonl|json)(\.gz)?$/i;
const METADATA_FILES = new Set(['dataset_info.json', 'dataset_infos.json', 'dataset_dict.json', 'state.json', 'package.json', 'config.json', 'croissant.json']);
const SPLIT_WORDS: Record<string, string[]> = {
  train: ['train', 'training'],
  validation: ['validation', 'valid', 'val', 'dev'],
  test: ['test', 'testing', 'eval', 'evaluation'],
};
const REPO_RE = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*\/)?[A-Za-z0-9][A-Za-z0-9._-]*$/;

const dataKind = (path: string): 'parquet' | 'jsonl' | 'json' => {
  const m = /\.(parquet|jsonl|json)(\.gz)?$/i.exec(path)!;
  return m[1]!.toLowerCase() as 'parquet' | 'jsonl' | 'json';
};

/** The split words that apply to a split name (its synonyms as `datasets` knows them, or the name itself). */
function splitWords(split: string): string[] {
  const s = split.toLowerCase();
  for (const words of Object.values(SPLIT_WORDS)) if (words.includes(s)) return words;
  return [s];
}

/** True when `path` belongs to a split named by one of `words` (as a folder, or a word of the file name). */
function inSplit(path: string, words: string[]): boolean {
  const parts = path.toLowerCase().split('/');
  const name = parts.pop()!.replace(DATA_FILE, '');
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  const inName = new RegExp(`(^|[-._ 0-9])(${escaped})([-._ 0-9]|$)`);
  return parts.some((p) => words.includes(p)) || inName.test(name);
}

/** Data files of a repository listing (no hidden folders, no metadata JSON). */
export function dataFiles(files: readonly HubDatasetFile[]): HubDatasetFile[] {
  return files.filter((f) => {
    if (!DATA_FILE.test(f.path)) return false;
    const parts = f.path.split('/');
    if (parts.some((p) => p.startsWith('.'))) return false;
    const name = parts[parts.length - 1]!.toLowerCase();
    return !METADATA_FILES.has(name) && !/^tokenizer.*\.json$/.test(name) && !name.endsWith('.schema.json');
  });
}

/**
 * The files of `split` in a listing, by the rules of docs/hub.md ("Datasets from the hub"). Throws HubError 'not-found' (naming what
 * is there) when nothing fits.
 */
export function pickDatasetFiles(files: readonly HubDatasetFile[], split = 'train', repo = 'the dataset'): HubDatasetFile[] {
  const data = dataFiles(files);
  if (data.length === 0) {
    const listed = files.slice(0, 8).map((f) => f.path).join(', ');
    throw new HubError(
      'not-found',
      `${repo} has no data file Graft can read (.parquet, .jsonl or .json)${files.length ? `; it holds ${listed}${files.length > 8 ? ', ...' : ''}` : ''}.`,
    );
  }
  const words = splitWords(split);
  let chosen = data.filter((f) => inSplit(f.path, words));
  if (chosen.length === 0) {
    const anySplit = data.some((f) => Object.values(SPLIT_WORDS).some((w) => inSplit(f.path, w)));
    if (anySplit || split.toLowerCase() !== 'train') {
      throw new HubError(
        'not-found',
        `${repo} has no "${split}" split. Its data files are ${data.slice(0, 8).map((f) => f.path).join(', ')}${data.length > 8 ? ', ...' : ''}; name one of them.`,
      );
    }
    chosen = data; // no file names a split: all of them are the train split
  }
  const order = ['parquet', 'jsonl', 'json'] as const;
  const counts = new Map(order.map((k) => [k, chosen.filter((f) => dataKind(f.path) === k).length]));
  const kind = [...order].sort((a, b) => counts.get(b)! - counts.get(a)! || order.indexOf(a) - order.indexOf(b))[0]!;
  return chosen.filter((f) => dataKind(f.path) === kind).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * A dataset reference from what a person typed: "org/name", "org/name@revision", "hf://datasets/org/name[@rev]/file",
 * "https://huggingface.co/datasets/org/name[/blob|resolve|tree/rev[/file]]" (any host; the endpoint setting decides
 * where it is fetched from). Undefined for what looks like a local file path (a data file extension, ./ or /).
 */
export function parseHubDatasetId(spec: string): { repo: string; revision?: string; file?: string } | undefined {
  const s = spec.trim();
  let m = /^hf:\/\/datasets\/([^/@]+(?:\/[^/@]+)?)(?:@([^/]+))?(?:\/(.+))?$/.exec(s);
  if (!m) {
    const url = /^https?:\/\/[^/]+\/datasets\/([^/]+\/[^/]+)(?:\/(?:blob|resolve|tree)\/([^/]+)(?:\/(.+))?)?\/?$/.exec(s);
    if (url) m = url;
  }
  if (m) {
    const out: { repo: string; revision?: string; file?: string } = { repo: m[1]! };
    if (m[2]) out.revision = decodeURIComponent(m[2]);
    if (m[3]) out.file = m[3].split('/').map(decodeURIComponent).join('/');
    return REPO_RE.test(out.repo) ? out : undefined;
  }
  if (s.startsWith('.') || s.startsWith('/') || DATA_FILE.test(s) || /\.(csv|tsv|txt|zip)$/i.test(s)) return undefined;
  const at = /^(.+?)@([^/]+)$/.exec(s);
  const repo = at ? at[1]! : s.replace(/^datasets\//, '');
  if (!REPO_RE.test(repo) || !repo.includes('/')) return undefined;
  return at ? { repo, revision: at[2]! } : { repo };
}

// HTTP --------------------------------------------------------------------------------------------------------

function context(options: HubOptions) {
  const endpoint = (options.endpoint || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const f = options.fetch ?? globalThis.fetch;
  if (!f) throw new Error('No fetch() in this runtime.');
  return { endpoint, origin: new URL(endpoint).origin, revision: options.revision ?? DEFAULT_REVISION, fetch: f.bind(globalThis) };
}

/**
 * The repository's files from the tree API, or undefined when the endpoint has no tree API for datasets.
 * Throws HubError 'not-found' for a repository the hub says does not exist, 'unauthorized' for a gated or
 * private one, 'network' when the hub cannot be reached.
 */
export async function listHubDatasetFiles(repo: string, options: HubOptions = {}): Promise<HubDatasetFile[] | undefined> {
  checkDatasetRepo(repo);
  const { endpoint, origin, revision, fetch } = context(options);
  let url: string | undefined = `${endpoint}/api/datasets/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`;
  const files: HubDatasetFile[] = [];
  for (let page = 0; url !== undefined; page++) {
    if (page >= 100) throw new HubError('bad-response', `The file list of the dataset ${repo} runs past 100 pages; name the file to read.`);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (options.token && new URL(url).origin === origin) headers.Authorization = `Bearer ${options.token}`;
    let res: Response;
    try {
      res = await fetch(url, { headers, ...(options.signal ? { signal: options.signal } : {}) });
    } catch (e) {
      if (options.signal?.aborted) throw aborted(repo);
      throw new HubError('network', `Could not reach ${endpoint} to list the files of the dataset ${repo} (${e instanceof Error ? e.message : String(e)}). Check the connection and the endpoint setting.`, { cause: e });
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel().catch(() => undefined);
      throw gated(repo, endpoint, res.status, 'its file list', !!options.token);
    }
    if (res.status === 404 && res.headers.get('x-error-code') === 'RepoNotFound') {
      await res.body?.cancel().catch(() => undefined);
      throw new HubError('not-found', `There is no dataset ${repo} on ${endpoint} (revision ${revision}). Check the id; a private dataset also answers this way without a token.`, { status: 404 });
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      if (page === 0) return undefined;
      throw new HubError('bad-response', `The hub answered HTTP ${res.status} for page ${page + 1} of the file list of ${repo}.`, { status: res.status });
    }
    let list: unknown;
    try {
      list = await res.json();
    } catch {
      if (page === 0) return undefined;
      throw new HubError('bad-response', `Page ${page + 1} of the file list of ${repo} is not JSON.`);
    }
    if (!Array.isArray(list)) {
      if (page === 0) return undefined;
      throw new HubError('bad-response', `Page ${page + 1} of the file list of ${repo} is not a list.`);
    }
    for (const e of list as { type?: unknown; path?: unknown; size?: unknown; oid?: unknown; lfs?: { oid?: unknown; size?: unknown } }[]) {
      if (e?.type !== 'file' || typeof e.path !== 'string') continue;
      const f: HubDatasetFile = { path: e.path };
      const size = e.lfs?.size ?? e.size;
      if (typeof size === 'number' && Number.isSafeInteger(size) && size >= 0) f.size = size;
      if (typeof e.lfs?.oid === 'string' && /^[0-9a-f]{64}$/i.test(e.lfs.oid)) f.sha256 = e.lfs.oid.toLowerCase();
      if (typeof e.oid === 'string' && e.oid !== '') f.oid = e.oid;
      files.push(f);
    }
    url = nextLink(res.headers.get('link'), url);
  }
  return files;
}

function nextLink(header: string | null, base: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(part);
    if (m) return new URL(m[1]!, base).href;
  }
  return undefined;
}

function checkDatasetRepo(repo: string): void {
  if (!REPO_RE.test(repo) || repo.includes('..') || repo.length > 200) {
    throw new HubError('not-found', `"${repo}" is not a Hugging Face dataset id. Use the form "organisation/dataset", for example "tatsu-lab/alpaca".`);
  }
}

const aborted = (repo: string) => new HubError('aborted', `Loading the dataset ${repo} was cancelled.`);

function gated(repo: string, endpoint: string, status: number, what: string, hasToken: boolean): HubError {
  const where = `${endpoint}/datasets/${repo}`;
  return new HubError(
    'unauthorized',
    hasToken
      ? `The hub refused access to ${what} of the dataset ${repo} (HTTP ${status}) with the access token given. The dataset is gated or private: accept its terms on ${where} with the account the token belongs to, or use a token with read access.`
      : `The dataset ${repo} is gated or private (the hub answered ${status} for ${what}). Accept its terms on ${where} and give Graft an access token (huggingface.co → Settings → Access Tokens; HF_TOKEN for the command line).`,
    { status },
  );
}

/** The hub client's error for a dataset file, reworded for datasets (code, file and status kept). */
function datasetError(e: unknown, repo: string, file: string, endpoint: string, revision: string, hasToken: boolean): HubError {
  if (!(e instanceof HubError)) return new HubError('network', `Downloading ${file} of the dataset ${repo} failed: ${e instanceof Error ? e.message : String(e)}`, { file, cause: e });
  const opts = { file, ...(e.status !== undefined ? { status: e.status } : {}), cause: e };
  switch (e.code) {
    case 'not-found':
      return new HubError('not-found', `${file} is not in the dataset ${repo} (revision ${revision}) on ${endpoint}${e.status ? ` (HTTP ${e.status})` : ''}. Check the dataset id and the file name; a private dataset also answers this way without a token.`, opts);
    case 'unauthorized': {
      const g = gated(repo, endpoint, e.status ?? 401, file, hasToken);
      return new HubError('unauthorized', g.message, opts);
    }
    case 'network': {
      const why = e.cause instanceof Error ? ` (${e.cause.message})` : '';
      return new HubError('network', `Network error while downloading ${file} of the dataset ${repo}${why}. Check the connection and try again.`, opts);
    }
    case 'aborted':
      return new HubError('aborted', `Loading the dataset ${repo} was cancelled.`, opts);
    case 'bad-response':
      return new HubError(
        'bad-response',
        `The hub answered ${e.status ? `HTTP ${e.status}` : 'in a way Graft does not understand'} for ${file} of the dataset ${repo}. ` +
          (e.status !== undefined && (e.status >= 500 || e.status === 429) ? 'The server is busy or failing; try again in a few minutes.' : 'Check the endpoint setting.'),
        opts,
      );
    default:
      return e;
  }
}

const retryable = (e: unknown) =>
  e instanceof HubError && (e.code === 'network' || e.code === 'integrity' || (e.code === 'bad-response' && e.status !== undefined && (e.status >= 500 || e.status === 429)));

function sleep(ms: number, signal: AbortSignal | undefined, repo: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted(repo));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(aborted(repo));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function verify(bytes: Uint8Array, f: HubDatasetFile, repo: string): void {
  if (f.size !== undefined && bytes.length !== f.size) {
    throw new HubError('integrity', `${f.path} of the dataset ${repo} arrived with ${bytes.length} bytes; the hub lists ${f.size}.`, { file: f.path });
  }
  if (f.sha256 !== undefined) {
    const got = sha256Hex(bytes);
    if (got !== f.sha256) throw new HubError('integrity', `${f.path} of the dataset ${repo} does not match its sha256 (got ${got.slice(0, 12)}…, the hub lists ${f.sha256.slice(0, 12)}…).`, { file: f.path });
  }
}

/** Downloads one file of a dataset repository (with retries and the checks its listing allows). */
export async function fetchHubDatasetFile(repo: string, f: HubDatasetFile, options: HubDatasetOptions = {}): Promise<Uint8Array> {
  checkDatasetRepo(repo);
  const { endpoint, revision } = context(options);
  const hubOptions: HubOptions = { endpoint: `${endpoint}/datasets`, revision };
  for (const k of ['token', 'fetch', 'signal'] as const) if (options[k] !== undefined) (hubOptions as Record<string, unknown>)[k] = options[k];
  const retries = options.retries ?? 2;
  for (let attempt = 0; ; attempt++) {
    try {
      let bytes: Uint8Array;
      try {
        bytes = await fetchHubFile(repo, f.path, hubOptions);
      } catch (e) {
        throw datasetError(e, repo, f.path, endpoint, revision, !!options.token);
      }
      verify(bytes, f, repo);
      return bytes;
    } catch (e) {
      if (!retryable(e) || attempt >= retries || options.signal?.aborted) throw e;
      await sleep((options.retryDelayMs ?? 500) * 2 ** attempt, options.signal, repo);
    }
  }
}

/** Names tried, in order, when the endpoint has no tree API and no file was named. */
export const FALLBACK_FILES = [
  'train.parquet', 'train.jsonl', 'train.json',
  'data/train.parquet', 'data/train.jsonl', 'data/train.json',
  'data/train-00000-of-00001.parquet', 'data.jsonl', 'data.json',
];

/**
 * The most bytes one ".gz" dataset file may unpack to (the text must fit in the browser's memory and in one
 * JavaScript string): a larger one is refused as it inflates, at the cap.
 */
export const MAX_GUNZIPPED_BYTES = 1024 * 1024 * 1024;

/**
 * Compressed bytes handed to the inflater at a time: what one push can produce past the cap is bounded by it
 * (deflate expands at most about 1032 times: 4 MiB).
 */
const GZ_PUSH_BYTES = 4 * 1024;

/** Inflates gzip bytes, stopping as soon as the output passes `cap`. Throws with the reason. */
export function gunzipCapped(bytes: Uint8Array, fileName: string, cap = MAX_GUNZIPPED_BYTES): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  let over = false;
  const g = new Gunzip((chunk) => {
    if (over) return;
    total += chunk.length;
    if (total > cap) {
      over = true;
      parts.length = 0;
      return;
    }
    parts.push(chunk);
  });
  for (let at = 0; at < bytes.length && !over; at += GZ_PUSH_BYTES) g.push(bytes.subarray(at, at + GZ_PUSH_BYTES), at + GZ_PUSH_BYTES >= bytes.length);
  if (over) throw new Error(`it unpacks to more than ${formatBytes(cap)}, the most Graft reads from one compressed file; split the dataset into smaller files (or use Parquet)`);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Reads a dataset file's bytes by its name: Parquet through hyparquet, JSON and JSON Lines through
 * parseDatasetText; ".gz" is unpacked first (up to maxUnpackedBytes, default MAX_GUNZIPPED_BYTES). Like
 * parseDatasetText, it reports problems instead of throwing.
 */
export async function parseDatasetFile(bytes: Uint8Array, fileName: string, options: ParseOptions & { indexOffset?: number; maxUnpackedBytes?: number } = {}): Promise<ParsedDataset> {
  let b = bytes;
  let name = fileName;
  if (/\.gz$/i.test(name)) {
    try {
      b = gunzipCapped(bytes, fileName, options.maxUnpackedBytes);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      const reason = /unpacks to more than/.test(why) ? `${fileName}: ${why}` : `${fileName} is not a valid gzip file (${why})`;
      return { records: [], problems: [{ reason }], format: null, formatCounts: {}, container: 'json', notes: [] };
    }
    name = name.replace(/\.gz$/i, '');
  }
  if (/\.parquet$/i.test(name)) return parseParquetDataset(b, fileName, options);
  const { indexOffset: _ignored, maxUnpackedBytes: _cap, ...parseOptions } = options;
  return parseDatasetText(b, fileName, parseOptions);
}

function merge(parts: { file: string; parsed: ParsedDataset }[], declared: DatasetFormat | undefined): ParsedDataset {
  if (parts.length === 1) return parts[0]!.parsed;
  const records = parts.flatMap((p) => p.parsed.records);
  const problems: DatasetProblem[] = parts.flatMap((p) => p.parsed.problems.map((x) => ({ ...x, reason: `${p.file}: ${x.reason}` })));
  const formatCounts: Partial<Record<DatasetFormat, number>> = {};
  for (const p of parts) for (const [k, n] of Object.entries(p.parsed.formatCounts)) formatCounts[k as DatasetFormat] = (formatCounts[k as DatasetFormat] ?? 0) + (n ?? 0);
  const kinds = Object.keys(formatCounts) as DatasetFormat[];
  const format = kinds.length === 1 ? kinds[0]! : kinds.length > 1 ? 'mixed' : (declared ?? null);
  const containers = new Set(parts.map((p) => p.parsed.container));
  return { records, problems, format, formatCounts, container: containers.size === 1 ? parts[0]!.parsed.container : 'json', notes: parts.flatMap((p) => p.parsed.notes ?? []) };
}

/**
 * Loads a dataset from the hub: picks the files of the split (or reads `options.file`), downloads them and
 * reads their records. Throws HubError ('not-found', 'unauthorized', 'network', 'integrity', 'aborted',
 * 'bad-response', 'quota' for a dataset past maxBytes); problems with records are reported, not thrown. With
 * several files, each problem's reason starts with its file, and row indices continue across Parquet files.
 */
export async function loadHubDataset(repo: string, options: HubDatasetOptions = {}): Promise<HubDataset> {
  checkDatasetRepo(repo);
  const { endpoint, revision } = context(options);
  const progress = (phase: HubDatasetProgress['phase'], file: string, index: number, count: number) => options.onProgress?.({ phase, file, index, count });
  progress('list', '', 0, 0);

  let files: HubDatasetFile[];
  let tree: HubDatasetFile[] | undefined;
  if (options.file !== undefined) {
    tree = await listHubDatasetFiles(repo, options).catch((e: unknown) => {
      if (e instanceof HubError && (e.code === 'unauthorized' || e.code === 'not-found' || e.code === 'aborted')) throw e;
      return undefined; // the listing only adds size and hash checks here
    });
    const path = options.file.replace(/^\/+/, '');
    files = [tree?.find((f) => f.path === path) ?? { path }];
    if (tree && !tree.some((f) => f.path === path)) {
      const near = dataFiles(tree).slice(0, 8).map((f) => f.path);
      throw new HubError('not-found', `${path} is not in the dataset ${repo} (revision ${revision}).${near.length ? ` Its data files are ${near.join(', ')}.` : ''}`, { file: path, status: 404 });
    }
  } else {
    tree = await listHubDatasetFiles(repo, options);
    files = tree ? pickDatasetFiles(tree, options.split ?? 'train', `The dataset ${repo}`) : [];
  }

  const total = files.reduce((s, f) => s + (f.size ?? 0), 0);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DATASET_BYTES;
  if (total > maxBytes) {
    throw new HubError(
      'quota',
      `The ${options.split ?? 'train'} files of the dataset ${repo} add up to ${formatBytes(total)}, more than the ${formatBytes(maxBytes)} Graft reads into memory at once. Name one of its files to train on a part of it.`,
    );
  }

  const parts: { file: string; parsed: ParsedDataset }[] = [];
  const parseOptions: ParseOptions = {};
  if (options.format !== undefined) parseOptions.format = options.format;
  if (options.maxRecordBytes !== undefined) parseOptions.maxRecordBytes = options.maxRecordBytes;
  let indexOffset = 0;

  const read = async (f: HubDatasetFile, index: number, count: number): Promise<Uint8Array> => {
    const version = f.sha256 ?? f.oid;
    const key = version !== undefined ? `datasets/${repo}/${f.path}@${version}` : undefined;
    if (key && options.cache) {
      const cached = await options.cache.get(key);
      if (cached) {
        try {
          verify(cached, f, repo);
          progress('cached', f.path, index, count);
          return cached;
        } catch {
          // a damaged cache entry: download again
        }
      }
    }
    progress('download', f.path, index, count);
    const bytes = await fetchHubDatasetFile(repo, f, options);
    if (key && options.cache) await options.cache.put(key, bytes);
    return bytes;
  };

  if (files.length === 0) {
    // No tree API: try the conventional names.
    for (const path of FALLBACK_FILES) {
      try {
        const bytes = await read({ path }, 0, 1);
        files = [{ path }];
        progress('parse', path, 0, 1);
        parts.push({ file: path, parsed: await parseDatasetFile(bytes, path, parseOptions) });
        break;
      } catch (e) {
        if (e instanceof HubError && e.code === 'not-found') continue;
        throw e;
      }
    }
    if (parts.length === 0) {
      throw new HubError(
        'not-found',
        `Could not find the data of the dataset ${repo} on ${endpoint}: the endpoint does not list files, and none of ${FALLBACK_FILES.join(', ')} exists. Name the file to read.`,
      );
    }
  } else {
    for (const [i, f] of files.entries()) {
      const bytes = await read(f, i, files.length);
      progress('parse', f.path, i, files.length);
      const parsed = await parseDatasetFile(bytes, f.path, { ...parseOptions, indexOffset });
      if (/\.parquet(\.gz)?$/i.test(f.path)) indexOffset += parsed.records.length + parsed.problems.filter((p) => p.index !== undefined).length;
      parts.push({ file: f.path, parsed });
    }
  }
  return { ...merge(parts, options.format), repo, revision, files: files.map((f) => f.path) };
}
