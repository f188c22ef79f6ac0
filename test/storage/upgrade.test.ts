// The one "graft" database and the move from the five legacy databases (fake-indexeddb): a browser that used Graft
// before (test/storage/legacy-fixture.ts writes its databases as the code of that time did) finds every model,
// checkpoint, run, adapter, preference, dataset and setting through the public APIs, byte for byte; an import
// interrupted anywhere completes on the next open with nothing lost or doubled; the legacy databases go.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { IdbModelStore } from '../../src/hub/store-idb';
import { GRAFT_DB_NAME, GRAFT_DB_VERSION, GraftDbConnection, importLegacyDatabases, openGraftDb, openWorkbench, UPGRADES, type GraftStoreName } from '../../src/storage';
import { IdbCheckpointStore } from '../../src/train/checkpoint-store-idb';
import { DatasetService } from '../../src/worker/datasets';
import { IdbTuneCache } from '../../src/worker/tune-cache-idb';
import type { TuneEntry } from '../../src/engine/autotune';
import { upgradeGraftDb, type GraftDb, type UpgradeTransaction } from '../../src/storage/schema';
import { wrap } from 'idb';
import { HubSettingsStore } from '../../src/worker/settings';
import {
  ADAPTER,
  CHECKPOINTS,
  DATASET_ID,
  databaseNames,
  HUB_SETTINGS,
  LEGACY_NAMES,
  legacyRecords,
  MODEL_FILES,
  MODEL_REPO,
  PARTIAL_FILE,
  PARTIAL_REPO,
  PARTIAL_STORED,
  PREFERENCES,
  REVISION,
  RUN,
  RUN_ID,
  TUNED_FILES,
  TUNED_REPO,
  TUNED_ROW,
  writeLegacyDatabase,
  writeLegacyDatabases,
} from './legacy-fixture';

const TUNED_SET = 'graft-tuned-models';

/** Everything the legacy databases held, found through the public APIs (which open, and so import, first). */
async function expectEverythingThere(factory: IDBFactory): Promise<void> {
  const models = new IdbModelStore({ indexedDB: factory, estimate: async () => ({}) });
  const listed = await models.listModels();
  expect(listed.map((m) => [m.repo, m.revision, m.complete])).toEqual([
    [MODEL_REPO, REVISION, true],
    [PARTIAL_REPO, REVISION, false],
  ]);
  const full = listed[0]!;
  expect(full.files.map((f) => [f.path, f.size, f.complete, f.sha256])).toEqual(
    Object.entries(MODEL_FILES).map(([path, data]) => [path, data.length, true, `sha-${path}`]),
  );
  expect(full.downloadedAt).toBe(1_600_000_001_000);
  for (const [path, data] of Object.entries(MODEL_FILES)) expect(await models.readFile(MODEL_REPO, REVISION, path)).toEqual(data);
  expect(listed[1]).toMatchObject({ totalBytes: PARTIAL_STORED, expectedBytes: PARTIAL_FILE.length });
  expect(await models.readFile(PARTIAL_REPO, REVISION, 'model.safetensors', { allowPartial: true })).toEqual(PARTIAL_FILE.subarray(0, PARTIAL_STORED));
  await models.close();

  const tuned = new IdbModelStore({ name: TUNED_SET, indexedDB: factory });
  expect((await tuned.listModels()).map((m) => [m.repo, m.complete])).toEqual([[TUNED_REPO, true]]);
  for (const [path, data] of Object.entries(TUNED_FILES)) expect(await tuned.readFile(TUNED_REPO, REVISION, path)).toEqual(data);
  await tuned.close();

  const checkpoints = new IdbCheckpointStore({ run: RUN_ID, indexedDB: factory });
  expect(await checkpoints.list()).toEqual([2, 4]);
  for (const [step, files] of Object.entries(CHECKPOINTS)) expect(await checkpoints.read(Number(step))).toEqual(new Map(Object.entries(files)));
  await checkpoints.close();

  expect(await new HubSettingsStore(factory).get()).toMatchObject({ endpoint: HUB_SETTINGS.endpoint, hasToken: true, rememberToken: true });
  expect(await new HubSettingsStore(factory).current()).toEqual({ endpoint: HUB_SETTINGS.endpoint, token: HUB_SETTINGS.token });

  const datasets = new DatasetService(factory);
  expect(await datasets.restore(DATASET_ID)).toMatchObject({ id: DATASET_ID, name: 'three.jsonl', rows: 2, valid: 2, problemCount: 0, edited: 2 });
  const rows = (await datasets.rows(DATASET_ID, { offset: 0, limit: 10 })).rows;
  expect(rows.map((r) => [r.answer, r.removed])).toEqual([
    ['1', false],
    ['2', false],
    ['3', true],
  ]);
  expect(rows[2]!.fields).toMatchObject({ instruction: 'Three, edited' });

  const wb = await openWorkbench(factory);
  expect(await wb.get('runs', RUN_ID)).toEqual(RUN);
  expect(await wb.getAll('runs')).toEqual([RUN]);
  expect(await wb.get('adapters', ADAPTER.id)).toEqual(ADAPTER);
  expect(await wb.get('tuned', TUNED_REPO)).toEqual(TUNED_ROW);
  expect(await wb.getAll('preferences')).toEqual(PREFERENCES.map((p, i) => ({ ...p, id: i + 1 })));
  await wb.close();

  expect(await databaseNames(factory)).toEqual([GRAFT_DB_NAME]);
  await expectNothingDoubled(factory);
}

