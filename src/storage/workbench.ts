// The workbench stores of the "graft" database (runs, adapters, tuned, preferences), for the worker's
// TrainService: get / getAll / put / add / delete, typed with the row types the caller names. Each call runs in
// its own transaction, as idb's shortcuts do.
import { GraftDbConnection } from './open';
import type { AdapterRowKey, PreferenceRowKey, RunRowKey, TunedRowKey } from './schema';

/** The rows of the four stores; a caller names its own types (which have these keys) in `openWorkbench<Rows>()`. */
export interface WorkbenchRows {
  /** keyPath id. */
  runs: RunRowKey;
  /** keyPath id. */
  adapters: AdapterRowKey;
  /** keyPath repo. */
  tuned: TunedRowKey;
  /** keyPath id, given by add(). */
  preferences: PreferenceRowKey;
}

export type WorkbenchStore = keyof WorkbenchRows;
export type WorkbenchKey<S extends WorkbenchStore> = S extends 'preferences' ? number : string;

export interface Workbench<Rows extends WorkbenchRows = WorkbenchRows> {
  get<S extends WorkbenchStore>(store: S, key: WorkbenchKey<S>): Promise<Rows[S] | undefined>;
  getAll<S extends WorkbenchStore>(store: S): Promise<Rows[S][]>;
  /** Adds or replaces the row with the row's key. */
  put<S extends WorkbenchStore>(store: S, row: Rows[S]): Promise<void>;
  /** Adds a preference pair; returns the id it was given. */
  add(store: 'preferences', row: Omit<Rows['preferences'], 'id'>): Promise<number>;
  delete<S extends WorkbenchStore>(store: S, key: WorkbenchKey<S>): Promise<void>;
  /** Closes the connection (it opens again on next use). */
  close(): Promise<void>;
}

/**
 * Opens the workbench (the "graft" database, after the legacy import). `factory`: the IndexedDB factory
 * (default globalThis.indexedDB; tests pass fake-indexeddb's).
 */
export async function openWorkbench<Rows extends WorkbenchRows = WorkbenchRows>(factory?: IDBFactory): Promise<Workbench<Rows>> {
  const connection = new GraftDbConnection(factory);
  await connection.get();
  return new IdbWorkbench<Rows>(connection);
}

class IdbWorkbench<Rows extends WorkbenchRows> implements Workbench<Rows> {
  constructor(private readonly connection: GraftDbConnection) {}

  async get<S extends WorkbenchStore>(store: S, key: WorkbenchKey<S>): Promise<Rows[S] | undefined> {
    const db = await this.connection.get();
    return (await db.get(store, key as never)) as Rows[S] | undefined;
  }

  async getAll<S extends WorkbenchStore>(store: S): Promise<Rows[S][]> {
    const db = await this.connection.get();
    return (await db.getAll(store)) as Rows[S][];
  }

  async put<S extends WorkbenchStore>(store: S, row: Rows[S]): Promise<void> {
    const db = await this.connection.get();
    await db.put(store, row as never);
  }

  async add(store: 'preferences', row: Omit<Rows['preferences'], 'id'>): Promise<number> {
    const db = await this.connection.get();
    return db.add(store, row as unknown as PreferenceRowKey);
  }

  async delete<S extends WorkbenchStore>(store: S, key: WorkbenchKey<S>): Promise<void> {
    const db = await this.connection.get();
    await db.delete(store, key as never);
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}
