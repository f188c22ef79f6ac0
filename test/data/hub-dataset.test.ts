// Hub datasets against two local servers on 127.0.0.1: the project's test hub (test/helpers/test-hub.ts), which
// serves files under datasets/... but has no tree API for datasets, and a small server of this file that plays
// the hub's dataset API: /api/datasets/{repo}/tree/{rev} (paged with Link headers, LFS sha256 per file), gated
// repositories, RepoNotFound, and files that arrive damaged.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FALLBACK_FILES,
  loadHubDataset,
  parseDatasetFile,
  parseHubDatasetId,
  pickDatasetFiles,
  type DatasetFileCache,
  type HubDatasetFile,
} from '../../src/data/hub-dataset';
import { parseParquetDataset, plainValue, readParquetRows, recordsFromRows } from '../../src/data/parquet';
import { parseDatasetText } from '../../src/data/parse';
import { HubError } from '../../src/hub/errors';
import { TestHub } from '../helpers/test-hub';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/data/${name}`, import.meta.url)));
const alpacaParquet = fixture('sft_alpaca.parquet');
const sharegptParquet = fixture('sft_sharegpt.parquet');
const alpacaJson = fixture('sft_alpaca.json');
const enc = new TextEncoder();

// A dataset hub --------------------------------------------------------------------------------------------

interface Repo {
  files: Record<string, Uint8Array>;
  /** Files served with these bytes instead (the listing keeps the real size and hash): a damaged transfer. */
  damaged?: Record<string, { bytes: Uint8Array; times: number }>;
  token?: string;
}

class DatasetHub {
  readonly repos = new Map<string, Repo>();
  readonly requests: string[] = [];
  pageSize = 1000;
  private server!: Server;

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
  }
  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    const tree = /^\/api\/datasets\/(.+)\/tree\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/datasets\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repoName = tree?.[1] ?? resolve?.[1];
    const repo = repoName ? this.repos.get(repoName) : undefined;
    if (!repo) {
      res.writeHead(404, { 'X-Error-Code': 'RepoNotFound', 'Content-Length': '0' });
      return void res.end();
    }
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
      res.writeHead(401, { 'X-Error-Code': 'GatedRepo', 'Content-Length': '0' });
      return void res.end();
    }
    if (tree) {
      const entries = [
        { type: 'directory', path: 'data', oid: 'd'.repeat(40), size: 0 },
        ...Object.entries(repo.files).map(([path, bytes]) => ({
          type: 'file',
          path,
          size: bytes.length,
          oid: createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex'),
          ...(path.endsWith('.parquet') ? { lfs: { oid: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, pointerSize: 134 } } : {}),
        })),
      ];
      const cursor = Number(url.searchParams.get('cursor') ?? 0);
      const page = entries.slice(cursor, cursor + this.pageSize);
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (cursor + this.pageSize < entries.length) {
        headers.Link = `<${this.endpoint}${url.pathname}?recursive=true&cursor=${cursor + this.pageSize}>; rel="next"`;
      }
      res.writeHead(200, headers);
      return void res.end(JSON.stringify(page));
    }
    const file = decodeURIComponent(resolve![3]!);
    const damaged = repo.damaged?.[file];
    const bytes = damaged && damaged.times-- > 0 ? damaged.bytes : repo.files[file];
    if (!bytes) {
      res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'Content-Length': '0' });
      return void res.end();
    }
    res.writeHead(200, { 'Content-Length': String(bytes.length), 'Content-Type': 'application/octet-stream' });
    res.end(bytes);
  }
}

const hub = new DatasetHub();
let testHub: TestHub;
beforeAll(async () => {
  await hub.start();
  testHub = await TestHub.start();
});
afterAll(async () => {
  await hub.close();
  await testHub.close();
});

// Parquet --------------------------------------------------------------------------------------------------

describe('Parquet files → records, with problems by row index', () => {
  it('reads the alpaca fixture (written by hyparquet-writer with SNAPPY, see make-parquet.mjs)', async () => {
    const parsed = await parseParquetDataset(alpacaParquet, 'sft_alpaca.parquet');
    const json = parseDatasetText(alpacaJson, 'sft_alpaca.json');
    expect(parsed.records).toHaveLength(16);
    expect(parsed.format).toBe('alpaca');
    // the same conversations as the JSON file, plus the system prompt that only row 2 has
    expect(parsed.records.map((c) => c.messages)).toEqual(json.records.map((c) => c.messages));
    expect(parsed.records[2]!.system).toBe('Answer in one sentence.');
    expect(parsed.records[0]!.system).toBeUndefined(); // null in the file
    expect(parsed.records[5]!.source).toEqual({ index: 5 });
    expect(parsed.problems).toEqual([
      { index: 16, reason: '"output" must be a string, not null' },
      { index: 17, reason: '"instruction" and "input" are both empty' },
    ]);
  });

  it('reads list<struct<from, value>> columns as ShareGPT turns', async () => {
    const parsed = await parseParquetDataset(sharegptParquet, 'sft_sharegpt.parquet');
    expect(parsed.format).toBe('sharegpt');
    expect(parsed.problems).toEqual([]);
    expect(parsed.records.map((c) => c.messages.length)).toEqual([4, 2]);
    expect(parsed.records[1]!.system).toBe('You are a concise legal assistant.');
  });

  it('turns INT64 into numbers and keeps every column', async () => {
    const rows = await readParquetRows(alpacaParquet);
    expect(rows[0]).toMatchObject({ id: 1000, system: null });
    expect(Object.keys(rows[0]!)).toEqual(['id', 'instruction', 'input', 'output', 'system']);
    expect(plainValue(2n ** 60n)).toBe('1152921504606846976');
    expect(plainValue({ d: new Date(0), l: [1n] })).toEqual({ d: '1970-01-01T00:00:00.000Z', l: [1] });
  });

  it('reports a file that is not Parquet, or cut short, as a problem instead of throwing', async () => {
    const notParquet = await parseParquetDataset(alpacaJson, 'train.parquet');
    expect(notParquet.records).toEqual([]);
    expect(notParquet.problems[0]!.reason).toMatch(/train\.parquet is not a Parquet file/);
    const cut = new Uint8Array([...alpacaParquet.subarray(0, 200), 0x50, 0x41, 0x52, 0x31]);
    const cutResult = await parseParquetDataset(cut, 'cut.parquet');
    expect(cutResult.problems).toHaveLength(1);
    expect(cutResult.problems[0]!.reason).toMatch(/cut\.parquet could not be read as Parquet/);
  });

  it('recordsFromRows: the declared format and index offsets apply', () => {
    const r = recordsFromRows([{ instruction: 'a', output: 'b' }, { conversations: [] }], { format: 'alpaca', indexOffset: 10 });
    expect(r.records[0]!.source).toEqual({ index: 10 });
    expect(r.problems).toEqual([{ index: 11, reason: 'this is a sharegpt record, but the dataset was declared alpaca' }]);
  });
});

describe('parseDatasetFile', () => {
  it('dispatches on the name: JSON, JSON Lines (lines named), gzip', async () => {
    const jsonl = enc.encode('{"instruction":"a","output":"b"}\n{"instruction":"c"}\n');
    const r = await parseDatasetFile(jsonl, 'train.jsonl');
    expect(r.records).toHaveLength(1);
    expect(r.problems).toEqual([{ line: 2, reason: '"output" is missing' }]);
    const gz = await parseDatasetFile(gzipSync(alpacaJson), 'train.json.gz');
    expect(gz.records).toHaveLength(16);
    const gzParquet = await parseDatasetFile(gzipSync(alpacaParquet), 'x.parquet.gz');
    expect(gzParquet.records).toHaveLength(16);
    expect((await parseDatasetFile(alpacaJson, 'bad.json.gz')).problems[0]!.reason).toMatch(/not a valid gzip file/);
  });
});

// Picking files --------------------------------------------------------------------------------------------

describe('pickDatasetFiles', () => {
  const f = (...paths: string[]): HubDatasetFile[] => paths.map((path) => ({ path }));
  const pick = (files: HubDatasetFile[], split?: string) => pickDatasetFiles(files, split).map((x) => x.path);

  it('takes the train split by the naming rules of `datasets`', () => {
    expect(pick(f('.gitattributes', 'README.md', 'data/train-00001-of-00002.parquet', 'data/train-00000-of-00002.parquet', 'data/test-00000-of-00001.parquet'))).toEqual([
      'data/train-00000-of-00002.parquet',
      'data/train-00001-of-00002.parquet',
    ]);
    expect(pick(f('train.jsonl', 'validation.jsonl', 'test.jsonl'))).toEqual(['train.jsonl']);
    expect(pick(f('alpaca_train.json', 'alpaca_dev.json'))).toEqual(['alpaca_train.json']);
    expect(pick(f('train/part1.jsonl', 'train/part2.jsonl', 'test/part1.jsonl'))).toEqual(['train/part1.jsonl', 'train/part2.jsonl']);
    expect(pick(f('training.json', 'eval.json'))).toEqual(['training.json']);
    // "constrain" and "trainer" are not the word "train"
    expect(() => pick(f('constraint.json', 'test.json'))).toThrow(/no "train" split/);
  });

  it('uses every data file when none names a split, leaving out metadata and hidden files', () => {
    expect(pick(f('alpaca_data_en_52k.json', 'dataset_info.json', '.hidden/x.json', 'README.md', 'tokenizer_config.json'))).toEqual(['alpaca_data_en_52k.json']);
  });

  it('other splits on request, with their synonyms', () => {
    expect(pick(f('train.jsonl', 'dev.jsonl', 'test.jsonl'), 'validation')).toEqual(['dev.jsonl']);
    expect(pick(f('train.jsonl', 'dev.jsonl', 'test.jsonl'), 'test')).toEqual(['test.jsonl']);
  });

  it('picks one format: the most numerous, parquet first on a tie', () => {
    expect(pick(f('train.json', 'data/train-0.parquet'))).toEqual(['data/train-0.parquet']);
    expect(pick(f('train-1.jsonl', 'train-2.jsonl', 'train.parquet'))).toEqual(['train-1.jsonl', 'train-2.jsonl']);
  });

  it('says what is there when nothing fits', () => {
    expect(() => pick(f('README.md', 'train.csv'))).toThrow(/no data file Graft can read.*README\.md, train\.csv/);
    try {
      pick(f('a.json'), 'test');
    } catch (e) {
      expect(e).toBeInstanceOf(HubError);
      expect((e as HubError).code).toBe('not-found');
      expect((e as HubError).message).toMatch(/no "test" split\. Its data files are a\.json/);
    }
  });
});

describe('parseHubDatasetId', () => {
  it('reads the forms people paste and leaves local paths alone', () => {
    expect(parseHubDatasetId('tatsu-lab/alpaca')).toEqual({ repo: 'tatsu-lab/alpaca' });
    expect(parseHubDatasetId('tatsu-lab/alpaca@refs%2Fconvert%2Fparquet')).toEqual({ repo: 'tatsu-lab/alpaca', revision: 'refs%2Fconvert%2Fparquet' });
    expect(parseHubDatasetId('datasets/org/name')).toEqual({ repo: 'org/name' });
    expect(parseHubDatasetId('hf://datasets/org/name@v1/data/train.jsonl')).toEqual({ repo: 'org/name', revision: 'v1', file: 'data/train.jsonl' });
    expect(parseHubDatasetId('https://huggingface.co/datasets/org/name')).toEqual({ repo: 'org/name' });
    expect(parseHubDatasetId('https://huggingface.co/datasets/org/name/blob/main/data/train-00000-of-00001.parquet')).toEqual({
      repo: 'org/name',
      revision: 'main',
      file: 'data/train-00000-of-00001.parquet',
    });
    for (const local of ['data/train.jsonl', './my/data', '/abs/path', 'alpaca.json', 'dir/file.csv', 'single']) expect(parseHubDatasetId(local), local).toBeUndefined();
  });
});

// Loading from a hub ---------------------------------------------------------------------------------------

describe('loadHubDataset with the tree API', () => {
  it('lists (across pages), picks the train files, downloads, checks and reads them', async () => {
    hub.repos.set('graft-test/mixed', {
      files: {
        '.gitattributes': enc.encode('*.parquet filter=lfs\n'),
        'README.md': enc.encode('# mixed\n'),
        'data/train-00000-of-00002.parquet': alpacaParquet,
        'data/train-00001-of-00002.parquet': sharegptParquet,
        'data/test-00000-of-00001.parquet': sharegptParquet,
      },
    });
    hub.pageSize = 2;
    hub.requests.length = 0;
    const events: string[] = [];
    const ds = await loadHubDataset('graft-test/mixed', { endpoint: hub.endpoint, onProgress: (p) => events.push(`${p.phase} ${p.file}`) });
    hub.pageSize = 1000;
    expect(ds.files).toEqual(['data/train-00000-of-00002.parquet', 'data/train-00001-of-00002.parquet']);
    expect(ds.revision).toBe('main');
    expect(ds.records).toHaveLength(18);
    expect(ds.format).toBe('mixed');
    expect(ds.formatCounts).toEqual({ alpaca: 16, sharegpt: 2 });
    // with several files each problem names its file; row indices continue across the split's files
    expect(ds.problems).toEqual([
      { index: 16, reason: 'data/train-00000-of-00002.parquet: "output" must be a string, not null' },
      { index: 17, reason: 'data/train-00000-of-00002.parquet: "instruction" and "input" are both empty' },
    ]);
    expect(ds.records[16]!.source).toEqual({ index: 18 });
    const treeRequests = hub.requests.filter((r) => r.includes('/api/datasets/'));
    expect(treeRequests).toHaveLength(3); // 6 entries, 2 per page
    expect(treeRequests[0]).toBe('GET /api/datasets/graft-test/mixed/tree/main?recursive=true');
    expect(hub.requests.filter((r) => r.includes('/resolve/'))).toEqual([
      'GET /datasets/graft-test/mixed/resolve/main/data/train-00000-of-00002.parquet',
      'GET /datasets/graft-test/mixed/resolve/main/data/train-00001-of-00002.parquet',
    ]);
    expect(events).toEqual([
      'list ',
      'download data/train-00000-of-00002.parquet',
      'parse data/train-00000-of-00002.parquet',
      'download data/train-00001-of-00002.parquet',
      'parse data/train-00001-of-00002.parquet',
    ]);
  });

  it('reads a file the person names, and refuses one that is not there', async () => {
    hub.repos.set('graft-test/named', { files: { 'alpaca.json': alpacaJson, 'other.parquet': sharegptParquet } });
    const ds = await loadHubDataset('graft-test/named', { endpoint: hub.endpoint, file: 'alpaca.json' });
    expect(ds.files).toEqual(['alpaca.json']);
    expect(ds.records).toHaveLength(16);
    await expect(loadHubDataset('graft-test/named', { endpoint: hub.endpoint, file: 'missing.json' })).rejects.toMatchObject({
      code: 'not-found',
      message: expect.stringMatching(/missing\.json is not in the dataset graft-test\/named.*Its data files are alpaca\.json, other\.parquet/),
    });
  });

  it('retries a damaged download (sha256 from the listing) and fails with integrity when it stays damaged', async () => {
    const broken = alpacaParquet.slice();
    broken[100]! ^= 0xff;
    hub.repos.set('graft-test/damaged', { files: { 'train.parquet': alpacaParquet }, damaged: { 'train.parquet': { bytes: broken, times: 1 } } });
    const ok = await loadHubDataset('graft-test/damaged', { endpoint: hub.endpoint, retryDelayMs: 1 });
    expect(ok.records).toHaveLength(16);
    hub.repos.get('graft-test/damaged')!.damaged = { 'train.parquet': { bytes: broken, times: 10 } };
    await expect(loadHubDataset('graft-test/damaged', { endpoint: hub.endpoint, retryDelayMs: 1, retries: 1 })).rejects.toMatchObject({
      code: 'integrity',
      message: expect.stringMatching(/train\.parquet of the dataset graft-test\/damaged does not match its sha256/),
    });
  });

  it('gated datasets: unauthorized without the token, read with it', async () => {
    hub.repos.set('graft-test/gated', { files: { 'train.jsonl': enc.encode('{"instruction":"a","output":"b"}\n') }, token: 'hf_secret' });
    await expect(loadHubDataset('graft-test/gated', { endpoint: hub.endpoint })).rejects.toMatchObject({
      code: 'unauthorized',
      message: expect.stringMatching(/The dataset graft-test\/gated is gated or private.*\/datasets\/graft-test\/gated/),
    });
    const ds = await loadHubDataset('graft-test/gated', { endpoint: hub.endpoint, token: 'hf_secret' });
    expect(ds.records).toHaveLength(1);
  });

  it('a dataset that does not exist, one without a train split, one past maxBytes', async () => {
    await expect(loadHubDataset('graft-test/nothing', { endpoint: hub.endpoint })).rejects.toMatchObject({ code: 'not-found', message: expect.stringMatching(/There is no dataset graft-test\/nothing/) });
    hub.repos.set('graft-test/splits', { files: { 'test.jsonl': enc.encode('{}\n'), 'dev.jsonl': enc.encode('{}\n') } });
    await expect(loadHubDataset('graft-test/splits', { endpoint: hub.endpoint })).rejects.toMatchObject({ code: 'not-found', message: expect.stringMatching(/no "train" split/) });
    hub.repos.set('graft-test/big', { files: { 'train.parquet': alpacaParquet } });
    await expect(loadHubDataset('graft-test/big', { endpoint: hub.endpoint, maxBytes: 1000 })).rejects.toMatchObject({ code: 'quota', message: expect.stringMatching(/more than the 1000 B Graft reads into memory/) });
    await expect(loadHubDataset('not a repo', { endpoint: hub.endpoint })).rejects.toMatchObject({ code: 'not-found' });
  });

  it('keeps files in a cache by content id and reuses them', async () => {
    hub.repos.set('graft-test/cached', { files: { 'train.parquet': alpacaParquet } });
    const store = new Map<string, Uint8Array>();
    const cache: DatasetFileCache = { get: async (k) => store.get(k), put: async (k, b) => void store.set(k, b) };
    await loadHubDataset('graft-test/cached', { endpoint: hub.endpoint, cache });
    const sha = createHash('sha256').update(alpacaParquet).digest('hex');
    expect([...store.keys()]).toEqual([`datasets/graft-test/cached/train.parquet@${sha}`]);
    hub.requests.length = 0;
    const events: string[] = [];
    const again = await loadHubDataset('graft-test/cached', { endpoint: hub.endpoint, cache, onProgress: (p) => events.push(p.phase) });
    expect(again.records).toHaveLength(16);
    expect(hub.requests.filter((r) => r.includes('/resolve/'))).toEqual([]);
    expect(events).toContain('cached');
  });
});

describe('loadHubDataset with the project test hub (no tree API for datasets)', () => {
  it('finds train.jsonl by its conventional name', async () => {
    const lines = `${(JSON.parse(new TextDecoder().decode(alpacaJson)) as unknown[]).map((r) => JSON.stringify(r)).join('\n')}\n{"instruction": 1}\n`;
    testHub.addModel('datasets/graft-test/plain', { 'README.md': enc.encode('#'), 'train.jsonl': enc.encode(lines) });
    testHub.clearRequests();
    const ds = await loadHubDataset('graft-test/plain', { endpoint: testHub.endpoint });
    expect(ds.files).toEqual(['train.jsonl']);
    expect(ds.records).toHaveLength(16);
    expect(ds.problems).toEqual([{ line: 17, reason: '"instruction" must be a string, not a number' }]);
    const resolves = testHub.requests.filter((r) => r.stage === 'resolve').map((r) => r.file);
    expect(resolves).toEqual(FALLBACK_FILES.slice(0, FALLBACK_FILES.indexOf('train.jsonl') + 1));
  });

  it('reads a named Parquet file', async () => {
    testHub.addModel('datasets/graft-test/pq', { 'data/sft.parquet': alpacaParquet });
    const ds = await loadHubDataset('graft-test/pq', { endpoint: testHub.endpoint, file: 'data/sft.parquet' });
    expect(ds.records).toHaveLength(16);
    expect(ds.problems.map((p) => p.index)).toEqual([16, 17]);
  });

  it('says so when no conventional name exists, and rewords a missing named file for datasets', async () => {
    testHub.addModel('datasets/graft-test/odd', { 'stuff/records.jsonl': enc.encode('{}\n') });
    await expect(loadHubDataset('graft-test/odd', { endpoint: testHub.endpoint })).rejects.toMatchObject({
      code: 'not-found',
      message: expect.stringMatching(/the endpoint does not list files.*Name the file to read/),
    });
    await expect(loadHubDataset('graft-test/odd', { endpoint: testHub.endpoint, file: 'nope.jsonl' })).rejects.toMatchObject({
      code: 'not-found',
      file: 'nope.jsonl',
      message: expect.stringMatching(/^nope\.jsonl is not in the dataset graft-test\/odd \(revision main\)/),
    });
  });

  it('a network failure is a HubError "network" that names the dataset', async () => {
    await expect(loadHubDataset('graft-test/plain', { endpoint: 'http://127.0.0.1:1', retries: 0 })).rejects.toMatchObject({
      code: 'network',
      message: expect.stringMatching(/graft-test\/plain/),
    });
  });
});
