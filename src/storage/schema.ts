// The one IndexedDB database of Graft ("graft"): its object stores, their keys and indexes, the row shapes, and the
// ordered upgrade steps from one version to the next. Nothing here opens a database (see open.ts); this file
// imports only types, so any layer may use it. docs/storage.md explains the layout and the legacy import.
import type { DBSchema, IDBPDatabase, IDBPTransaction, StoreNames } from 'idb';

export const GRAFT_DB_NAME = 'graft';

// ---- rows ---------------------------------------------------------------------------------------------------

/**
 * A model in a model set. `set` keeps the downloaded models ("graft-models") apart from the fine-tuned ones
 * ("graft-tuned-models"): IdbModelStore's `name`, which used to name a database of its own.
 */
export interface ModelRow {
  set: string;
  repo: string;
  revision: string;
  createdAt: number;
  updatedAt: number;
  downloadedAt?: number;
  complete: boolean;
}

/** A model's file: bytes stored so far, what the hub promised, and the chunk size its chunks were cut at. */
export interface ModelFileRow {
  set: string;
  repo: string;
  revision: string;
  path: string;
  size: number;
  expectedSize?: number;
  sha256?: string;
  complete: boolean;
  chunkSize: number;
}

/** A complete checkpoint of a run: its files and how many chunks each has in `checkpointChunks`. */
export interface CheckpointRow {
  run: string;
  step: number;
  files: { name: string; size: number; chunks: number }[];
  savedAt: number;
}

/** A dataset file of the Data screen, its bytes once. */
export interface DatasetRow {
  id: string;
  name: string;
  bytes: Uint8Array;
  savedAt: number;
}

/** A dataset's edits by row (their shape belongs to the worker's DatasetService). */
export interface DatasetEditsRow {
  id: string;
  edits: [number, unknown][];
}

// The workbench rows belong to the worker's TrainService (RunRecord, AdapterRow, TunedModelRow,
// PreferenceRecord); only their keys are known here. workbench.ts lets the owner name the full types.
export interface RunRowKey {
  id: string;
}
export interface AdapterRowKey {
  id: string;
}
export interface TunedRowKey {
  repo: string;
}
export interface PreferenceRowKey {
  id: number;
}

/**
 * A tuned matmul plan (the engine's TuneEntry, src/engine/autotune.ts, whose full type belongs to the engine):
 * the chosen plan in words, its GPU time and when it was tuned are what the Bench screen lists.
 */
export interface MatmulPlanRow {
  label: string;
  ns: number;
  tunedAt: number;
}

/** meta "imported:<legacy database>": that legacy database was copied whole (legacy.ts). */
export interface LegacyImportMarker {
  database: string;
  importedAt: number;
}

// ---- the schema -----------------------------------------------------------------------------------------

export type ModelKey = [set: string, repo: string, revision: string];
export type ModelFileKey = [set: string, repo: string, revision: string, path: string];
export type ModelChunkKey = [set: string, repo: string, revision: string, path: string, index: number];
export type CheckpointKey = [run: string, step: number];
export type CheckpointChunkKey = [run: string, step: number, file: string, index: number];

