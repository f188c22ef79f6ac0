// Model store in IndexedDB, for browsers and workers (through `idb`). No Node imports here. The layout and its
// transactions: docs/hub.md ("IndexedDB").
import { GraftDbConnection, type GraftDb, type ModelFileRow as FileRow, type ModelRow } from '../storage';
import { HubError, isQuotaError, quotaError } from './errors';
import {
  buildCachedModel,
  checkFilePath,
  concatChunks,
  type CachedFile,
  type CachedModel,
  type FileWriter,
  type ModelStore,
  type PlannedFile,
  type ReadOptions,
  type StorageEstimateInfo,
} from './store';

/** The model set of downloaded models (the fine-tuned ones are "graft-tuned-models"). */
export const DEFAULT_IDB_NAME = 'graft-models';
export const DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024;

type DB = GraftDb;

export interface IdbModelStoreOptions {
  /** The model set in the "graft" database (default "graft-models"; the app keeps fine-tuned models in "graft-tuned-models"). */
  name?: string;
  /** Bytes per chunk record (default 32 MiB). Tests use small chunks. */
  chunkSize?: number;
  /** The IndexedDB factory (default globalThis.indexedDB; tests may pass fake-indexeddb's). */
  indexedDB?: IDBFactory;
  /** Overrides navigator.storage.estimate (tests). */
  estimate?: () => Promise<StorageEstimateInfo>;
}

export class IdbModelStore implements ModelStore {
  readonly chunkSize: number;
  readonly name: string;
  private readonly estimateOverride: (() => Promise<StorageEstimateInfo>) | undefined;
  private readonly connection: GraftDbConnection;

