// The ModelStore contract, for the cache-folder store and the IndexedDB store alike.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HubError } from '../../src/hub/errors';
import { defaultCacheDir, NodeFolderStore, nodeHubSettings } from '../../src/hub/store-node';
import { Rng } from '../helpers/rng';
import { makeStore, STORE_KINDS, type TestStore } from './stores';

const R = 'org/model';
const V = 'main';
const CHUNK = 10;

function bytes(n: number, seed = 1): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: n }, () => rng.int(0, 256));
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c.slice());
  return out;
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe.each(STORE_KINDS)('the %s store', (kind) => {
  let t: TestStore;
  beforeEach(async () => {
    t = await makeStore(kind, { chunkSize: CHUNK });
  });
  afterEach(() => t.cleanup());

  it('writes a file in odd-sized appends, reads it back whole and as chunks, and marks it complete only on complete()', async () => {
    const data = bytes(47);
    await t.store.planFiles(R, V, [{ path: 'a.bin', expectedSize: 47, sha256: 'f'.repeat(64) }]);
    const w = await t.store.openWriter(R, V, 'a.bin', { resume: false });
    expect(w.offset).toBe(0);
    for (const [s, e] of [[0, 3], [3, 13], [13, 13], [13, 40], [40, 47]] as const) await w.append(data.subarray(s, e));
    expect(w.offset).toBe(47);
    let m = (await t.store.getModel(R, V))!;
    expect(m.files[0]).toMatchObject({ path: 'a.bin', complete: false, expectedSize: 47, sha256: 'f'.repeat(64) });
    await expect(t.store.readFile(R, V, 'a.bin')).rejects.toMatchObject({ code: 'not-found' });
    await w.complete();
    m = (await t.store.getModel(R, V))!;
    expect(m.files[0]).toMatchObject({ complete: true, size: 47 });
    expect(m.complete).toBe(false); // until markComplete
    expect(same(await t.store.readFile(R, V, 'a.bin'), data)).toBe(true);
    const chunks = await collect(t.store.readChunks(R, V, 'a.bin'));
    expect(chunks.map((c) => c.length)).toEqual([10, 10, 10, 10, 7]);
    expect(same(Buffer.concat(chunks), data)).toBe(true);
    expect((await t.store.readFile(R, V, 'a.bin', { end: 15 })).length).toBe(15);

    await t.store.markComplete(R, V);
    m = (await t.store.getModel(R, V))!;
    expect(m).toMatchObject({ complete: true, totalBytes: 47, expectedBytes: 47 });
    expect(m.downloadedAt).toBeGreaterThanOrEqual(m.createdAt);
  });

  it('keeps a closed partial file resumable, including a short last chunk', async () => {
    const data = bytes(35, 2);
    let w = await t.store.openWriter(R, V, 'b.bin', { resume: false });
    await w.append(data.subarray(0, 23));
    await w.close();
    await w.close(); // twice is fine
    let f = (await t.store.getModel(R, V))!.files[0]!;
    expect(f).toMatchObject({ size: 23, complete: false });
    expect(same(await t.store.readFile(R, V, 'b.bin', { allowPartial: true }), data.subarray(0, 23))).toBe(true);

    w = await t.store.openWriter(R, V, 'b.bin', { resume: true });
    expect(w.offset).toBe(23);
    await w.append(data.subarray(23));
    await w.complete();
    expect(same(await t.store.readFile(R, V, 'b.bin'), data)).toBe(true);

    // Without resume, the file starts again empty.
    w = await t.store.openWriter(R, V, 'b.bin', { resume: false });
    expect(w.offset).toBe(0);
    f = (await t.store.getModel(R, V))!.files[0]!;
    expect(f).toMatchObject({ size: 0, complete: false });
    await w.close();
    // Resuming a complete file keeps its bytes but makes it partial until complete() again.
    w = await t.store.openWriter(R, V, 'b.bin', { resume: false });
    await w.append(data);
    await w.complete();
    w = await t.store.openWriter(R, V, 'b.bin', { resume: true });
    expect(w.offset).toBe(35);
    expect((await t.store.getModel(R, V))!.files[0]!.complete).toBe(false);
    await w.complete();
    expect(same(await t.store.readFile(R, V, 'b.bin'), data)).toBe(true);
  });

  it('stores an empty file', async () => {
    const w = await t.store.openWriter(R, V, 'empty.json', { resume: false });
    await w.complete();
    expect((await t.store.readFile(R, V, 'empty.json')).length).toBe(0);
    expect((await t.store.getModel(R, V))!.files[0]).toMatchObject({ size: 0, complete: true });
  });

  it('deletes a file (kept as partial, or forgotten) and refuses to mark a model with partial files complete', async () => {
    await t.store.planFiles(R, V, [{ path: 'x.bin' }, { path: 'y.bin' }]);
    for (const p of ['x.bin', 'y.bin']) {
      const w = await t.store.openWriter(R, V, p, { resume: false });
      await w.append(bytes(25));
      await w.complete();
    }
    await t.store.deleteFile(R, V, 'x.bin');
    let m = (await t.store.getModel(R, V))!;
    expect(m.files.map((f) => [f.path, f.size, f.complete])).toEqual([
      ['x.bin', 0, false],
      ['y.bin', 25, true],
    ]);
    await expect(t.store.markComplete(R, V)).rejects.toThrow(/partial files: x\.bin/);
    await t.store.deleteFile(R, V, 'x.bin', { forget: true });
    m = (await t.store.getModel(R, V))!;
    expect(m.files.map((f) => f.path)).toEqual(['y.bin']);
    await t.store.markComplete(R, V);
    expect((await t.store.getModel(R, V))!.complete).toBe(true);
    // Planning again (a new download) makes the model partial until it is marked complete again.
    await t.store.planFiles(R, V, [{ path: 'y.bin' }]);
    expect((await t.store.getModel(R, V))!.complete).toBe(false);
  });

  it('keeps models and revisions apart, lists them, and deletes one without touching the others', async () => {
    for (const [repo, rev] of [[R, V], [R, 'refs/pr/1'], ['solo', V]] as const) {
      const w = await t.store.openWriter(repo, rev, 'sub/dir/f.txt', { resume: false });
      await w.append(new TextEncoder().encode(`${repo}@${rev}`));
      await w.complete();
    }
    expect((await t.store.listModels()).map((m) => `${m.repo}@${m.revision}`).sort()).toEqual(['org/model@main', 'org/model@refs/pr/1', 'solo@main']);
    await t.store.deleteModel(R, V);
    expect((await t.store.listModels()).map((m) => `${m.repo}@${m.revision}`).sort()).toEqual(['org/model@refs/pr/1', 'solo@main']);
    expect(new TextDecoder().decode(await t.store.readFile(R, 'refs/pr/1', 'sub/dir/f.txt'))).toBe('org/model@refs/pr/1');
    await expect(t.store.readFile(R, V, 'sub/dir/f.txt')).rejects.toBeInstanceOf(HubError);
  });

  it('rejects unsafe file paths', async () => {
    for (const p of ['../x', 'a/../../x', '/abs', 'a//b', 'a\\b', '']) {
      await expect(t.store.openWriter(R, V, p, { resume: false }), p).rejects.toMatchObject({ code: 'bad-response' });
    }
  });

  it('reports an estimate and answers persist()', async () => {
    const e = await t.store.estimate();
    if (kind === 'folder') expect(e.available).toBeGreaterThan(0);
    else expect(e).toEqual({});
    expect(typeof (await t.store.persist())).toBe('boolean');
  });
});