export interface GraftSchema extends DBSchema {
  /** keyPath [set, repo, revision]. */
  models: { key: ModelKey; value: ModelRow };
  /** keyPath [set, repo, revision, path]; index "model" on [set, repo, revision]. */
  modelFiles: { key: ModelFileKey; value: ModelFileRow; indexes: { model: ModelKey } };
  /** Out-of-line key [set, repo, revision, path, i] → exactly the file's chunkSize bytes, except its last chunk. */
  modelChunks: { key: ModelChunkKey; value: Uint8Array };
  /** keyPath [run, step]. */
  checkpoints: { key: CheckpointKey; value: CheckpointRow };
  /** Out-of-line key [run, step, file, i] → a part of a checkpoint file. */
  checkpointChunks: { key: CheckpointChunkKey; value: Uint8Array };
  /** keyPath id. */
  runs: { key: string; value: RunRowKey };
  /** keyPath id. */
  adapters: { key: string; value: AdapterRowKey };
  /** keyPath repo: the catalogue entries of fine-tuned models (their files are the model set "graft-tuned-models"). */
  tuned: { key: string; value: TunedRowKey };
  /** keyPath id, autoIncrement. */
  preferences: { key: number; value: PreferenceRowKey };
  /** keyPath id. */
  datasets: { key: string; value: DatasetRow };
  /** keyPath id (the dataset's). */
  datasetEdits: { key: string; value: DatasetEditsRow };
  /** Out-of-line key, e.g. "hub" → the hub settings. */
  settings: { key: string; value: unknown };
  /** Out-of-line key → the database's own bookkeeping (legacy import markers). */
  meta: { key: string; value: LegacyImportMarker };
  /** Version 2. Out-of-line key: the autotuner's tuneKey (adapter | shape) → its plan. */
  matmulPlans: { key: string; value: MatmulPlanRow };
}

export type GraftStoreName = StoreNames<GraftSchema>;
export type GraftDb = IDBPDatabase<GraftSchema>;
export type UpgradeTransaction = IDBPTransaction<GraftSchema, ArrayLike<GraftStoreName>, 'versionchange'>;

// ---- upgrade steps --------------------------------------------------------------------------------------

/**
 * One version step: `db` is at the version before (UPGRADES[0] gets an empty database), `tx` is the upgrade
 * transaction (to read and rewrite rows it moves). It must not await anything but requests of `tx`.
 */
export type UpgradeStep = (db: GraftDb, tx: UpgradeTransaction) => void | Promise<void>;

/** Version 1: every store of GraftSchema above. */
function createVersion1(db: GraftDb): void {
  db.createObjectStore('models', { keyPath: ['set', 'repo', 'revision'] });
  db.createObjectStore('modelFiles', { keyPath: ['set', 'repo', 'revision', 'path'] }).createIndex('model', ['set', 'repo', 'revision']);
  db.createObjectStore('modelChunks');
  db.createObjectStore('checkpoints', { keyPath: ['run', 'step'] });
  db.createObjectStore('checkpointChunks');
  db.createObjectStore('runs', { keyPath: 'id' });
  db.createObjectStore('adapters', { keyPath: 'id' });
  db.createObjectStore('tuned', { keyPath: 'repo' });
  db.createObjectStore('preferences', { keyPath: 'id', autoIncrement: true });
  db.createObjectStore('datasets', { keyPath: 'id' });
  db.createObjectStore('datasetEdits', { keyPath: 'id' });
  db.createObjectStore('settings');
  db.createObjectStore('meta');
}

/** Version 2: the autotuner's plans in the browser (the worker's IdbTuneCache). */
function toVersion2(db: GraftDb): void {
  db.createObjectStore('matmulPlans');
}

/**
 * UPGRADES[v] takes the database from version v to v + 1. To change the schema, change GraftSchema and append a
 * step (e.g. `function toVersion2(db, tx) { tx.objectStore('runs').createIndex('byModel', 'repo'); }`); never edit
 * a step that has shipped: browsers out there are at every earlier version.
 */
export const UPGRADES: readonly UpgradeStep[] = [createVersion1, toVersion2];

export const GRAFT_DB_VERSION = UPGRADES.length;

/**
 * Runs the steps from `oldVersion` up to `newVersion` in the upgrade transaction. Steps that return nothing run
 * at once, inside the `upgradeneeded` event; a failure rejects (the caller aborts the upgrade).
 */
export async function upgradeGraftDb(db: GraftDb, oldVersion: number, newVersion: number, tx: UpgradeTransaction): Promise<void> {
  for (let v = oldVersion; v < newVersion; v++) {
    const step = UPGRADES[v];
    if (!step) throw new Error(`No upgrade step from version ${v} of the ${GRAFT_DB_NAME} database.`);
    const pending = step(db, tx);
    if (pending) await pending;
  }
}
