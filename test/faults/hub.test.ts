// The fault suite's hub: downloads through a local hub that cuts transfers at random offsets, sends no size and
// no hash (a body that ends when the connection closes), announces a wrong hash, hangs, fails with 5xx and
// ignores Range. Each case asserts that nothing corrupt is kept (a stored file is complete and right, or not
// marked complete) and that a failure is one line that says what to do. The counts feed the table.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DownloadReporter } from '../../src/cli/progress';
import { oneLine } from '../../src/cli/report';
import { downloadModel, fetchHubFile, type DownloadOptions, type DownloadProgress } from '../../src/hub/client';
import { HubError } from '../../src/hub/errors';
import { sha256Hex } from '../../src/hub/sha256';
import { normalizeEndpoint } from '../../src/worker/settings';
import { graftInProcess } from '../helpers/graft-in-process';
import { FIXTURE_REPO, fixtureModelFiles, TestHub } from '../helpers/test-hub';
import { Rng } from '../helpers/rng';
import { expectStored, failure, makeStore, type TestStore } from '../hub/stores';

const fixture = fixtureModelFiles();
const WEIGHTS = 'model.safetensors';
const SIZE = fixture[WEIGHTS]!.length;
const SHA = sha256Hex(fixture[WEIGHTS]!);

function opts(hub: TestHub, extra: DownloadOptions = {}): DownloadOptions {
  return { endpoint: hub.endpoint, retryDelayMs: 1, progressIntervalMs: 0, ...extra };
}

/** The stored weights, if complete: their sha256; undefined when the store does not hold them complete. */
async function storedSha(t: TestStore): Promise<string | undefined> {
  const m = await t.store.getModel(FIXTURE_REPO, 'main');
  const f = m?.files.find((x) => x.path === WEIGHTS);
  if (!f?.complete) return undefined;
  return sha256Hex(await t.store.readFile(FIXTURE_REPO, 'main', WEIGHTS));
}

/** A failure's message is one line that says what to do; the CLI prints it without a class name. */
function expectOneLine(e: Error): void {
  expect(e.message).not.toMatch(/\n/);
  expect(e.message).toMatch(/[.]$/);
  expect(oneLine(e, false)).toBe(`graft: ${e.message}`);
}

describe('a hub with the tree API: cuts and an ignored Range', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await TestHub.start();
    hub.addModel(FIXTURE_REPO, fixture);
  });
  afterAll(() => hub.close());
  beforeEach(() => hub.clearFaults());

  it('cut at 20 random offsets (every other one answered with an ignored Range): 20/20 stored with the right sha256', async () => {
    const rng = new Rng(13);
    let right = 0;
    for (let i = 0; i < 20; i++) {
      const t = await makeStore(i % 5 === 4 ? 'indexeddb' : 'folder');
      try {
        const at = rng.int(1, SIZE - 1);
        hub.fault({ kind: 'drop', file: WEIGHTS, method: 'GET', afterBytes: at });
        if (i % 2) hub.fault({ kind: 'ignore-range', file: WEIGHTS, method: 'GET' });
        await downloadModel(FIXTURE_REPO, t.store, opts(hub));
        if ((await storedSha(t)) === SHA) right++;
      } finally {
        hub.clearFaults();
        await t.cleanup();
      }
    }
    expect(right).toBe(20);
  });
});