/** Each new store holds exactly as many records as the legacy stores it was filled from. */
async function expectNothingDoubled(factory: IDBFactory): Promise<void> {
  const legacy = legacyRecords();
  const n = (db: string, store: string) => legacy[db]!.filter((r) => r.store === store).length;
  const both = (store: string) => n('graft-models', store) + n('graft-tuned-models', store);
  const expected: Record<GraftStoreName, number> = {
    models: both('models'),
    modelFiles: both('files'),
    modelChunks: both('chunks'),
    checkpoints: n('graft-checkpoints', 'checkpoints'),
    checkpointChunks: n('graft-checkpoints', 'chunks'),
    runs: 1,
    adapters: 1,
    tuned: 1,
    preferences: 2,
    datasets: 1,
    datasetEdits: 1,
    settings: 1,
    meta: LEGACY_NAMES.length,
    matmulPlans: 0,
  };
  const db = await openGraftDb(factory);
  const counts: Record<string, number> = {};
  for (const store of db.objectStoreNames) counts[store] = await db.count(store);
  db.close();
  expect(counts).toEqual(expected);
}

const totalRecords = () => Object.values(legacyRecords()).reduce((s, r) => s + r.length, 0);

describe('the graft database', () => {
  it('is created at the version of its upgrade steps, with every store, and no legacy database appears', async () => {
    const factory = new IDBFactory();
    const db = await openGraftDb(factory);
    expect(db.version).toBe(GRAFT_DB_VERSION);
    expect(GRAFT_DB_VERSION).toBe(UPGRADES.length);
    expect([...db.objectStoreNames].sort()).toEqual(
      ['adapters', 'checkpointChunks', 'checkpoints', 'datasetEdits', 'datasets', 'matmulPlans', 'meta', 'modelChunks', 'modelFiles', 'models', 'preferences', 'runs', 'settings', 'tuned'],
    );
    expect([...db.transaction('modelFiles').store.indexNames]).toEqual(['model']);
    db.close();
    expect(await databaseNames(factory)).toEqual([GRAFT_DB_NAME]);
  });

  it("closes for another tab's upgrade instead of blocking it, and a kept connection opens again", async () => {
    const factory = new IDBFactory();
    const connection = new GraftDbConnection(factory);
    const first = await connection.get();
    const upgrade = factory.open(GRAFT_DB_NAME, GRAFT_DB_VERSION + 1);
    let blocked = false;
    upgrade.onblocked = () => (blocked = true);
    const newer = await new Promise<IDBDatabase>((resolve, reject) => {
      upgrade.onsuccess = () => resolve(upgrade.result);
      upgrade.onerror = () => reject(upgrade.error);
    });
    expect(blocked).toBe(false);
    newer.close();
    expect(() => first.transaction('runs')).toThrow();
    // The kept connection was dropped: the next use opens again (here refused: the database is newer than this code).
    await expect(connection.get()).rejects.toMatchObject({ name: 'VersionError' });
  });

  it('keeps the downloaded and the fine-tuned model sets apart', async () => {
    const factory = new IDBFactory();
    const models = new IdbModelStore({ indexedDB: factory, chunkSize: 4 });
    const tuned = new IdbModelStore({ name: TUNED_SET, indexedDB: factory, chunkSize: 4 });
    for (const [store, text] of [[models, 'downloaded'], [tuned, 'fine-tuned']] as const) {
      const w = await store.openWriter('same/repo', REVISION, 'config.json', { resume: false });
      await w.append(new TextEncoder().encode(text));
      await w.complete();
      await store.markComplete('same/repo', REVISION);
    }
    expect(new TextDecoder().decode(await models.readFile('same/repo', REVISION, 'config.json'))).toBe('downloaded');
    expect(new TextDecoder().decode(await tuned.readFile('same/repo', REVISION, 'config.json'))).toBe('fine-tuned');
    await tuned.deleteModel('same/repo', REVISION);
    expect(await tuned.listModels()).toEqual([]);
    expect((await models.listModels()).map((m) => m.totalBytes)).toEqual(['downloaded'.length]);
    await models.close();
    await tuned.close();
  });
});