  constructor(options: IdbModelStoreOptions = {}) {
    this.name = options.name ?? DEFAULT_IDB_NAME;
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isSafeInteger(this.chunkSize) || this.chunkSize <= 0) throw new Error('IdbModelStore: chunkSize must be a positive integer');
    this.estimateOverride = options.estimate;
    this.connection = new GraftDbConnection(
      options.indexedDB,
      () => new Error('IndexedDB is not available here, so models cannot be stored. Use a current browser outside private mode.'),
    );
  }

  private db(): Promise<DB> {
    return this.connection.get();
  }

  /** Closes the database connection (it reopens on next use). */
  close(): Promise<void> {
    return this.connection.close();
  }

  async listModels(): Promise<CachedModel[]> {
    const db = await this.db();
    const tx = db.transaction(['models', 'modelFiles'], 'readonly');
    const models = await tx.objectStore('models').getAll(setRange(this.name));
    const files = await tx.objectStore('modelFiles').getAll(setRange(this.name));
    await tx.done;
    return models.map((m) => toCachedModel(m, files.filter((f) => f.repo === m.repo && f.revision === m.revision)));
  }

  async getModel(repo: string, revision: string): Promise<CachedModel | undefined> {
    const db = await this.db();
    const tx = db.transaction(['models', 'modelFiles'], 'readonly');
    const m = await tx.objectStore('models').get([this.name, repo, revision]);
    const files = m ? await tx.objectStore('modelFiles').index('model').getAll([this.name, repo, revision]) : [];
    await tx.done;
    return m ? toCachedModel(m, files) : undefined;
  }

  async planFiles(repo: string, revision: string, planned: PlannedFile[]): Promise<void> {
    planned.forEach((f) => checkFilePath(f.path));
    const db = await this.db();
    await this.guard(`the catalogue entry of ${repo}`, async () => {
      const tx = db.transaction(['models', 'modelFiles'], 'readwrite');
      const models = tx.objectStore('models');
      const files = tx.objectStore('modelFiles');
      const now = Date.now();
      const m = await models.get([this.name, repo, revision]);
      const row: ModelRow = m ? { ...m } : { set: this.name, repo, revision, createdAt: now, updatedAt: now, complete: false };
      row.updatedAt = now;
      row.complete = false;
      delete row.downloadedAt;
      await models.put(row);
      for (const p of planned) {
        const f = await files.get([this.name, repo, revision, p.path]);
        const next: FileRow = f
          ? { ...f }
          : { set: this.name, repo, revision, path: p.path, size: 0, complete: false, chunkSize: this.chunkSize };
        if (p.expectedSize !== undefined) next.expectedSize = p.expectedSize;
        if (p.sha256 !== undefined) next.sha256 = p.sha256;
        await files.put(next);
      }
      await tx.done;
    });
  }

  async markComplete(repo: string, revision: string): Promise<void> {
    const db = await this.db();
    const tx = db.transaction(['models', 'modelFiles'], 'readwrite');
    const m = await tx.objectStore('models').get([this.name, repo, revision]);
    const files = await tx.objectStore('modelFiles').index('model').getAll([this.name, repo, revision]);
    const partial = files.filter((f) => !f.complete).map((f) => f.path);
    if (!m || partial.length) {
      tx.abort();
      await tx.done.catch(() => undefined);
      throw new Error(`markComplete: ${repo}@${revision} ${m ? `has partial files: ${partial.join(', ')}` : 'is not stored'}`);
    }
    const now = Date.now();
    await tx.objectStore('models').put({ ...m, complete: true, downloadedAt: now, updatedAt: now });
    await tx.done;
  }

  async deleteModel(repo: string, revision: string): Promise<void> {
    const db = await this.db();
    const tx = db.transaction(['models', 'modelFiles', 'modelChunks'], 'readwrite');
    const range = IDBKeyRange.bound([this.name, repo, revision], [this.name, repo, revision, []]);
    await tx.objectStore('modelChunks').delete(range);
    await tx.objectStore('modelFiles').delete(range);
    await tx.objectStore('models').delete([this.name, repo, revision]);
    await tx.done;
  }

  async deleteFile(repo: string, revision: string, path: string, options: { forget?: boolean } = {}): Promise<void> {
    const db = await this.db();
    const tx = db.transaction(['modelFiles', 'modelChunks'], 'readwrite');
    await tx.objectStore('modelChunks').delete(chunkRange(this.name, repo, revision, path));
    const f = await tx.objectStore('modelFiles').get([this.name, repo, revision, path]);
    if (f && options.forget) await tx.objectStore('modelFiles').delete([this.name, repo, revision, path]);
    else if (f) await tx.objectStore('modelFiles').put({ ...f, size: 0, complete: false, chunkSize: this.chunkSize });
    await tx.done;
  }

  async openWriter(repo: string, revision: string, path: string, options: { resume: boolean }): Promise<FileWriter> {
    checkFilePath(path);
    const db = await this.db();
    let row!: FileRow;
    let tail: Uint8Array | undefined;
    await this.guard(path, async () => {
      const tx = db.transaction(['models', 'modelFiles', 'modelChunks'], 'readwrite');
      const now = Date.now();
      const m = await tx.objectStore('models').get([this.name, repo, revision]);
      await tx.objectStore('models').put(
        m ? { ...m, complete: false, updatedAt: now } : { set: this.name, repo, revision, createdAt: now, updatedAt: now, complete: false },
      );
      const f = await tx.objectStore('modelFiles').get([this.name, repo, revision, path]);
      if (options.resume && f && f.size > 0) {
        row = { ...f, complete: false };
        const rem = f.size % f.chunkSize;
        if (rem !== 0) {
          const last = await tx.objectStore('modelChunks').get([this.name, repo, revision, path, Math.floor(f.size / f.chunkSize)]);
          if (!last || last.length !== rem) throw new Error(`IdbModelStore: the last chunk of ${path} is missing or has the wrong size`);
          tail = last;
        }
      } else {
        await tx.objectStore('modelChunks').delete(chunkRange(this.name, repo, revision, path));
        row = f
          ? { ...f, size: 0, complete: false, chunkSize: this.chunkSize }
          : { set: this.name, repo, revision, path, size: 0, complete: false, chunkSize: this.chunkSize };
      }
      await tx.objectStore('modelFiles').put(row);
      await tx.done;
    });
    return new IdbWriter(this, () => this.db(), row, tail);
  }

  async *readChunks(repo: string, revision: string, path: string, options: ReadOptions = {}): AsyncIterable<Uint8Array> {
    const db = await this.db();
    const row = await db.get('modelFiles', [this.name, repo, revision, path]);
    checkReadable(row, repo, path, options);
    const limit = Math.min(row.size, options.end ?? Infinity);
    for (let i = 0; i * row.chunkSize < limit; i++) {
      const c = await db.get('modelChunks', [this.name, repo, revision, path, i]);
      const want = Math.min(row.chunkSize, limit - i * row.chunkSize);
      if (!c || c.length < want) throw new Error(`IdbModelStore: chunk ${i} of ${path} is missing or short`);
      yield c.length === want ? c : c.subarray(0, want);
    }
  }

  async readFile(repo: string, revision: string, path: string, options: ReadOptions = {}): Promise<Uint8Array> {
    const db = await this.db();
    const row = await db.get('modelFiles', [this.name, repo, revision, path]);
    checkReadable(row, repo, path, options);
    return concatChunks(this.readChunks(repo, revision, path, options), Math.min(row.size, options.end ?? Infinity));
  }

  async estimate(): Promise<StorageEstimateInfo> {
    if (this.estimateOverride) return this.estimateOverride();
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    if (!storage?.estimate) return {};
    const e = await storage.estimate();
    const out: StorageEstimateInfo = {};
    if (e.usage !== undefined) out.usage = e.usage;
    if (e.quota !== undefined) out.quota = e.quota;
    if (e.usage !== undefined && e.quota !== undefined) out.available = Math.max(0, e.quota - e.usage);
    return out;
  }

  async persist(): Promise<boolean> {
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    if (!storage?.persist) return false;
    return storage.persist();
  }

  /** Runs a write, turning a quota failure into HubError 'quota'. */
  async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (isQuotaError(e)) throw quotaError(what, e);
      throw e;
    }
  }
}

