// The hub client against hubs that answer differently: no tree API (sizes and hashes from headers only),
// LFS hashes in a plain ETag, a browser's fetch that hides redirects, missing Content-Length, 404, 401, 5xx,
// storage full, and a file that changed upstream between two attempts.
import { mkdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { IDBObjectStore as FakeObjectStore } from 'fake-indexeddb';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadModel, fetchHubFile, resolveUrl, sha256FromEtag, type DownloadOptions, type DownloadProgress } from '../../src/hub/client';
import { sha256Hex } from '../../src/hub/sha256';
import { FIXTURE_REPO, fixtureModelFiles, TestHub } from '../helpers/test-hub';
import { expectStored, failure, makeStore, type TestStore } from './stores';

const fixture = fixtureModelFiles();
const fixtureTotal = Object.values(fixture).reduce((s, b) => s + b.length, 0);
const WEIGHTS = 'model.safetensors';
const WEIGHT_SHA = sha256Hex(fixture[WEIGHTS]!);

/** A fetch that behaves like a browser's for redirect: 'manual' — the redirect response is opaque. */
const browserLikeFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  if (init?.redirect === 'manual' && res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    const opaque = new Response(null, { status: 200 });
    Object.defineProperty(opaque, 'type', { value: 'opaqueredirect' });
    Object.defineProperty(opaque, 'status', { value: 0 });
    return opaque;
  }
  return res;
};

let t: TestStore;
const events: DownloadProgress[] = [];
beforeEach(async () => {
  events.length = 0;
  t = await makeStore('folder');
});
afterEach(() => t.cleanup());

function opts(hub: TestHub, extra: DownloadOptions = {}): DownloadOptions {
  return { endpoint: hub.endpoint, retryDelayMs: 1, progressIntervalMs: 0, onProgress: (p) => events.push(p), ...extra };
}