/** A "graft" database made at version `version` by the upgrade steps up to it (as that version of Graft did). */
function openAtVersion(factory: IDBFactory, version: number): Promise<GraftDb> {
  return new Promise((resolve, reject) => {
    const req = factory.open(GRAFT_DB_NAME, version);
    req.onupgradeneeded = (e) => {
      void upgradeGraftDb(wrap(req.result) as unknown as GraftDb, e.oldVersion, version, wrap(req.transaction!) as unknown as UpgradeTransaction);
    };
    req.onsuccess = () => resolve(wrap(req.result) as unknown as GraftDb);
    req.onerror = () => reject(req.error);
  });
}

describe('version 2: the tuned matmul plans', () => {
  const entry = (label: string): TuneEntry => ({
    config: { variant: 'register' },
    label,
    ns: 12_345,
    candidates: [{ label, ns: 12_345, config: { variant: 'register' } }, { label: 'tiled 16×16', ns: 23_456, config: { variant: 'tiled' } }],
    timing: 'wall',
    tunedAt: 1_700_000_000_000,
  });

  it('a version-1 database with rows upgrades to 2, keeping every row, with an empty matmulPlans store', async () => {
    const factory = new IDBFactory();
    const v1 = await openAtVersion(factory, 1);
    expect([...v1.objectStoreNames]).not.toContain('matmulPlans');
    await v1.put('runs', { id: RUN_ID, note: 'a run' } as never);
    await v1.put('tuned', { repo: TUNED_REPO } as never);
    await v1.put('settings', { endpoint: 'https://huggingface.co' }, 'hub');
    await v1.put('checkpoints', { run: RUN_ID, step: 2, files: [], savedAt: 1 });
    await v1.put('checkpointChunks', new Uint8Array([1, 2, 3]), [RUN_ID, 2, 'adapter_model.safetensors', 0]);
    await v1.put('meta', { database: 'graft-models', importedAt: 5 }, 'imported:graft-models');
    v1.close();

    const db = await openGraftDb(factory);
    expect(db.version).toBe(GRAFT_DB_VERSION);
    expect(await db.get('runs', RUN_ID)).toEqual({ id: RUN_ID, note: 'a run' });
    expect(await db.get('tuned', TUNED_REPO)).toEqual({ repo: TUNED_REPO });
    expect(await db.get('settings', 'hub')).toEqual({ endpoint: 'https://huggingface.co' });
    expect(await db.get('checkpoints', [RUN_ID, 2])).toEqual({ run: RUN_ID, step: 2, files: [], savedAt: 1 });
    expect(await db.get('checkpointChunks', [RUN_ID, 2, 'adapter_model.safetensors', 0])).toEqual(new Uint8Array([1, 2, 3]));
    expect(await db.get('meta', 'imported:graft-models')).toEqual({ database: 'graft-models', importedAt: 5 });
    expect(await db.count('matmulPlans')).toBe(0);
    db.close();
  });

  it('IdbTuneCache keeps the plans by tune key, across connections', async () => {
    const factory = new IDBFactory();
    const cache = new IdbTuneCache(factory);
    expect(await cache.get('gpu|NT 256x576x576')).toBeUndefined();
    await cache.put('gpu|NT 256x576x576', entry('register'));
    await cache.put('gpu|NN 256x576x576', entry('subgroup Q 2'));
    await cache.close();
    const again = new IdbTuneCache(factory);
    expect(await again.get('gpu|NT 256x576x576')).toEqual(entry('register'));
    expect((await again.entries()).map(([k, e]) => [k, e.label])).toEqual([
      ['gpu|NN 256x576x576', 'subgroup Q 2'],
      ['gpu|NT 256x576x576', 'register'],
    ]);
    await again.close();
  });
});

