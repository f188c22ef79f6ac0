// Where a model's files come from. The loader, `describeModel` and the adapter reader only ever ask a
// ModelSource for files by their path inside the model folder ("config.json", "model-00001-of-00002.safetensors"),
// so the same code reads a model from the hub store (IndexedDB in the browser, the cache folder in Node), from
// a folder the person picked, or from memory in tests. A Node folder source lives in src/cli: this directory
// stays free of Node imports because it runs in the browser worker.
import type { ModelStore } from '../hub/store';
import { DEFAULT_REVISION } from '../hub/client';

export interface ModelSource {
  /** Repo id or folder, for messages. */
  readonly name: string;
  /** The whole file, or undefined when the file does not exist. Other failures (a partial download) throw. */
  readFile(path: string): Promise<Uint8Array | undefined>;
  /**
   * Optional: the first `length` bytes of a file (fewer when the file is shorter) and the file's full size,
   * without reading the rest; undefined when the file does not exist. `describeModel` uses it to read only the
   * safetensors headers of a multi-gigabyte model. Sources without it are read whole.
   */
  readHead?(path: string, length: number): Promise<{ bytes: Uint8Array; size: number } | undefined>;
}

export type ModelErrorCode =
  /** A file the model or adapter needs is not there. */
  | 'missing-file'
  /** A file is there but cannot be used (bad JSON, a safetensors index that does not match its shards, ...). */
  | 'bad-file'
  /** A LoRA adapter that cannot be used with this model (another architecture, DoRA, rank_pattern, ...). */
  | 'bad-adapter'
  /** Prompt + new tokens exceed the positions the model was loaded with. */
  | 'context-length'
  /** Generation options that make no sense (negative maxNewTokens, topP 0, an unknown adapter name, ...). */
  | 'bad-options';

/**
 * A model, adapter or generation problem, written for the person: what is wrong, with which file, and what to
 * do. `code` and `file` are plain fields, so they survive structured cloning across the worker boundary.
 * Unsupported architectures and settings throw config.ts's UnsupportedModelError instead.
 */
export class ModelError extends Error {
  readonly code: ModelErrorCode;
  readonly file: string | undefined;
  constructor(code: ModelErrorCode, message: string, options?: { file?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ModelError';
    this.code = code;
    this.file = options?.file;
  }
}

/**
 * A source over the hub store. A file the store's catalogue does not list reads as undefined; a model that is
 * not stored at all, and a partly downloaded file, throw (the store's HubError says to download or resume).
 */
export function storeSource(store: ModelStore, repo: string, revision: string = DEFAULT_REVISION): ModelSource {
  const entry = async (path: string) => {
    const model = await store.getModel(repo, revision);
    if (!model) {
      throw new ModelError(
        'missing-file',
        `${repo}${revision === DEFAULT_REVISION ? '' : ` (revision ${revision})`} is not stored on this device. Download it first.`,
        { file: path },
      );
    }
    return model.files.find((f) => f.path === path);
  };
  return {
    name: revision === DEFAULT_REVISION ? repo : `${repo}@${revision}`,
    async readFile(path) {
      if (!(await entry(path))) return undefined;
      return store.readFile(repo, revision, path);
    },
    async readHead(path, length) {
      const f = await entry(path);
      if (!f) return undefined;
      const bytes = await store.readFile(repo, revision, path, { end: Math.min(length, f.size) });
      return { bytes, size: f.size };
    },
  };
}

/**
 * A source over files held in memory: tests, and a folder the person dropped on the page (read with the File
 * API before handing it over). Strings are stored as UTF-8.
 */
export function memorySource(name: string, files: Record<string, Uint8Array | string> | Map<string, Uint8Array | string>): ModelSource {
  const map = new Map<string, Uint8Array>();
  const entries = files instanceof Map ? [...files.entries()] : Object.entries(files);
  for (const [path, data] of entries) map.set(path, typeof data === 'string' ? new TextEncoder().encode(data) : data);
  return {
    name,
    async readFile(path) {
      return map.get(path);
    },
    async readHead(path, length) {
      const b = map.get(path);
      return b && { bytes: b.subarray(0, Math.min(length, b.length)), size: b.length };
    },
  };
}

/** Reads the first `length` bytes of a file, with readHead when the source has it. */
export async function readHead(source: ModelSource, path: string, length: number): Promise<{ bytes: Uint8Array; size: number } | undefined> {
  if (source.readHead) return source.readHead(path, length);
  const b = await source.readFile(path);
  return b && { bytes: b.subarray(0, Math.min(length, b.length)), size: b.length };
}

/** UTF-8 text of a file (undefined when absent), or a ModelError naming the file. */
export async function readText(source: ModelSource, path: string, required: true, what?: string): Promise<string>;
export async function readText(source: ModelSource, path: string, required: boolean, what?: string): Promise<string | undefined>;
export async function readText(source: ModelSource, path: string, required: boolean, what?: string): Promise<string | undefined> {
  const bytes = await source.readFile(path);
  if (bytes === undefined) {
    if (!required) return undefined;
    throw new ModelError('missing-file', `${path} is missing from ${source.name}${what ? `: ${what}` : ''}.`, { file: path });
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new ModelError('bad-file', `${path} in ${source.name} is not UTF-8 text; the copy may be damaged. Download it again.`, { file: path, cause });
  }
}

/** A JSON object from a file (undefined when absent and not required), or a ModelError naming the file. */
export async function readJson(source: ModelSource, path: string, required: true, what?: string): Promise<Record<string, unknown>>;
export async function readJson(source: ModelSource, path: string, required: boolean, what?: string): Promise<Record<string, unknown> | undefined>;
export async function readJson(source: ModelSource, path: string, required: boolean, what?: string): Promise<Record<string, unknown> | undefined> {
  const text = await readText(source, path, required, what);
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new ModelError('bad-file', `${path} in ${source.name} is not valid JSON (${detail}); the copy may be damaged. Download it again.`, {
      file: path,
      cause,
    });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModelError('bad-file', `${path} in ${source.name} must hold a JSON object.`, { file: path });
  }
  return json as Record<string, unknown>;
}

/** The tokenizer's files a model folder may hold, copied beside the weights of every model folder Graft writes. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'vocab.json', 'merges.txt'] as const;

/** The tokenizer files that `source` has (TOKENIZER_FILES), by name. */
export async function readTokenizerFiles(source: ModelSource): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const name of TOKENIZER_FILES) {
    const bytes = await source.readFile(name);
    if (bytes) files.set(name, bytes);
  }
  return files;
}
