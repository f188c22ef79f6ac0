// The autotuner's cache in the browser (the engine's TuneCache): the graft database's matmulPlans store, key the
// autotuner's tuneKey (adapter | shape), value its TuneEntry. The Node counterpart is a JSON file
// (src/engine/tune-cache-node.ts); docs/storage.md lists the store, docs/kernels.md the autotuner.
import type { TuneCache, TuneEntry } from '../engine/autotune';
import { GraftDbConnection } from '../storage';

export class IdbTuneCache implements TuneCache {
  private readonly connection: GraftDbConnection;

  /** `factory`: the IndexedDB factory (default globalThis.indexedDB; tests pass fake-indexeddb's). */
  constructor(factory?: IDBFactory) {
    this.connection = new GraftDbConnection(factory);
  }

  async get(key: string): Promise<TuneEntry | undefined> {
    const db = await this.connection.get();
    return (await db.get('matmulPlans', key)) as TuneEntry | undefined;
  }

  async put(key: string, entry: TuneEntry): Promise<void> {
    const db = await this.connection.get();
    await db.put('matmulPlans', entry, key);
  }

  async entries(): Promise<[string, TuneEntry][]> {
    const db = await this.connection.get();
    const tx = db.transaction('matmulPlans');
    const [keys, values] = await Promise.all([tx.store.getAllKeys(), tx.store.getAll()]);
    await tx.done;
    return keys.map((k, i) => [k, values[i] as TuneEntry]);
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}