describe('moving the legacy databases into graft', () => {
  it('finds everything the five legacy schemas held through the public APIs, and deletes them', async () => {
    const factory = new IDBFactory();
    await writeLegacyDatabases(factory);
    expect(await databaseNames(factory)).toEqual([...LEGACY_NAMES].sort());
    await expectEverythingThere(factory);

    // What was moved goes on working: the partial download resumes from its last chunk, a preference gets the
    // next id, a checkpoint is added beside the imported ones.
    const models = new IdbModelStore({ indexedDB: factory, chunkSize: 1000 });
    const w = await models.openWriter(PARTIAL_REPO, REVISION, 'model.safetensors', { resume: true });
    expect(w.offset).toBe(PARTIAL_STORED);
    await w.append(PARTIAL_FILE.subarray(PARTIAL_STORED));
    await w.complete();
    expect(await models.readFile(PARTIAL_REPO, REVISION, 'model.safetensors')).toEqual(PARTIAL_FILE);
    await models.close();
    const wb = await openWorkbench(factory);
    expect(await wb.add('preferences', { ...PREFERENCES[0]! })).toBe(3);
    await wb.close();
    const checkpoints = new IdbCheckpointStore({ run: RUN_ID, indexedDB: factory, chunkBytes: 1000 });
    await checkpoints.write(6, new Map([['a.bin', new Uint8Array(1500).fill(6)]]));
    expect(await checkpoints.list()).toEqual([2, 4, 6]);
    await checkpoints.close();
  });

  // Interrupted after the first record; inside the first database's chunks; after its last record (no marker
  // yet); after the first record of the second database (the first one marked and deleted); before and after
  // the very last record.
  const total = totalRecords();
  const modelsCount = legacyRecords()['graft-models']!.length;
  for (const stopAt of [1, 3, modelsCount, modelsCount + 1, total - 1, total]) {
    it(`an import stopped after record ${stopAt} of ${total} completes on the next open, nothing lost or doubled`, async () => {
      const factory = new IDBFactory();
      await writeLegacyDatabases(factory);
      await expect(
        importLegacyDatabases(factory, {
          afterCopy: (_db, _store, copied) => {
            if (copied === stopAt) throw new Error('tab closed');
          },
        }),
      ).rejects.toThrow('tab closed');
      const left = await databaseNames(factory);
      // A database is deleted only once all of it is copied: the one being copied is still there.
      expect(left).toContain(stopAt <= modelsCount ? 'graft-models' : 'graft-settings');
      if (stopAt > modelsCount) expect(left).not.toContain('graft-models');
      await expectEverythingThere(factory);
    });
  }

  it('only deletes a legacy database that was already copied (its deletion was cut short), copying nothing again', async () => {
    const factory = new IDBFactory();
    await writeLegacyDatabases(factory);
    const settings = new HubSettingsStore(factory);
    await settings.update({ endpoint: 'https://hub.example.org/newer' });
    await writeLegacyDatabase(factory, 'graft-settings', legacyRecords()['graft-settings']!);
    expect(await importLegacyDatabases(factory)).toEqual([]);
    expect(await databaseNames(factory)).toEqual([GRAFT_DB_NAME]);
    expect((await new HubSettingsStore(factory).get()).endpoint).toBe('https://hub.example.org/newer');
  });

  it('where the browser cannot list databases, finds the legacy ones without creating the missing ones', async () => {
    const real = new IDBFactory();
    await writeLegacyDatabase(real, 'graft-settings', legacyRecords()['graft-settings']!);
    const unlisting = {
      open: (...a: Parameters<IDBFactory['open']>) => real.open(...a),
      deleteDatabase: (name: string) => real.deleteDatabase(name),
      cmp: (a: unknown, b: unknown) => real.cmp(a, b),
    } as unknown as IDBFactory;
    expect(await importLegacyDatabases(unlisting)).toEqual(['graft-settings']);
    expect(await databaseNames(real)).toEqual([GRAFT_DB_NAME]);
    expect(await new HubSettingsStore(real).current()).toEqual({ endpoint: HUB_SETTINGS.endpoint, token: HUB_SETTINGS.token });
  });
});