describe('a hub without the tree API', () => {
  let hub: TestHub;
  let t: TestStore;
  beforeAll(async () => {
    hub = await TestHub.start({ treeApi: false });
    hub.addModel(FIXTURE_REPO, fixture);
  });
  afterAll(() => hub.close());
  beforeEach(async () => {
    hub.clearFaults();
    hub.clearRequests();
    t = await makeStore('folder');
    return () => t.cleanup();
  });

  /** No size and no hash anywhere for `file`: no X-Linked-*, no Content-Length (the body ends at close). */
  const bare = (file: string, cutAt?: number, cuts = 1) => {
    hub.fault({ kind: 'no-hash', file, times: Infinity });
    hub.fault({ kind: 'eof', file, method: 'HEAD', times: Infinity });
    if (cutAt !== undefined) hub.fault({ kind: 'eof', file, method: 'GET', afterBytes: cutAt, times: cuts });
    hub.fault({ kind: 'eof', file, method: 'GET', times: Infinity });
  };

  it('no size and no hash, cut at 10 random offsets: the safetensors header catches each cut, 10/10 stored right after one more try', async () => {
    const rng = new Rng(7);
    let right = 0;
    for (let i = 0; i < 10; i++) {
      const s = await makeStore('folder');
      const events: DownloadProgress[] = [];
      try {
        bare(WEIGHTS, rng.int(1, SIZE - 1));
        await downloadModel(FIXTURE_REPO, s.store, opts(hub, { onProgress: (p) => events.push(p) }));
        if ((await storedSha(s)) === SHA) right++;
        expect(events.some((e) => e.phase === 'restart' && e.file === WEIGHTS)).toBe(true);
      } finally {
        hub.clearFaults();
        await s.cleanup();
      }
    }
    expect(right).toBe(10);
  });

  it('no size and no hash, cut every time: not kept as complete, one line naming the file, and a rerun downloads again', async () => {
    bare(WEIGHTS, 100_000, Infinity);
    const err = await failure(downloadModel(FIXTURE_REPO, t.store, opts(hub)));
    expect(err.code).toBe('integrity');
    expect(err.message).toMatch(/^model\.safetensors of graft-test\/tiny-llama failed its integrity check twice \(the server sent no size, and the safetensors header describes \d+ bytes where 100000 arrived\)/);
    expectOneLine(err);
    expect(await storedSha(t)).toBeUndefined();
    expect((await t.store.getModel(FIXTURE_REPO, 'main'))!.complete).toBe(false);
    // The next call does not take it for complete: it asks the hub again, and with a whole body it is right.
    hub.clearFaults();
    bare(WEIGHTS);
    hub.clearRequests();
    await downloadModel(FIXTURE_REPO, t.store, opts(hub));
    expect(hub.requestsFor(WEIGHTS, { stage: 'cdn', method: 'GET' })).toHaveLength(1);
    expect(await storedSha(t)).toBe(SHA);
  });

  it('a JSON file without a size cut short is refused (it does not parse), then fetched whole', async () => {
    bare('config.json', 20);
    await downloadModel(FIXTURE_REPO, t.store, opts(hub));
    await expectStored(t, FIXTURE_REPO, fixture);
    expect(hub.requestsFor('config.json', { method: 'GET' }).map((r) => r.fault)).toEqual(['eof', 'eof']);
  });

  it('a wrong hash from the hub: the file is deleted, never complete, one line', async () => {
    hub.fault({ kind: 'wrong-hash', file: WEIGHTS, times: Infinity });
    const err = await failure(downloadModel(FIXTURE_REPO, t.store, opts(hub)));
    expect(err).toMatchObject({ code: 'integrity', file: WEIGHTS });
    expect(err.message).toMatch(/sha256 [0-9a-f]{12}… does not match/);
    expectOneLine(err);
    expect(await storedSha(t)).toBeUndefined();
  });

  it('a hang: retried after the idle timeout; a hub that always hangs ends in one line', async () => {
    hub.fault({ kind: 'hang', file: WEIGHTS, method: 'GET' });
    await downloadModel(FIXTURE_REPO, t.store, opts(hub, { idleTimeoutMs: 500 }));
    expect(await storedSha(t)).toBe(SHA);

    const other = await makeStore('folder');
    try {
      hub.fault({ kind: 'hang', file: WEIGHTS, method: 'GET', times: Infinity });
      const err = await failure(downloadModel(FIXTURE_REPO, other.store, opts(hub, { idleTimeoutMs: 500, retries: 1 })));
      expect(err.code).toBe('network');
      expect(err.message).toMatch(/no data arrived for 1 s/);
      expectOneLine(err);
      expect(await storedSha(other)).toBeUndefined();
    } finally {
      await other.cleanup();
    }
  });

  it('HTTP 500: the retries say "the server answered HTTP 500", never "connection lost"; always 500 is one line', async () => {
    hub.fault({ kind: 'status', status: 500, file: WEIGHTS, method: 'GET', times: Infinity });
    const events: DownloadProgress[] = [];
    const err = await failure(downloadModel(FIXTURE_REPO, t.store, opts(hub, { retries: 2, onProgress: (p) => events.push(p) })));
    expect(err).toMatchObject({ code: 'bad-response', status: 500 });
    expect(err.message).toMatch(/HTTP 500/);
    expectOneLine(err);
    const retries = events.filter((e) => e.phase === 'retry');
    expect(retries.length).toBe(2);
    expect(retries.every((e) => e.reason === 'the server answered HTTP 500')).toBe(true);
    let printed = '';
    const reporter = new DownloadReporter({ write: (s: string) => void (printed += s) }, 'graft-test/tiny-llama', { tty: false, lineIntervalMs: 0 });
    for (const e of events) reporter.update(e);
    expect(printed).toMatch(/the server answered HTTP 500, retrying model\.safetensors/);
    expect(printed).not.toMatch(/connection lost/i);
    expect(await storedSha(t)).toBeUndefined();
  });

  it('a single hub file (datasets) without a size, cut short, is refused by its content', async () => {
    hub.fault({ kind: 'eof', file: 'tokenizer_config.json', method: 'GET', afterBytes: 30 });
    const e = await fetchHubFile(FIXTURE_REPO, 'tokenizer_config.json', { endpoint: hub.endpoint }).then(
      () => undefined,
      (x: unknown) => x as HubError,
    );
    expect(e).toBeInstanceOf(HubError);
    expect(e!.message).toMatch(/^tokenizer_config\.json of graft-test\/tiny-llama arrived without a size, and its 30 bytes are not complete JSON or JSON Lines; it was not used\./);
    expectOneLine(e!);
  });
});

