// Checkpoints in IndexedDB, for training in the browser (through `idb`; no Node imports).
//
// Layout (database "graft-checkpoints" by default, version 1):
//   checkpoints  key [run, step]            → { run, step, files: [{ name, size, chunks }], savedAt }
//   chunks       key [run, step, file, i]   → Uint8Array of at most CHUNK bytes
// A checkpoint is written in ONE readwrite transaction: its old chunks are deleted, every chunk is put, and the
// `checkpoints` row goes in last. IndexedDB commits a transaction whole or not at all, so a tab closed, a
// quota error or a crash mid-write leaves the previous state: the checkpoint is complete or absent. `list()`
// reads the rows only. `run` separates runs (e.g. the app's run id, or the job's output_dir).
import { wrap, type DBSchema, type IDBPDatabase } from 'idb';
import { checkpointName, CheckpointError, type AfterFileHook, type CheckpointStore } from './checkpoint-store';

export const DEFAULT_CHECKPOINT_DB = 'graft-checkpoints';
/** Bytes per chunk record: well under what browsers accept for one value. */
export const CHECKPOINT_CHUNK_BYTES = 32 * 1024 * 1024;

interface CheckpointRow {
  run: string;
  step: number;
  files: { name: string; size: number; chunks: number }[];
  savedAt: number;
}

interface CheckpointDB extends DBSchema {
  checkpoints: { key: [string, number]; value: CheckpointRow };
  chunks: { key: [string, number, string, number]; value: Uint8Array };
}

export interface IdbCheckpointStoreOptions {
  /** The run whose checkpoints this store holds. */
  run: string;
  /** Database name (default "graft-checkpoints"). */
  name?: string;
  /** The IndexedDB factory (default globalThis.indexedDB; tests pass fake-indexeddb's). */
  indexedDB?: IDBFactory;
  /** Bytes per chunk (tests use small ones). */
  chunkBytes?: number;
  /** Test hook after each file's chunks are queued; throwing aborts the transaction. */
  afterFile?: AfterFileHook;
}

export class IdbCheckpointStore implements CheckpointStore {
  readonly location: string;
  readonly run: string;
  private readonly name: string;
  private readonly chunkBytes: number;
  private dbPromise: Promise<IDBPDatabase<CheckpointDB>> | undefined;

  constructor(private readonly options: IdbCheckpointStoreOptions) {
    this.run = options.run;
    this.name = options.name ?? DEFAULT_CHECKPOINT_DB;
    this.chunkBytes = options.chunkBytes ?? CHECKPOINT_CHUNK_BYTES;
    if (!Number.isSafeInteger(this.chunkBytes) || this.chunkBytes <= 0) throw new Error('IdbCheckpointStore: chunkBytes must be a positive integer');
    this.location = `IndexedDB ${this.name}/${this.run}`;
  }

  private db(): Promise<IDBPDatabase<CheckpointDB>> {
    const factory = this.options.indexedDB ?? globalThis.indexedDB;
    if (!factory) return Promise.reject(new CheckpointError('IndexedDB is not available here, so checkpoints cannot be kept.'));
    this.dbPromise ??= new Promise<IDBPDatabase<CheckpointDB>>((resolve, reject) => {
      const req = factory.open(this.name, 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains('checkpoints')) db.createObjectStore('checkpoints');
        if (!db.objectStoreNames.contains('chunks')) db.createObjectStore('chunks');
      };
      req.onsuccess = () => {
        const db = req.result;
        // Another tab upgrading the schema must not be blocked by this connection.
        db.onversionchange = () => db.close();
        resolve(wrap(db) as unknown as IDBPDatabase<CheckpointDB>);
      };
      req.onerror = () => reject(req.error);
    }).catch((e: unknown) => {
      this.dbPromise = undefined;
      throw e;
    });
    return this.dbPromise;
  }

  async close(): Promise<void> {
    const p = this.dbPromise;
    this.dbPromise = undefined;
    if (p) (await p).close();
  }

  async list(): Promise<number[]> {
    const db = await this.db();
    const keys = await db.getAllKeys('checkpoints', IDBKeyRange.bound([this.run, -Infinity], [this.run, Infinity]));
    return keys.map((k) => k[1]).sort((a, b) => a - b);
  }

  async write(step: number, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
    if (!Number.isSafeInteger(step) || step < 0) throw new Error(`checkpoint step ${step} must be a whole number ≥ 0`);
    const db = await this.db();
    const tx = db.transaction(['checkpoints', 'chunks'], 'readwrite');
    const chunks = tx.objectStore('chunks');
    const rows = tx.objectStore('checkpoints');
    const pending: Promise<unknown>[] = [];
    try {
      pending.push(rows.delete([this.run, step]));
      pending.push(chunks.delete(IDBKeyRange.bound([this.run, step], [this.run, step, []])));
      const listed: CheckpointRow['files'] = [];
      for (const [name, bytes] of files) {
        const n = Math.max(1, Math.ceil(bytes.byteLength / this.chunkBytes));
        for (let i = 0; i < n; i++) {
          pending.push(chunks.put(bytes.slice(i * this.chunkBytes, (i + 1) * this.chunkBytes), [this.run, step, name, i]));
        }
        listed.push({ name, size: bytes.byteLength, chunks: n });
        this.options.afterFile?.(step, name);
      }
      pending.push(rows.put({ run: this.run, step, files: listed, savedAt: Date.now() }, [this.run, step]));
    } catch (e) {
      tx.abort();
      await Promise.allSettled([...pending, tx.done]);
      throw e;
    }
    try {
      await Promise.all([...pending, tx.done]);
    } catch (e) {
      throw new CheckpointError(`Could not save ${checkpointName(step)} in ${this.location}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  async read(step: number): Promise<Map<string, Uint8Array>> {
    const db = await this.db();
    const tx = db.transaction(['checkpoints', 'chunks'], 'readonly');
    const row = await tx.objectStore('checkpoints').get([this.run, step]);
    if (!row) {
      await tx.done;
      throw new CheckpointError(`${this.location} has no complete ${checkpointName(step)}.`);
    }
    const out = new Map<string, Uint8Array>();
    for (const f of row.files) {
      const bytes = new Uint8Array(f.size);
      let at = 0;
      for (let i = 0; i < f.chunks; i++) {
        const c = await tx.objectStore('chunks').get([this.run, step, f.name, i]);
        if (!c) throw new CheckpointError(`${checkpointName(step)} in ${this.location} lacks part ${i} of ${f.name}.`);
        bytes.set(c, at);
        at += c.byteLength;
      }
      if (at !== f.size) throw new CheckpointError(`${checkpointName(step)} in ${this.location}: ${f.name} holds ${at} bytes, not ${f.size}.`);
      out.set(f.name, bytes);
    }
    await tx.done;
    return out;
  }

  async delete(step: number): Promise<void> {
    const db = await this.db();
    const tx = db.transaction(['checkpoints', 'chunks'], 'readwrite');
    await Promise.all([
      tx.objectStore('checkpoints').delete([this.run, step]),
      tx.objectStore('chunks').delete(IDBKeyRange.bound([this.run, step], [this.run, step, []])),
      tx.done,
    ]);
  }
}
