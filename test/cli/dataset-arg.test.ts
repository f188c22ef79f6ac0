// What `graft train --dataset NAME` means (src/cli/dataset-arg.ts), against the local test hub, in process:
// a local file wins over a hub id, dataset_info.json's hf_hub_url + split picks that split's file, a hub id reads
// the train split, hf://datasets/... one named file, files are cached by content id (a second read makes no
// resolve request), and a name that is none of these fails saying what is accepted.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readHubDataset, readHubDatasetFile, resolveDatasetArg, type DatasetRef } from '../../src/cli/dataset-arg';
import type { CliEnv } from '../../src/cli/model-arg';
import { parseDatasetText } from '../../src/data';
import { TestHub } from '../helpers/test-hub';

const scratch = mkdtempSync(join(tmpdir(), 'graft-dataset-arg-'));
let hub: TestHub;
const enc = (x: unknown) => new TextEncoder().encode(typeof x === 'string' ? x : JSON.stringify(x));
const TRAIN = [
  { instruction: 'Say one', input: '', output: 'One.' },
  { instruction: 'Say two', input: '', output: 'Two.' },
];
const PAIRS = JSON.stringify({ prompt: 'Hi', chosen: 'Hello!', rejected: 'Go away.' });
const VALIDATION = [{ instruction: 'Say three', input: '', output: 'Three.' }];

beforeAll(async () => {
  hub = await TestHub.start({ datasetTreeApi: true });
  hub.addModel('datasets/owner/set', {
    'data/train-00000-of-00001.json': enc(TRAIN),
    'data/validation-00000-of-00001.jsonl': enc(VALIDATION.map((r) => JSON.stringify(r)).join('\n')),
    'README.md': enc('# set\n'),
  });
  hub.addModel('datasets/owner/pairs', { 'train.jsonl': enc(PAIRS), 'test.jsonl': enc(PAIRS) });
  hub.addModel('datasets/owner/sharded', { 'data/train-00000-of-00002.json': enc(TRAIN), 'data/train-00001-of-00002.json': enc(TRAIN), 'data/x.parquet': enc('PAR1') });
});
afterAll(async () => {
  await hub.close();
  rmSync(scratch, { recursive: true, force: true });
});

function io(): CliEnv & { err: string[] } {
  const err: string[] = [];
  const stream = { write: (s: string) => void err.push(s), isTTY: false, columns: 80 };
  return { env: { HF_ENDPOINT: hub.endpoint, GRAFT_CACHE: join(scratch, 'cache') }, stdout: stream, stderr: stream, signal: new AbortController().signal, err } as unknown as CliEnv & { err: string[] };
}

describe('resolveDatasetArg', () => {
  it('a local file wins; dataset_info.json names files and hub datasets; ids and hf:// paths are hub datasets', async () => {
    const dir = join(scratch, 'data');
    mkdirSync(join(dir, 'owner'), { recursive: true });
    writeFileSync(join(dir, 'local.json'), enc(TRAIN));
    writeFileSync(join(dir, 'dataset_info.json'), enc({ mine: { file_name: 'local.json' }, remote: { hf_hub_url: 'owner/set', split: 'validation' } }));
    expect(await resolveDatasetArg('mine', dir, undefined)).toMatchObject({ kind: 'file', name: 'mine', path: join(dir, 'local.json'), info: { file_name: 'local.json', formatting: 'alpaca', ranking: false } });
    expect(await resolveDatasetArg('remote', dir, undefined)).toMatchObject({ kind: 'hub', name: 'remote', repo: 'owner/set', split: 'validation', info: { hf_hub_url: 'owner/set', formatting: 'alpaca' } });
    expect(await resolveDatasetArg('owner/set@v2', dir, undefined)).toEqual({ kind: 'hub', name: 'owner/set@v2', repo: 'owner/set', revision: 'v2' });
    expect(await resolveDatasetArg('hf://datasets/owner/set/data/x.jsonl', dir, undefined)).toEqual({ kind: 'hub', name: 'hf://datasets/owner/set/data/x.jsonl', repo: 'owner/set', file: 'data/x.jsonl' });
    // A file of that spelling exists (relative to the job's folder): it wins.
    writeFileSync(join(dir, 'owner', 'set'), enc(TRAIN));
    expect(await resolveDatasetArg('owner/set', 'none', dir)).toEqual({ kind: 'file', name: 'owner/set', path: join(dir, 'owner', 'set') });
    await expect(resolveDatasetArg('missing.json', dir, undefined)).rejects.toThrow(/dataset missing\.json is not a file .*owner\/name\[@revision\], or hf:\/\/datasets\/owner\/name\[@revision\]\/<file>/);
  });
});

