// The model store: where downloaded hub files live (IdbModelStore in store-idb.ts, NodeFolderStore in
// store-node.ts), the interface they share and the rules every store keeps (docs/hub.md, "Model stores").

import { HubError } from './errors';

export interface CachedFile {
  /** Path inside the repository, e.g. "model-00001-of-00002.safetensors". */
  path: string;
  /** Bytes stored so far (the full size once complete). */
  size: number;
  /** The size the hub announced, when it announced one. */
  expectedSize?: number;
  /** The LFS sha256 (hex) the hub announced, when it announced one. */
  sha256?: string;
  complete: boolean;
}

export interface CachedModel {
  repo: string;
  revision: string;
  /** Every file the download planned, complete or not. */
  files: CachedFile[];
  /** Bytes stored for this model, partial files included. */
  totalBytes: number;
  /** Sum of the files' expected sizes, when every one is known. */
  expectedBytes?: number;
  /** True once every file is complete and the download finished. */
  complete: boolean;
  /** Milliseconds since the epoch. */
  createdAt: number;
  updatedAt: number;
  /** When the download finished (set when complete). */
  downloadedAt?: number;
}

/** What the client knows about a file before downloading it. */
export interface PlannedFile {
  path: string;
  expectedSize?: number;
  sha256?: string;
}

export interface StorageEstimateInfo {
  /** Bytes that can still be stored, when the platform says. */
  available?: number;
  usage?: number;
  quota?: number;
}

export interface FileWriter {
  /** Bytes of the file held by the writer so far (stored ones plus any buffered). */
  readonly offset: number;
  /** Appends bytes at `offset`. The caller may reuse `data` after the promise resolves. */
  append(data: Uint8Array): Promise<void>;
  /** Stores anything buffered and leaves the file partial (resumable). Safe to call more than once. */
  close(): Promise<void>;
  /** Stores anything buffered and marks the file complete. Call only after the integrity checks passed. */
  complete(): Promise<void>;
}

export interface ReadOptions {
  /** Read a partial file too (the client re-hashes a stored prefix when resuming). Default false. */
  allowPartial?: boolean;
  /** Stop after this many bytes. */
  end?: number;
}

export interface ModelStore {
  /** Bytes per stored chunk (IndexedDB record) or per read (folder store). */
  readonly chunkSize: number;
  listModels(): Promise<CachedModel[]>;
  getModel(repo: string, revision: string): Promise<CachedModel | undefined>;
  /**
   * Creates the model's entry if needed and records what is expected of the given files (other files and
   * stored bytes are untouched). A file planned again with a different expected size or sha256 keeps its
   * bytes: the client decides whether to delete them first.
   */
  planFiles(repo: string, revision: string, files: PlannedFile[]): Promise<void>;
  /** Marks the model complete (every file must be complete) and stamps downloadedAt. */
  markComplete(repo: string, revision: string): Promise<void>;
  /** Deletes a model: every file, partial or complete, and its catalogue entry. */
  deleteModel(repo: string, revision: string): Promise<void>;
  /**
   * Deletes one file's bytes; the file stays in the catalogue as partial with size 0, or leaves the
   * catalogue too with `forget`.
   */
  deleteFile(repo: string, revision: string, path: string, options?: { forget?: boolean }): Promise<void>;
  /**
   * Opens a file for writing. With `resume`, stored bytes of a partial file are kept and `offset` says how
   * many there are; otherwise the file starts empty (a complete file is first made partial again).
   */
  openWriter(repo: string, revision: string, path: string, options: { resume: boolean }): Promise<FileWriter>;
  /** A stored file as a sequence of chunks, in order. */
  readChunks(repo: string, revision: string, path: string, options?: ReadOptions): AsyncIterable<Uint8Array>;
  /** A stored file as one buffer. */
  readFile(repo: string, revision: string, path: string, options?: ReadOptions): Promise<Uint8Array>;
  /** Free space, when the platform reports it. */
  estimate(): Promise<StorageEstimateInfo>;
  /** Asks the platform not to evict stored data (browsers: navigator.storage.persist; call it on a user action). */
  persist(): Promise<boolean>;
}

/** Reads a stored file whole by concatenating its chunks. Stores use it for readFile. */
export async function concatChunks(chunks: AsyncIterable<Uint8Array>, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let at = 0;
  for await (const c of chunks) {
    out.set(c.subarray(0, Math.min(c.length, size - at)), at);
    at += c.length;
  }
  return at === size ? out : out.subarray(0, Math.min(at, size));
}

/** Shared by the stores: derives totals and the complete flag from the files. */
export function buildCachedModel(
  m: { repo: string; revision: string; createdAt: number; updatedAt: number; downloadedAt?: number; complete: boolean },
  files: CachedFile[],
): CachedModel {
  const totalBytes = files.reduce((s, f) => s + f.size, 0);
  let expectedBytes: number | undefined = 0;
  for (const f of files) {
    const e = f.complete ? f.size : f.expectedSize;
    expectedBytes = e === undefined || expectedBytes === undefined ? undefined : expectedBytes + e;
  }
  const out: CachedModel = {
    repo: m.repo,
    revision: m.revision,
    files,
    totalBytes,
    complete: m.complete && files.length > 0 && files.every((f) => f.complete),
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
  };
  if (expectedBytes !== undefined) out.expectedBytes = expectedBytes;
  if (out.complete && m.downloadedAt !== undefined) out.downloadedAt = m.downloadedAt;
  return out;
}

// Names ---------------------------------------------------------------------------------------------------

const REPO_RE = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*\/)?[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Throws unless `repo` looks like a hub repository id ("org/name" or "name"). */
export function checkRepo(repo: string): void {
  if (!REPO_RE.test(repo) || repo.includes('..') || repo.length > 200) {
    throw new HubError(
      'not-found',
      `"${repo}" is not a Hugging Face model id. Use the form "organisation/model", for example "HuggingFaceTB/SmolLM2-135M".`,
    );
  }
}

/** Throws unless `path` is a safe relative file path inside a repository (no "..", no absolute paths). */
export function checkFilePath(path: string): void {
  const parts = path.split('/');
  const bad =
    path.length === 0 ||
    path.length > 500 ||
    path.includes('\\') ||
    path.includes('\0') ||
    parts.some((p) => p === '' || p === '.' || p === '..');
  if (bad) throw new HubError('bad-response', `The file name ${JSON.stringify(path)} is not a safe path inside a repository.`);
}

export function checkRevision(revision: string): void {
  if (revision.length === 0 || revision.length > 250 || revision === '.' || revision.includes('\0') || revision.includes('..')) {
    throw new HubError('not-found', `"${revision}" is not a valid revision (a branch, tag or commit).`);
  }
}