class IdbWriter implements FileWriter {
  private readonly buf: Uint8Array;
  private bufLen = 0;
  /** Index of the chunk the buffer holds; every chunk before it is full and stored. */
  private index: number;
  /** True when the buffer holds bytes not yet stored. */
  private dirty = false;
  private finished = false;

  constructor(
    private readonly store: IdbModelStore,
    private readonly db: () => Promise<DB>,
    private readonly row: FileRow,
    tail: Uint8Array | undefined,
  ) {
    this.buf = new Uint8Array(row.chunkSize);
    this.index = Math.floor(row.size / row.chunkSize);
    if (tail) {
      this.buf.set(tail);
      this.bufLen = tail.length;
    }
  }

  get offset(): number {
    return this.index * this.row.chunkSize + this.bufLen;
  }

  async append(data: Uint8Array): Promise<void> {
    if (this.finished) throw new Error(`IdbWriter: append after close or complete (${this.row.path})`);
    const cs = this.row.chunkSize;
    let i = 0;
    while (i < data.length) {
      const n = Math.min(cs - this.bufLen, data.length - i);
      this.buf.set(data.subarray(i, i + n), this.bufLen);
      this.bufLen += n;
      this.dirty = true;
      i += n;
      if (this.bufLen === cs) {
        // put() clones the value synchronously, so the buffer can be reused once it returns.
        await this.write(this.buf, (this.index + 1) * cs, false);
        this.index++;
        this.bufLen = 0;
        this.dirty = false;
      }
    }
  }

  async close(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (this.dirty) {
      await this.write(this.buf.slice(0, this.bufLen), this.offset, false);
      this.dirty = false;
    }
  }

  async complete(): Promise<void> {
    if (this.finished) throw new Error(`IdbWriter: complete after close (${this.row.path})`);
    this.finished = true;
    await this.write(this.bufLen > 0 ? this.buf.slice(0, this.bufLen) : undefined, this.offset, true);
    this.dirty = false;
  }

  /** Stores the buffer as chunk `index` (when given) and the file's new size, in one transaction. */
  private async write(chunk: Uint8Array | undefined, size: number, complete: boolean): Promise<void> {
    const { set, repo, revision, path } = this.row;
    const db = await this.db();
    await this.store.guard(path, async () => {
      const tx = db.transaction(['modelFiles', 'modelChunks'], 'readwrite');
      const f = await tx.objectStore('modelFiles').get([set, repo, revision, path]);
      if (!f) {
        tx.abort();
        await tx.done.catch(() => undefined);
        throw new HubError('aborted', `${path} was deleted while it was being downloaded.`, { file: path });
      }
      if (chunk) await tx.objectStore('modelChunks').put(chunk, [set, repo, revision, path, this.index]);
      await tx.objectStore('modelFiles').put({ ...f, size, complete, chunkSize: this.row.chunkSize });
      await tx.done;
    });
  }
}

/** Every key of a model set (models and files keys start with the set). */
function setRange(set: string): IDBKeyRange {
  return IDBKeyRange.bound([set], [set, []]);
}

function chunkRange(set: string, repo: string, revision: string, path: string): IDBKeyRange {
  return IDBKeyRange.bound([set, repo, revision, path, 0], [set, repo, revision, path, Infinity]);
}

function checkReadable(row: FileRow | undefined, repo: string, path: string, options: ReadOptions): asserts row is FileRow {
  if (!row) throw new HubError('not-found', `${path} of ${repo} is not stored on this device. Download the model first.`, { file: path });
  if (!row.complete && !options.allowPartial) {
    throw new HubError('not-found', `${path} of ${repo} is only partly downloaded. Resume the download before using the model.`, {
      file: path,
    });
  }
}

function toCachedModel(m: ModelRow, rows: FileRow[]): CachedModel {
  const files: CachedFile[] = rows
    .map((f) => {
      const c: CachedFile = { path: f.path, size: f.size, complete: f.complete };
      if (f.expectedSize !== undefined) c.expectedSize = f.expectedSize;
      if (f.sha256 !== undefined) c.sha256 = f.sha256;
      return c;
    })
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return buildCachedModel(m, files);
}