describe('the folder store layout', () => {
  it('keeps partial files as *.partial and renames them on completion; the default cache folder follows GRAFT_CACHE', async () => {
    const t = await makeStore('folder');
    try {
      const store = t.store as NodeFolderStore;
      const w = await store.openWriter(R, V, 'model.safetensors', { resume: false });
      await w.append(bytes(5));
      const dir = store.filesDir(R, V);
      expect(dir).toBe(join(t.dir!, 'models--org--model', 'main', 'files'));
      expect(await readdir(dir)).toEqual(['model.safetensors.partial']);
      await w.complete();
      expect(await readdir(dir)).toEqual(['model.safetensors']);
    } finally {
      await t.cleanup();
    }
    expect(defaultCacheDir({ GRAFT_CACHE: '/x/y' })).toBe('/x/y');
    expect(defaultCacheDir({})).toMatch(/\.cache\/graft\/models$/);
    expect(nodeHubSettings({ HF_ENDPOINT: 'http://mirror', HF_TOKEN: 'hf_x', GRAFT_CACHE: '/c' })).toEqual({
      endpoint: 'http://mirror',
      token: 'hf_x',
      cacheDir: '/c',
    });
    expect(nodeHubSettings({ HUGGING_FACE_HUB_TOKEN: 'hf_y' }).token).toBe('hf_y');
    expect(nodeHubSettings({}).endpoint).toBeUndefined();
  });
});