describe('readHubDataset', () => {
  it('reads the split dataset_info.json names, the train split by default, and a second time from the cache', async () => {
    const validation = await readHubDataset({ kind: 'hub', name: 'remote', repo: 'owner/set', split: 'validation' }, io());
    expect(validation.files).toEqual(['data/validation-00000-of-00001.jsonl']);
    expect(validation.records).toEqual(parseDatasetText(enc(VALIDATION.map((r) => JSON.stringify(r)).join('\n')), 'v.jsonl').records);

    const ref: DatasetRef & { kind: 'hub' } = { kind: 'hub', name: 'owner/set', repo: 'owner/set' };
    const first = io();
    const train = await readHubDataset(ref, first);
    expect(train.files).toEqual(['data/train-00000-of-00001.json']);
    expect(train.records).toEqual(parseDatasetText(enc(TRAIN), 't.json').records);
    expect(train.records).toHaveLength(2);
    expect(first.err.join('')).toMatch(/dataset owner\/set: downloading data\/train-00000-of-00001\.json \(1\/1\)/);

    hub.clearRequests();
    const second = io();
    const again = await readHubDataset(ref, second);
    expect(again.records).toEqual(train.records);
    expect(second.err.join('')).toMatch(/data\/train-00000-of-00001\.json \(1\/1\) from the cache/);
    expect(hub.requests.filter((r) => r.stage === 'resolve' || r.stage === 'cdn')).toEqual([]);
    // One file per content id: the validation and the train file.
    expect(readdirSync(join(scratch, 'cache', 'datasets')).sort()).toEqual(
      ['data/train-00000-of-00001.json', 'data/validation-00000-of-00001.jsonl'].map((f) => expect.stringContaining(encodeURIComponent(`datasets/owner/set/${f}@`))),
    );
  });
});

describe('readHubDatasetFile (preference pairs)', () => {
  it('returns the bytes of the split\'s one JSON / JSON Lines file, or of the named file, cached; refuses several files and Parquet', async () => {
    const ref = { kind: 'hub', name: 'owner/pairs', repo: 'owner/pairs' } as const;
    const first = io();
    const got = await readHubDatasetFile(ref, first);
    expect(got.file).toBe('train.jsonl');
    expect(new TextDecoder().decode(got.bytes)).toBe(PAIRS);
    expect(first.err.join('')).toMatch(/dataset owner\/pairs: downloading train\.jsonl/);
    hub.clearRequests();
    const second = io();
    expect((await readHubDatasetFile(ref, second)).bytes).toEqual(got.bytes);
    expect(second.err.join('')).toMatch(/train\.jsonl from the cache/);
    expect(hub.requests.filter((r) => r.stage === 'resolve' || r.stage === 'cdn')).toEqual([]);
    expect((await readHubDatasetFile({ ...ref, split: 'test' }, io())).file).toBe('test.jsonl');

    const sharded = { kind: 'hub', name: 'owner/sharded', repo: 'owner/sharded' } as const;
    await expect(readHubDatasetFile(sharded, io())).rejects.toThrow(/The train split of owner\/sharded has 2 files .*name it as hf:\/\/datasets\/owner\/sharded\/<file>/);
    expect((await readHubDatasetFile({ ...sharded, file: 'data/train-00001-of-00002.json' }, io())).bytes).toEqual(enc(TRAIN));
    await expect(readHubDatasetFile({ ...sharded, file: 'data/x.parquet' }, io())).rejects.toThrow(/data\/x\.parquet of owner\/sharded is not a JSON or JSON Lines file/);
  });
});
