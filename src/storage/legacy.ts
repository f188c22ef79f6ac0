// The import of the databases Graft kept before the one "graft" database: each legacy database that exists is
// copied record by record into the new stores, a marker is written when all of it is copied, and only then is the
// legacy database deleted. docs/storage.md has the design; the legacy layouts are recorded in
// test/storage/legacy-fixture.ts.
import { wrap, type IDBPDatabase } from 'idb';
import { connectGraftDb } from './connect';
import type { GraftDb, GraftStoreName, LegacyImportMarker } from './schema';

/** Where one legacy store's records go. */
interface LegacyCopy {
  from: string;
  to: GraftStoreName;
  /** For a store with out-of-line keys: the new key from the legacy one. */
  key?: (legacyKey: IDBValidKey) => IDBValidKey;
  /** The new record from the legacy one (default: unchanged). */
  row?: (value: Record<string, unknown>, legacyKey: IDBValidKey) => unknown;
}

interface LegacyDatabase {
  name: string;
  /** In order: what a record claims (a file row, a checkpoint row) is copied after what it claims. */
  copies: LegacyCopy[];
}

/** A legacy model database ("graft-models", "graft-tuned-models") becomes the model set of the same name. */
function modelDatabase(name: string): LegacyDatabase {
  return {
    name,
    copies: [
      { from: 'chunks', to: 'modelChunks', key: (k) => [name, ...(k as IDBValidKey[])] },
      { from: 'files', to: 'modelFiles', row: (v) => ({ ...v, set: name }) },
      { from: 'models', to: 'models', row: (v) => ({ ...v, set: name }) },
    ],
  };
}

export const LEGACY_DATABASES: readonly LegacyDatabase[] = [
  modelDatabase('graft-models'),
  modelDatabase('graft-tuned-models'),
  {
    name: 'graft-checkpoints',
    copies: [
      { from: 'chunks', to: 'checkpointChunks', key: (k) => k },
      // Legacy rows had out-of-line keys [run, step]; the key is what they were found by.
      { from: 'checkpoints', to: 'checkpoints', row: (v, k) => ({ ...v, run: (k as [string, number])[0], step: (k as [string, number])[1] }) },
    ],
  },
  {
    name: 'graft-workbench',
    copies: [
      { from: 'runs', to: 'runs' },
      { from: 'adapters', to: 'adapters' },
      { from: 'tuned', to: 'tuned' },
      // With their ids: the key generator then continues after the largest one.
      { from: 'preferences', to: 'preferences' },
    ],
  },
  {
    name: 'graft-datasets',
    copies: [
      { from: 'edits', to: 'datasetEdits' },
      { from: 'files', to: 'datasets' },
    ],
  },
  { name: 'graft-settings', copies: [{ from: 'settings', to: 'settings', key: (k) => k }] },
];

export const legacyMarkerKey = (database: string) => `imported:${database}`;

export interface LegacyImportOptions {
  /** Test hook, called after each record is copied (`copied` counts them in this call); throwing interrupts. */
  afterCopy?: (database: string, store: string, copied: number) => void;
}

/**
 * Copies every legacy database that exists into "graft" and deletes it; returns the names of those copied. Safe to
 * interrupt anywhere: puts are idempotent, so a rerun copies again what had no marker yet, and a database with a
 * marker is only deleted. One tab at a time (Web Locks, where there are).
 */
export function importLegacyDatabases(factory: IDBFactory, options: LegacyImportOptions = {}): Promise<string[]> {
  return withImportLock(async () => {
    const existing = await listDatabases(factory);
    const candidates = LEGACY_DATABASES.filter((l) => !existing || existing.has(l.name));
    if (candidates.length === 0) return [];
    const imported: string[] = [];
    const db = await connectGraftDb(factory);
    const counter = { copied: 0 };
    try {
      for (const legacy of candidates) {
        if (!(await db.get('meta', legacyMarkerKey(legacy.name)))) {
          const old = await openExisting(factory, legacy.name);
          if (!old) continue;
          try {
            await copyDatabase(old, db, legacy, counter, options);
          } finally {
            old.close();
          }
          const marker: LegacyImportMarker = { database: legacy.name, importedAt: Date.now() };
          await db.put('meta', marker, legacyMarkerKey(legacy.name));
          imported.push(legacy.name);
        }
        await deleteDatabase(factory, legacy.name);
      }
    } finally {
      db.close();
    }
    return imported;
  });
}

/** One record at a time, each in its own transactions, so that no more than one chunk is held in memory. */
async function copyDatabase(old: IDBPDatabase, db: GraftDb, legacy: LegacyDatabase, counter: { copied: number }, options: LegacyImportOptions): Promise<void> {
  const target = db as unknown as IDBPDatabase;
  for (const c of legacy.copies) {
    if (!old.objectStoreNames.contains(c.from)) continue;
    const keys = await old.getAllKeys(c.from);
    for (const k of keys) {
      const value = (await old.get(c.from, k)) as Record<string, unknown> | undefined;
      if (value === undefined) continue;
      const row = c.row ? c.row(value, k) : value;
      await (c.key ? target.put(c.to, row, c.key(k)) : target.put(c.to, row));
      counter.copied++;
      options.afterCopy?.(legacy.name, c.from, counter.copied);
    }
  }
}

/** The names of the databases there are, or undefined where the factory cannot list them. */
async function listDatabases(factory: IDBFactory): Promise<Set<string> | undefined> {
  if (typeof factory.databases !== 'function') return undefined;
  try {
    return new Set((await factory.databases()).map((d) => d.name).filter((n): n is string => n !== undefined));
  } catch {
    return undefined;
  }
}

/**
 * Opens a database at its current version, or gives undefined when there is none, without creating one: opening
 * a database that does not exist starts an upgrade from version 0, which is aborted, and an aborted creation
 * leaves no database behind.
 */
function openExisting(factory: IDBFactory, name: string): Promise<IDBPDatabase | undefined> {
  return new Promise((resolve, reject) => {
    let absent = false;
    const req = factory.open(name);
    req.onupgradeneeded = (e) => {
      if (e.oldVersion === 0) {
        absent = true;
        req.transaction?.abort();
      }
    };
    req.onsuccess = () => resolve(wrap(req.result));
    req.onerror = (e) => {
      if (!absent) return reject(req.error);
      e.preventDefault();
      resolve(undefined);
    };
  });
}

/** Deletes a legacy database. Blocked (an older Graft in another tab holds it open), it goes on once that closes. */
function deleteDatabase(factory: IDBFactory, name: string): Promise<void> {
  return new Promise((resolve) => {
    const req = factory.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onblocked = () => resolve();
    req.onerror = () => {
      console.warn(`Graft: the old database ${name} could not be deleted; it is tried again on the next visit.`, req.error);
      resolve();
    };
  });
}

async function withImportLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (!locks?.request) return fn();
  return locks.request('graft-legacy-import', fn);
}
