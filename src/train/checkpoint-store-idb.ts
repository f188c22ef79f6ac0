// Checkpoints in IndexedDB, for training in the browser (through `idb`; no Node imports): one transaction per
// checkpoint, so it is complete or absent. The layout: docs/training.md ("Checkpoints").
import { GRAFT_DB_NAME, GraftDbConnection, type CheckpointRow, type GraftDb } from '../storage';
import { formatBytes } from '../engine/errors';
import { isQuotaError } from '../hub/errors';
import { checkpointName, CheckpointError, type AfterFileHook, type CheckpointStore } from './checkpoint-store';

/** The database checkpoints are kept in (the one Graft database; they were in "graft-checkpoints" before). */
export const DEFAULT_CHECKPOINT_DB = GRAFT_DB_NAME;
/** Bytes per chunk record: well under what browsers accept for one value. */
export const CHECKPOINT_CHUNK_BYTES = 32 * 1024 * 1024;

export interface IdbCheckpointStoreOptions {
  /** The run whose checkpoints this store holds. */
  run: string;
  /** The IndexedDB factory (default globalThis.indexedDB; tests pass fake-indexeddb's). */
  indexedDB?: IDBFactory;
  /** Bytes per chunk (tests use small ones). */
  chunkBytes?: number;
  /** Test hook after each file's chunks are queued; throwing aborts the transaction. */
  afterFile?: AfterFileHook;
  /** How much storage is free, for the message of a full storage (default navigator.storage.estimate()). */
  estimate?: () => Promise<{ usage?: number; quota?: number }>;
}

export class IdbCheckpointStore implements CheckpointStore {
  readonly location: string;
  readonly run: string;
  private readonly chunkBytes: number;
  private readonly connection: GraftDbConnection;

  constructor(private readonly options: IdbCheckpointStoreOptions) {
    this.run = options.run;
    this.chunkBytes = options.chunkBytes ?? CHECKPOINT_CHUNK_BYTES;
    if (!Number.isSafeInteger(this.chunkBytes) || this.chunkBytes <= 0) throw new Error('IdbCheckpointStore: chunkBytes must be a positive integer');
    this.location = `IndexedDB ${DEFAULT_CHECKPOINT_DB}/checkpoints/${this.run}`;
    this.connection = new GraftDbConnection(options.indexedDB, () => new CheckpointError('IndexedDB is not available here, so checkpoints cannot be kept.'));
  }

  private db(): Promise<GraftDb> {
    return this.connection.get();
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  async list(): Promise<number[]> {
    const db = await this.db();
    const keys = await db.getAllKeys('checkpoints', IDBKeyRange.bound([this.run, -Infinity], [this.run, Infinity]));
    return keys.map((k) => k[1]).sort((a, b) => a - b);
  }

  async write(step: number, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
    if (!Number.isSafeInteger(step) || step < 0) throw new Error(`checkpoint step ${step} must be a whole number ≥ 0`);
    const db = await this.db();
    const tx = db.transaction(['checkpoints', 'checkpointChunks'], 'readwrite');
    const chunks = tx.objectStore('checkpointChunks');
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
      pending.push(rows.put({ run: this.run, step, files: listed, savedAt: Date.now() }));
    } catch (e) {
      tx.abort();
      await Promise.allSettled([...pending, tx.done]);
      if (isQuotaError(e)) throw await this.quotaError(step, files, e);
      throw e;
    }
    try {
      await Promise.all([...pending, tx.done]);
    } catch (e) {
      if (isQuotaError(e) || isQuotaError(tx.error)) throw await this.quotaError(step, files, e);
      throw new CheckpointError(`Could not save ${checkpointName(step)} in ${this.location}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  /**
   * The storage was full while a checkpoint was written: the transaction was aborted, so the earlier checkpoints
   * are as they were. Says how much the checkpoint needs, how much is free, and which checkpoint is kept.
   */
  private async quotaError(step: number, files: ReadonlyMap<string, Uint8Array>, cause: unknown): Promise<CheckpointError> {
    const needed = [...files.values()].reduce((n, b) => n + b.byteLength, 0);
    let free: number | undefined;
    try {
      const est = await (this.options.estimate ?? (() => globalThis.navigator?.storage?.estimate?.() ?? Promise.resolve({})))();
      if (est.quota !== undefined && est.usage !== undefined) free = Math.max(0, est.quota - est.usage);
    } catch {
      // no estimate: the message goes without it
    }
    const kept = (await this.list().catch(() => [] as number[])).filter((s) => s !== step);
    const keptText = kept.length ? `${checkpointName(kept[kept.length - 1]!)}, the latest complete checkpoint, is kept` : 'no earlier checkpoint of this run exists';
    return new CheckpointError(
      `There is not enough storage space to save ${checkpointName(step)}: it needs ${formatBytes(needed)}${free !== undefined ? ` and ${formatBytes(free)} is free` : ''}; ${keptText}: ` +
        'free at least that much (delete models, adapters or runs you no longer need), then continue the run.',
      { cause, code: 'quota' },
    );
  }

  async read(step: number): Promise<Map<string, Uint8Array>> {
    const db = await this.db();
    const tx = db.transaction(['checkpoints', 'checkpointChunks'], 'readonly');
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
        const c = await tx.objectStore('checkpointChunks').get([this.run, step, f.name, i]);
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
    const tx = db.transaction(['checkpoints', 'checkpointChunks'], 'readwrite');
    await Promise.all([
      tx.objectStore('checkpoints').delete([this.run, step]),
      tx.objectStore('checkpointChunks').delete(IDBKeyRange.bound([this.run, step], [this.run, step, []])),
      tx.done,
    ]);
  }
}
