// The hub client against the local test hub, with both stores: progress, sharded weights, resume, integrity,
// abort, and the catalogue. Faults come from test/helpers/test-hub.ts.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadModel, type DownloadOptions, type DownloadProgress } from '../../src/hub/client';
import { SafetensorsFile } from '../../src/model/safetensors';
import { openGraftDb } from '../../src/storage';
import { FIXTURE_REPO, fixtureModelFiles, SHARDED_REPO, shardedModelFiles, TestHub } from '../helpers/test-hub';
import { expectStored, failure, makeStore, STORE_KINDS, type TestStore } from './stores';

const fixture = fixtureModelFiles();
const sharded = shardedModelFiles();
const fixtureTotal = Object.values(fixture).reduce((s, b) => s + b.length, 0);
const WEIGHTS = 'model.safetensors';
const WEIGHT_SIZE = fixture[WEIGHTS]!.length;

let hub: TestHub;
beforeAll(async () => {
  hub = await TestHub.start();
  hub.addModel(FIXTURE_REPO, fixture);
  hub.addModel(SHARDED_REPO, sharded);
});
afterAll(() => hub.close());
beforeEach(() => {
  hub.clearFaults();
  hub.clearRequests();
});

describe.each(STORE_KINDS)('hub client with the %s store', (kind) => {
  let t: TestStore;
  const events: DownloadProgress[] = [];
  const opts = (extra: DownloadOptions = {}): DownloadOptions => ({
    endpoint: hub.endpoint,
    retryDelayMs: 1,
    progressIntervalMs: 0,
    onProgress: (p) => events.push(p),
    ...extra,
  });
  beforeEach(async () => {
    events.length = 0;
    t = await makeStore(kind);
  });
  afterEach(() => t.cleanup());

  it('downloads the fixture model with progress, then serves it offline', async () => {
    const model = await downloadModel(FIXTURE_REPO, t.store, opts());
    await expectStored(t, FIXTURE_REPO, fixture);

    // Progress: bytes never go down, weights report a known total, the last event says done with bytes = total.
    for (let i = 1; i < events.length; i++) expect(events[i]!.bytes).toBeGreaterThanOrEqual(events[i - 1]!.bytes);
    const weightEvents = events.filter((e) => e.file === WEIGHTS && e.phase === 'download');
    expect(weightEvents.length).toBeGreaterThan(2);
    expect(weightEvents.every((e) => e.total === fixtureTotal && e.fileTotal === WEIGHT_SIZE)).toBe(true);
    const last = events.at(-1)!;
    expect(last).toMatchObject({ phase: 'done', bytes: fixtureTotal, total: fixtureTotal });
    expect(events.some((e) => e.phase === 'restart' || e.phase === 'retry')).toBe(false);

    // Catalogue: complete, every file with its size; chat_template.jinja (absent upstream) is not listed.
    expect(model.complete).toBe(true);
    expect(model.totalBytes).toBe(fixtureTotal);
    expect(model.expectedBytes).toBe(fixtureTotal);
    expect(model.downloadedAt).toBeTypeOf('number');
    expect(model.files.map((f) => f.path).sort()).toEqual(Object.keys(fixture).sort());
    for (const f of model.files) expect(f).toMatchObject({ complete: true, size: fixture[f.path]!.length });
    expect(model.files.find((f) => f.path === WEIGHTS)!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await t.store.listModels()).toEqual([model]);

    // LFS bytes came from the CDN after a redirect; the CDN never saw an Authorization header.
    expect(hub.requestsFor(WEIGHTS, { stage: 'resolve', method: 'GET' })[0]!.status).toBe(302);
    expect(hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' })).toHaveLength(1);

    // Offline afterwards: a second call makes no request.
    hub.clearRequests();
    const again = await downloadModel(FIXTURE_REPO, t.store, opts());
    expect(again.complete).toBe(true);
    expect(hub.requests).toHaveLength(0);
  });

  it('downloads a sharded model: the index and every shard in its weight_map', async () => {
    const model = await downloadModel(SHARDED_REPO, t.store, opts());
    expect(model.complete).toBe(true);
    const shardNames = Object.keys(sharded).filter((n) => /^model-\d+-of-\d+\.safetensors$/.test(n));
    expect(shardNames).toHaveLength(2);
    expect(model.files.map((f) => f.path).sort()).toEqual(Object.keys(sharded).sort());
    await expectStored(t, SHARDED_REPO, sharded);
    // The shards hold every tensor of the original, byte for byte.
    const original = new SafetensorsFile(fixture[WEIGHTS]!, WEIGHTS);
    const seen = new Set<string>();
    for (const name of shardNames) {
      const shard = new SafetensorsFile(await t.store.readFile(SHARDED_REPO, 'main', name), name);
      for (const tensor of shard.names) {
        seen.add(tensor);
        expect(Buffer.from(shard.raw(tensor)).equals(Buffer.from(original.raw(tensor)))).toBe(true);
      }
    }
    expect([...seen].sort()).toEqual(original.names.sort());
    expect(events.at(-1)).toMatchObject({ phase: 'done', bytes: model.totalBytes, total: model.totalBytes });
  });

  it('resumes with a Range request after the connection drops mid-file', async () => {
    hub.fault({ kind: 'drop', file: WEIGHTS, method: 'GET', afterBytes: 200_000 });
    await downloadModel(FIXTURE_REPO, t.store, opts());
    await expectStored(t, FIXTURE_REPO, fixture);
    const gets = hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' });
    expect(gets).toHaveLength(2);
    expect(gets[0]).toMatchObject({ fault: 'drop' });
    expect(gets[0]!.range).toBeUndefined();
    const start = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
    expect(start).toBeGreaterThan(0);
    expect(start).toBeLessThanOrEqual(200_000);
    expect(gets[1]!.status).toBe(206);
    expect(events.some((e) => e.phase === 'retry' && e.file === WEIGHTS)).toBe(true);
  });

  it('restarts a file from 0 when the server ignores Range, and still stores it byte-identical', async () => {
    hub.fault({ kind: 'drop', file: WEIGHTS, method: 'GET', afterBytes: 150_000 });
    hub.fault({ kind: 'ignore-range', file: WEIGHTS, method: 'GET' });
    await downloadModel(FIXTURE_REPO, t.store, opts());
    await expectStored(t, FIXTURE_REPO, fixture);
    const gets = hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' });
    expect(gets).toHaveLength(2);
    expect(gets[1]).toMatchObject({ status: 200, fault: 'ignore-range' });
    expect(gets[1]!.range).toMatch(/^bytes=\d+-$/);
    expect(events.some((e) => e.phase === 'restart' && e.file === WEIGHTS)).toBe(true);
  });

  it('deletes a file with wrong bytes and fetches it again', async () => {
    hub.fault({ kind: 'corrupt', file: WEIGHTS, method: 'GET' });
    const model = await downloadModel(FIXTURE_REPO, t.store, opts());
    expect(model.complete).toBe(true);
    await expectStored(t, FIXTURE_REPO, fixture);
    const gets = hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' });
    expect(gets.map((r) => r.fault)).toEqual(['corrupt', undefined]);
    expect(gets[1]!.range).toBeUndefined();
    expect(events.some((e) => e.phase === 'restart' && e.file === WEIGHTS)).toBe(true);
  });

  it('fails with a clear integrity error when the bytes are wrong twice, and marks nothing complete', async () => {
    hub.fault({ kind: 'corrupt', file: WEIGHTS, method: 'GET', times: 2 });
    const err = await failure(downloadModel(FIXTURE_REPO, t.store, opts()));
    expect(err.code).toBe('integrity');
    expect(err.file).toBe(WEIGHTS);
    expect(err.message).toContain(WEIGHTS);
    expect(err.message).toMatch(/twice/);
    const model = (await t.store.getModel(FIXTURE_REPO, 'main'))!;
    expect(model.complete).toBe(false);
    expect(model.files.find((f) => f.path === WEIGHTS)).toMatchObject({ complete: false, size: 0 });
    await expect(t.store.readFile(FIXTURE_REPO, 'main', WEIGHTS)).rejects.toThrow(/partly downloaded|not stored/);
    // The next attempt (the server healed) downloads it cleanly.
    await downloadModel(FIXTURE_REPO, t.store, opts());
    await expectStored(t, FIXTURE_REPO, fixture);
  });

  it('leaves a resumable partial file when aborted, and resumes it with a Range request', async () => {
    const ctl = new AbortController();
    const err = await failure(
      downloadModel(
        FIXTURE_REPO,
        t.store,
        opts({
          signal: ctl.signal,
          onProgress: (p) => {
            if (p.file === WEIGHTS && p.fileBytes >= 100_000) ctl.abort();
          },
        }),
      ),
    );
    expect(err.code).toBe('aborted');
    const partial = (await t.store.getModel(FIXTURE_REPO, 'main'))!;
    expect(partial.complete).toBe(false);
    const w = partial.files.find((f) => f.path === WEIGHTS)!;
    expect(w.complete).toBe(false);
    expect(w.size).toBeGreaterThanOrEqual(100_000);
    expect(w.size).toBeLessThan(WEIGHT_SIZE);
    expect(w.expectedSize).toBe(WEIGHT_SIZE);
    // Files before the weights are complete already.
    expect(partial.files.filter((f) => f.path !== WEIGHTS).every((f) => f.complete)).toBe(true);

    hub.clearRequests();
    await downloadModel(FIXTURE_REPO, t.store, opts());
    await expectStored(t, FIXTURE_REPO, fixture);
    const gets = hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' });
    expect(gets).toHaveLength(1);
    expect(gets[0]!.range).toBe(`bytes=${w.size}-`);
    expect(gets[0]!.status).toBe(206);
    // Only the config files were complete; none of them was fetched again.
    expect(hub.requests.filter((r) => r.method === 'GET' && r.file === 'config.json')).toHaveLength(0);
  });

  it('ends with a network error that keeps the partial file when retries run out; the next call resumes', async () => {
    hub.fault({ kind: 'drop', file: WEIGHTS, method: 'GET', afterBytes: 300_000 });
    const err = await failure(downloadModel(FIXTURE_REPO, t.store, opts({ retries: 0 })));
    expect(err.code).toBe('network');
    expect(err.message).toMatch(/resume/);
    const w = (await t.store.getModel(FIXTURE_REPO, 'main'))!.files.find((f) => f.path === WEIGHTS)!;
    expect(w.complete).toBe(false);
    expect(w.size).toBeGreaterThan(0);
    hub.clearRequests();
    await downloadModel(FIXTURE_REPO, t.store, opts({ retries: 0 }));
    await expectStored(t, FIXTURE_REPO, fixture);
    expect(hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' })[0]!.range).toBe(`bytes=${w.size}-`);
  });

  it('keeps the catalogue right: partial vs complete, sizes, and delete removes everything', async () => {
    hub.fault({ kind: 'drop', file: 'model-00002-of-00002.safetensors', method: 'GET', afterBytes: 50_000 });
    await failure(downloadModel(SHARDED_REPO, t.store, opts({ retries: 0 })));
    await downloadModel(FIXTURE_REPO, t.store, opts());
    const list = await t.store.listModels();
    expect(list.map((m) => m.repo).sort()).toEqual([FIXTURE_REPO, SHARDED_REPO]);
    const part = list.find((m) => m.repo === SHARDED_REPO)!;
    expect(part.complete).toBe(false);
    expect(part.downloadedAt).toBeUndefined();
    const byPath = new Map(part.files.map((f) => [f.path, f]));
    expect(byPath.get('model-00001-of-00002.safetensors')).toMatchObject({ complete: true, size: sharded['model-00001-of-00002.safetensors']!.length });
    const p2 = byPath.get('model-00002-of-00002.safetensors')!;
    expect(p2.complete).toBe(false);
    expect(p2.size).toBeGreaterThan(0);
    expect(p2.size).toBeLessThanOrEqual(50_000);
    expect(p2.expectedSize).toBe(sharded['model-00002-of-00002.safetensors']!.length);
    expect(part.totalBytes).toBe(part.files.reduce((s, f) => s + f.size, 0));
    expect(part.expectedBytes).toBe(Object.values(sharded).reduce((s, b) => s + b.length, 0));

    await t.store.deleteModel(SHARDED_REPO, 'main');
    await t.store.deleteModel(FIXTURE_REPO, 'main');
    expect(await t.store.listModels()).toEqual([]);
    expect(await t.store.getModel(FIXTURE_REPO, 'main')).toBeUndefined();
    await expect(t.store.readFile(FIXTURE_REPO, 'main', WEIGHTS)).rejects.toMatchObject({ code: 'not-found' });
    if (t.dir) {
      const { readdir } = await import('node:fs/promises');
      expect(await readdir(t.dir)).toEqual([]);
    } else {
      expect(await countRecords(t.factory!, 'modelChunks')).toBe(0);
      expect(await countRecords(t.factory!, 'modelFiles')).toBe(0);
    }
  });

  it('fails early with a quota error when the estimate says the model will not fit', async () => {
    const small = await makeStore(kind, { estimate: async () => ({ available: 100_000, quota: 200_000, usage: 100_000 }) });
    try {
      const err = await failure(downloadModel(FIXTURE_REPO, small.store, opts()));
      expect(err.code).toBe('quota');
      expect(err.message).toMatch(/free/);
      expect(hub.requests.filter((r) => r.method === 'GET' && r.file === WEIGHTS)).toHaveLength(0);
    } finally {
      await small.cleanup();
    }
  });
});

async function countRecords(factory: IDBFactory, store: 'modelChunks' | 'modelFiles'): Promise<number> {
  const db = await openGraftDb(factory);
  try {
    return await db.count(store);
  } finally {
    db.close();
  }
}