describe('a hub without the tree API (sizes and hashes from headers)', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await TestHub.start({ treeApi: false });
    hub.addModel(FIXTURE_REPO, fixture);
  });
  afterAll(() => hub.close());
  beforeEach(() => {
    hub.clearFaults();
    hub.clearRequests();
  });

  it('learns size and sha256 from the redirect (X-Linked-*) and catches wrong bytes with them', async () => {
    hub.fault({ kind: 'corrupt', file: WEIGHTS, method: 'GET' });
    const model = await downloadModel(FIXTURE_REPO, t.store, opts(hub));
    await expectStored(t, FIXTURE_REPO, fixture);
    expect(model.files.find((f) => f.path === WEIGHTS)).toMatchObject({ sha256: WEIGHT_SHA, expectedSize: fixture[WEIGHTS]!.length });
    // HEAD stopped at the hub's redirect: the CDN saw GETs only.
    expect(hub.requestsFor(WEIGHTS, { method: 'HEAD' }).map((r) => [r.stage, r.status])).toEqual([['resolve', 302]]);
    expect(hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' }).map((r) => r.fault)).toEqual(['corrupt', undefined]);
    // Non-LFS files carry a git-sha1 ETag, which is not taken for a sha256.
    expect(model.files.find((f) => f.path === 'config.json')!.sha256).toBeUndefined();
    // Totals were known before the weights started (from HEAD).
    expect(events.filter((e) => e.file === WEIGHTS && e.phase === 'download').every((e) => e.total === fixtureTotal)).toBe(true);
  });

  it('copes with missing Content-Length (chunked): total unknown until that file ends, bytes still right', async () => {
    hub.fault({ kind: 'chunked', file: 'config.json', times: Infinity });
    hub.fault({ kind: 'chunked', file: WEIGHTS, method: 'GET' });
    const model = await downloadModel(FIXTURE_REPO, t.store, opts(hub));
    await expectStored(t, FIXTURE_REPO, fixture);
    expect(hub.requestsFor('config.json', { method: 'GET' })[0]!.fault).toBe('chunked');
    expect(hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' })[0]!.fault).toBe('chunked');
    const cfg = events.filter((e) => e.file === 'config.json' && e.phase === 'download');
    expect(cfg[0]!.total).toBeUndefined();
    expect(cfg[0]!.fileTotal).toBeUndefined();
    expect(cfg.at(-1)!.fileTotal).toBe(fixture['config.json']!.length);
    expect(events.at(-1)).toMatchObject({ phase: 'done', bytes: fixtureTotal, total: fixtureTotal });
    expect(model.files.find((f) => f.path === 'config.json')).toMatchObject({ complete: true, size: fixture['config.json']!.length });
  });

  it('resumes a chunked transfer that drops', async () => {
    hub.fault({ kind: 'chunked', file: WEIGHTS, method: 'GET' });
    hub.fault({ kind: 'drop', file: WEIGHTS, method: 'GET', afterBytes: 100_000 });
    await downloadModel(FIXTURE_REPO, t.store, opts(hub));
    await expectStored(t, FIXTURE_REPO, fixture);
    const gets = hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' });
    expect(gets).toHaveLength(2);
    expect(gets[1]!.range).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it('gives up on a stalled transfer after the idle timeout and resumes it', async () => {
    hub.fault({ kind: 'stall', file: WEIGHTS, method: 'GET', afterBytes: 120_000 });
    await downloadModel(FIXTURE_REPO, t.store, opts(hub, { idleTimeoutMs: 300 }));
    await expectStored(t, FIXTURE_REPO, fixture);
    const gets = hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' });
    expect(gets.map((r) => r.fault)).toEqual(['stall', undefined]);
    expect(gets[1]!.range).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it('treats 404 on an optional file found by HEAD as "not there"', async () => {
    hub.fault({ kind: 'status', status: 404, file: 'generation_config.json', times: Infinity });
    const model = await downloadModel(FIXTURE_REPO, t.store, opts(hub));
    expect(model.complete).toBe(true);
    expect(model.files.map((f) => f.path)).not.toContain('generation_config.json');
    expect(hub.requestsFor('generation_config.json').map((r) => [r.method, r.status])).toEqual([['HEAD', 404]]);
    expect(hub.requestsFor('chat_template.jinja').map((r) => [r.method, r.status])).toEqual([['HEAD', 404]]);
  });

  it('retries a 500 and succeeds; keeps answering 500 → bad-response naming the status', async () => {
    hub.fault({ kind: 'status', status: 500, file: WEIGHTS, method: 'GET' });
    await downloadModel(FIXTURE_REPO, t.store, opts(hub));
    await expectStored(t, FIXTURE_REPO, fixture);
    expect(hub.requestsFor(WEIGHTS, { stage: 'resolve', method: 'GET' }).map((r) => r.status)).toEqual([500, 302]);

    const other = await makeStore('folder');
    hub.clearRequests();
    try {
      hub.fault({ kind: 'status', status: 503, file: 'tokenizer.json', times: Infinity });
      const err = await failure(downloadModel(FIXTURE_REPO, other.store, opts(hub, { retries: 2 })));
      expect(err.code).toBe('bad-response');
      expect(err.status).toBe(503);
      expect(err.message).toMatch(/503/);
      expect(hub.requestsFor('tokenizer.json', { method: 'HEAD' })).toHaveLength(3);
    } finally {
      await other.cleanup();
    }
  });
});

describe('a hub that gives the LFS sha256 as a plain ETag (no redirect, no X-Linked-*)', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await TestHub.start({ treeApi: false, lfs: 'etag' });
    hub.addModel(FIXTURE_REPO, fixture);
  });
  afterAll(() => hub.close());

  it('checks the quoted 64-hex ETag', async () => {
    hub.fault({ kind: 'corrupt', file: WEIGHTS, method: 'GET' });
    const model = await downloadModel(FIXTURE_REPO, t.store, opts(hub));
    await expectStored(t, FIXTURE_REPO, fixture);
    expect(model.files.find((f) => f.path === WEIGHTS)!.sha256).toBe(WEIGHT_SHA);
    expect(hub.requestsFor(WEIGHTS, { method: 'GET' }).map((r) => [r.stage, r.fault])).toEqual([
      ['resolve', 'corrupt'],
      ['resolve', undefined],
    ]);
  });
});

describe('the default hub (tree API, redirects to a CDN on another port)', () => {
  let hub: TestHub;
  const GATED = 'graft-test/gated-llama';
  beforeAll(async () => {
    hub = await TestHub.start();
    hub.addModel(FIXTURE_REPO, fixture);
    hub.addModel(GATED, fixture);
    hub.requireToken(GATED, 'hf_secret');
    const { [WEIGHTS]: _w, ...noWeights } = fixture;
    hub.addModel('graft-test/no-weights', noWeights);
  });
  afterAll(() => hub.close());
  beforeEach(() => {
    hub.clearFaults();
    hub.clearRequests();
  });

  it('works with a browser-like fetch that hides redirects, checking hashes from the tree API', async () => {
    hub.fault({ kind: 'corrupt', file: WEIGHTS, method: 'GET' });
    await downloadModel(FIXTURE_REPO, t.store, opts(hub, { fetch: browserLikeFetch }));
    await expectStored(t, FIXTURE_REPO, fixture);
    expect(hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' }).map((r) => r.fault)).toEqual(['corrupt', undefined]);
    // After the first hidden redirect the client lets the runtime follow: one resolve GET per CDN GET.
    expect(hub.requestsFor(WEIGHTS, { stage: 'resolve', method: 'GET' }).length).toBeLessThanOrEqual(3);
  });

  it('treats 404 on an optional file listed by the tree as "not there"', async () => {
    hub.fault({ kind: 'status', status: 404, file: 'generation_config.json', times: Infinity });
    const model = await downloadModel(FIXTURE_REPO, t.store, opts(hub));
    expect(model.complete).toBe(true);
    expect(model.files.map((f) => f.path)).not.toContain('generation_config.json');
    // Not listed by the tree at all: not even asked for.
    expect(hub.requestsFor('chat_template.jinja')).toHaveLength(0);
  });

  it('fails with not-found on a missing required file, an unknown model, or a model without safetensors', async () => {
    hub.fault({ kind: 'status', status: 404, file: 'tokenizer.json', times: Infinity });
    let err = await failure(downloadModel(FIXTURE_REPO, t.store, opts(hub)));
    expect(err).toMatchObject({ code: 'not-found', file: 'tokenizer.json', status: 404 });
    expect(err.message).toMatch(/No such model or file: tokenizer\.json/);
    expect((await t.store.getModel(FIXTURE_REPO, 'main'))?.complete ?? false).toBe(false);

    err = await failure(downloadModel('graft-test/no-such-model', t.store, opts(hub)));
    expect(err).toMatchObject({ code: 'not-found', file: 'config.json' });

    err = await failure(downloadModel('graft-test/no-weights', t.store, opts(hub)));
    expect(err.code).toBe('not-found');
    expect(err.message).toMatch(/model\.safetensors.*model\.safetensors\.index\.json/);

    err = await failure(downloadModel('not a repo', t.store, opts(hub)));
    expect(err.code).toBe('not-found');
  });

  it('gated model: 401 without a token says so; with the token it downloads, and the token never reaches the CDN', async () => {
    let err = await failure(downloadModel(GATED, t.store, opts(hub)));
    expect(err).toMatchObject({ code: 'unauthorized', status: 401, file: 'config.json' });
    expect(err.message).toMatch(/gated or private/);
    expect(err.message).toMatch(/access token/);

    err = await failure(downloadModel(GATED, t.store, opts(hub, { token: 'hf_wrong' })));
    expect(err.code).toBe('unauthorized');
    expect(err.message).toMatch(/with the access token given/);

    hub.clearRequests();
    const model = await downloadModel(GATED, t.store, opts(hub, { token: 'hf_secret' }));
    expect(model.complete).toBe(true);
    await expectStored(t, GATED, fixture);
    const toHub = hub.requests.filter((r) => r.stage !== 'cdn');
    expect(toHub.length).toBeGreaterThan(0);
    expect(toHub.every((r) => r.authorization === 'Bearer hf_secret')).toBe(true);
    const toCdn = hub.requests.filter((r) => r.stage === 'cdn');
    expect(toCdn.length).toBeGreaterThan(0);
    expect(toCdn.every((r) => r.authorization === undefined)).toBe(true);
  });

  it('restarts a partial file whose hash changed upstream instead of appending to stale bytes', async () => {
    hub.fault({ kind: 'drop', file: WEIGHTS, method: 'GET', afterBytes: 200_000 });
    await failure(downloadModel(FIXTURE_REPO, t.store, opts(hub, { retries: 0 })));
    const changed = { ...fixture, [WEIGHTS]: fixture[WEIGHTS]!.map((b, i) => (i > 400_000 ? b ^ 1 : b)) };
    hub.addModel(FIXTURE_REPO, changed);
    try {
      hub.clearRequests();
      await downloadModel(FIXTURE_REPO, t.store, opts(hub));
      await expectStored(t, FIXTURE_REPO, changed);
      expect(hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' }).map((r) => r.range)).toEqual([undefined]);
    } finally {
      hub.addModel(FIXTURE_REPO, fixture);
    }
  });

  it('turns a QuotaExceededError from IndexedDB into a quota error, leaving a resumable partial file', async () => {
    const idb = await makeStore('indexeddb', { chunkSize: 32 * 1024 });
    const put = FakeObjectStore.prototype.put;
    let chunkPuts = 0;
    FakeObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
      if (this.name === 'modelChunks' && ++chunkPuts > 8) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return put.apply(this, args);
    } as typeof put;
    try {
      const err = await failure(downloadModel(FIXTURE_REPO, idb.store, opts(hub)));
      expect(err.code).toBe('quota');
      expect(err.message).toMatch(/not enough storage space/);
      FakeObjectStore.prototype.put = put;
      const w = (await idb.store.getModel(FIXTURE_REPO, 'main'))!.files.find((f) => f.path === WEIGHTS)!;
      expect(w.complete).toBe(false);
      expect(w.size).toBeGreaterThan(0);
      expect(w.size % (32 * 1024)).toBe(0);

      hub.clearRequests();
      await downloadModel(FIXTURE_REPO, idb.store, opts(hub));
      await expectStored(idb, FIXTURE_REPO, fixture);
      expect(hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' })[0]!.range).toBe(`bytes=${w.size}-`);
    } finally {
      FakeObjectStore.prototype.put = put;
      await idb.cleanup();
    }
  });

  it('turns ENOSPC in the cache folder into a quota error (a partial file that points at /dev/full)', async () => {
    const files = join(t.dir!, 'models--graft-test--tiny-llama', 'main', 'files');
    await mkdir(files, { recursive: true });
    await symlink('/dev/full', join(files, `${WEIGHTS}.partial`));
    const err = await failure(downloadModel(FIXTURE_REPO, t.store, opts(hub)));
    expect(err.code).toBe('quota');
    const model = (await t.store.getModel(FIXTURE_REPO, 'main'))!;
    expect(model.complete).toBe(false);
    expect(model.files.find((f) => f.path === WEIGHTS)!.complete).toBe(false);
    expect(model.files.filter((f) => f.path !== WEIGHTS).every((f) => f.complete)).toBe(true);
    await rm(join(files, `${WEIGHTS}.partial`));
    await downloadModel(FIXTURE_REPO, t.store, opts(hub));
    await expectStored(t, FIXTURE_REPO, fixture);
  });

  it('fetchHubFile reads one small file; errors are typed', async () => {
    const cfg = await fetchHubFile(FIXTURE_REPO, 'config.json', { endpoint: hub.endpoint });
    expect(Buffer.from(cfg).equals(Buffer.from(fixture['config.json']!))).toBe(true);
    const err = await failure(fetchHubFile(FIXTURE_REPO, 'nope.json', { endpoint: hub.endpoint }));
    expect(err.code).toBe('not-found');
  });
});

describe('URLs and headers', () => {
  it('builds resolve URLs with the default or a custom endpoint, encoding revision and path segments', () => {
    expect(resolveUrl('org/m', 'config.json')).toBe('https://huggingface.co/org/m/resolve/main/config.json');
    expect(resolveUrl('org/m', 'sub dir/a.json', { endpoint: 'https://mirror.example/', revision: 'refs/pr/1' })).toBe(
      'https://mirror.example/org/m/resolve/refs%2Fpr%2F1/sub%20dir/a.json',
    );
  });

  it('reads a sha256 from quoted, weak or bare 64-hex ETags and ignores git sha1s', () => {
    const sha = 'ab'.repeat(32);
    expect(sha256FromEtag(`"${sha}"`)).toBe(sha);
    expect(sha256FromEtag(`W/"${sha.toUpperCase()}"`)).toBe(sha);
    expect(sha256FromEtag(sha)).toBe(sha);
    expect(sha256FromEtag(`"${'a'.repeat(40)}"`)).toBeUndefined();
    expect(sha256FromEtag(null)).toBeUndefined();
  });
});