describe('plain http only for a hub on this computer', () => {
  it('the app and the client refuse http:// to another host; loopback addresses pass', async () => {
    for (const ok of ['http://127.0.0.1:8080', 'http://localhost:5173/', 'http://[::1]:9', 'https://hf-mirror.com', 'https://huggingface.co']) expect(() => normalizeEndpoint(ok), ok).not.toThrow();
    for (const bad of ['http://hf-mirror.com', 'http://192.168.1.5:8080', 'http://127.0.0.1.example.com']) {
      let err: unknown;
      try {
        normalizeEndpoint(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(HubError);
      expect((err as HubError).code).toBe('bad-endpoint');
      expect((err as Error).message).toMatch(/uses plain http, which anyone on the network can read and change; use https:\/\/ \(plain http is only for a hub on this computer: localhost, 127\.0\.0\.1, \[::1\]\)\.$/);
    }
    const t = await makeStore('folder');
    try {
      const err = await failure(downloadModel(FIXTURE_REPO, t.store, { endpoint: 'http://hf-mirror.example' }));
      expect(err.code).toBe('bad-endpoint');
    } finally {
      await t.cleanup();
    }
  });

  it('graft download with HF_ENDPOINT=http://<another host> fails in one line before any request', async () => {
    const r = await graftInProcess(['download', FIXTURE_REPO], { env: { HF_ENDPOINT: 'http://hf-mirror.example', GRAFT_CACHE: '/nonexistent-graft-cache' } });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      'graft: HF_ENDPOINT=http://hf-mirror.example cannot be used: http://hf-mirror.example uses plain http, which anyone on the network can read and change; use https:// (plain http is only for a hub on this computer: localhost, 127.0.0.1, [::1]) (unset it to use https://huggingface.co).',
    );
  });
});
