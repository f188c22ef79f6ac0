// The fault suite without a GPU: zip and gzip bombs (only the entries used are inflated, each stopped at its
// cap while inflating), storage that fills up under a checkpoint (IndexedDB's quota, a full disk) and a final
// export written onto a full disk. Each asserts that nothing corrupt is kept and that the message is one line.
import 'fake-indexeddb/auto';
import { IDBFactory, IDBObjectStore as FakeObjectStore } from 'fake-indexeddb';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'fflate';
import { afterEach, describe, expect, it } from 'vitest';
import { writeJobResult } from '../../src/cli/folder-sink';
import { oneLine } from '../../src/cli/report';
import { parseDatasetFile } from '../../src/data/hub-dataset';
import { ModelError } from '../../src/model/source';
import { checkpointName, CheckpointError } from '../../src/train/checkpoint-store';
import { IdbCheckpointStore } from '../../src/train/checkpoint-store-idb';
import { NodeCheckpointStore } from '../../src/train/checkpoint-store-node';
import { FileError } from '../../src/train/file-error';
import { Library } from '../../src/worker/library';
import type { Workbench } from '../../src/worker/workbench';
import { readZipEntries, ZIP_ENTRY_CAPS } from '../../src/worker/zip-entries';
import { gzipBomb, zipOf } from './bombs';
import { diskTestName, notRun, reason as noDisk, smallDisk } from './disk';

const MiB = 1024 * 1024;
const text = (s: string) => new TextEncoder().encode(s);

/** The one line the CLI prints for an error: no class name, one sentence. */
function expectOneLine(e: Error): void {
  expect(e.message).not.toMatch(/\n/);
  expect(oneLine(e, false)).toBe(`graft: ${e.message}`);
}

describe('zip bombs (adapter import)', () => {
  const config = text(JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'] }));
  const weights = new Uint8Array(1000).fill(7);

  it('an unused entry of 1 GiB (claiming 800 MiB) is never inflated: the used entries are read at once', () => {
    const zip = zipOf({ 'a/adapter_config.json': config, 'a/junk.bin': { bomb: 1024 * MiB, claims: 800 * MiB }, 'a/adapter_model.safetensors': weights });
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const got = readZipEntries('adapter.zip', zip, ZIP_ENTRY_CAPS);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * MiB);
    expect([...got.keys()].sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect(got.get('adapter_model.safetensors')).toEqual(weights);
  });

  it('a used entry of 1 GiB whose header claims 100 bytes is stopped at the cap while inflating', () => {
    const bomb = zipOf({ 'adapter_config.json': config, 'adapter_model.safetensors': { bomb: 1024 * MiB, claims: 100 } });
    const caps = { ...ZIP_ENTRY_CAPS, 'adapter_model.safetensors': 1 * MiB };
    const before = process.memoryUsage().arrayBuffers;
    let err: unknown;
    try {
      readZipEntries('bomb.zip', bomb, caps);
    } catch (e) {
      err = e;
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * MiB);
    expect(err).toBeInstanceOf(ModelError);
    expect((err as Error).message).toBe(
      "bomb.zip: adapter_model.safetensors unpacks to more than 1.0 MiB, the most Graft reads for adapter_model.safetensors; it was not read. Pick the adapter's own files, or a zip that holds them.",
    );
    expectOneLine(err as Error);
  });

  it('the import refuses an entry whose header claims more than the stated cap (2 GiB) before inflating it', async () => {
    const zip = zipOf({ 'adapter_config.json': config, 'adapter_model.safetensors': { bomb: 1024 * MiB, claims: 3 * 1024 * MiB } });
    const library = new Library({} as Workbench);
    const err = await library.importAdapter([{ name: 'big.zip', bytes: zip, mime: 'application/zip' }], 'graft-test/tiny-llama').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ModelError);
    expect(err!.message).toMatch(/^big\.zip: adapter_model\.safetensors unpacks to more than 2\.0 GiB, the most Graft reads for adapter_model\.safetensors; it was not read\./);
  });
});

describe('gzip bombs (hub datasets)', () => {
  it('a .gz dataset of 1 GiB is one problem, stopped at the cap while inflating', async () => {
    const bomb = gzipBomb(1024 * MiB);
    const before = process.memoryUsage().arrayBuffers;
    const parsed = await parseDatasetFile(bomb, 'train.jsonl.gz', { maxUnpackedBytes: 1 * MiB });
    expect(parsed.records).toEqual([]);
    expect(parsed.problems.map((p) => p.reason)).toEqual([
      'train.jsonl.gz: it unpacks to more than 1.0 MiB, the most Graft reads from one compressed file; split the dataset into smaller files (or use Parquet)',
    ]);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * MiB);
    // Under the cap it reads as before.
    const ok = await parseDatasetFile(gzipSync(text('{"instruction": "a", "output": "b"}\n')), 'train.jsonl.gz', { maxUnpackedBytes: 1 * MiB });
    expect(ok.records).toHaveLength(1);
  });
});

describe('storage that fills up under a checkpoint', () => {
  const files = (n: number) => new Map([['trainable.safetensors', new Uint8Array(n).fill(1)], ['trainer_state.json', text('{}')]]);

  it("IndexedDB's quota during checkpoint-4: the write is undone, checkpoint-2 is kept, and the message says how much is needed", async () => {
    const store = new IdbCheckpointStore({ run: 'r', indexedDB: new IDBFactory(), chunkBytes: 1024, estimate: async () => ({ usage: 9_000_000, quota: 10_000_000 }) });
    await store.write(2, files(3000));
    const put = FakeObjectStore.prototype.put;
    FakeObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
      if (this.name === 'checkpointChunks' && (args[1] as unknown[])[1] === 4 && (args[1] as unknown[])[3] === 2) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return put.apply(this, args);
    } as typeof put;
    let err: unknown;
    try {
      await store.write(4, files(5 * MiB));
    } catch (e) {
      err = e;
    } finally {
      FakeObjectStore.prototype.put = put;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).code).toBe('quota');
    expect((err as Error).message).toBe(
      'There is not enough storage space to save checkpoint-4: it needs 5.0 MiB and 976.6 KiB is free; checkpoint-2, the latest complete checkpoint, is kept: free at least that much (delete models, adapters or runs you no longer need), then continue the run.',
    );
    expectOneLine(err as Error);
    expect(await store.list()).toEqual([2]);
    expect((await store.read(2)).get('trainable.safetensors')).toEqual(files(3000).get('trainable.safetensors'));
    await store.close();
  });

  let disk: { dir: string; cleanup(): void } | undefined;
  afterEach(() => {
    disk?.cleanup();
    disk = undefined;
  });

  const full = diskTestName('a full disk during checkpoint-4 (tmpfs): no checkpoint-4 and no .tmp, checkpoint-2 intact, one line naming the file');
  it(full, async () => {
    if (noDisk) return notRun(full);
    disk = smallDisk(256 * 1024);
    const store = new NodeCheckpointStore(join(disk.dir, 'out'));
    await store.write(2, files(60_000));
    let err: unknown;
    try {
      await store.write(4, files(400_000));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FileError);
    expect((err as FileError).code).toBe('ENOSPC');
    expect((err as Error).message).toMatch(
      new RegExp(`^Could not save checkpoint-4: there is no space left on the disk for ${join(disk.dir, 'out', 'checkpoint-4.tmp', 'trainable.safetensors')}; checkpoint-2, the latest complete checkpoint, is kept: free some disk space, then resume with --resume_from_checkpoint true\\.$`),
    );
    expectOneLine(err as Error);
    expect(readdirSync(join(disk.dir, 'out'))).toEqual([checkpointName(2)]);
    expect(await store.list()).toEqual([2]);
    expect((await store.read(2)).get('trainable.safetensors')).toEqual(files(60_000).get('trainable.safetensors'));
  });

  const exportFull = diskTestName('a full disk during the final export: each result file is whole or absent (no temporary file left), one line naming it');
  it(exportFull, async () => {
    if (noDisk) return notRun(exportFull);
    disk = smallDisk(256 * 1024);
    const dir = join(disk.dir, 'out');
    const result = {
      kind: 'adapter' as const,
      files: new Map([['adapter_config.json', text('{"r": 2}')], ['adapter_model.safetensors', new Uint8Array(400_000).fill(3)]]),
      adapter: { kind: 'lora' as const, r: 2, alpha: 4, useRslora: false, targetModules: [], modules: 1 },
    };
    // An earlier, complete adapter in the folder stays as it was.
    await writeJobResult(dir, { ...result, files: new Map([['adapter_model.safetensors', new Uint8Array(100).fill(9)]]) });
    let err: unknown;
    try {
      await writeJobResult(dir, result);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FileError);
    expect((err as Error).message).toBe(`There is no space left on the disk for ${join(dir, 'adapter_model.safetensors')}: free some disk space and run the command again.`);
    expectOneLine(err as Error);
    expect(readdirSync(dir)).toEqual(['adapter_model.safetensors']);
    expect(readFileSync(join(dir, 'adapter_model.safetensors'))).toEqual(Buffer.alloc(100, 9));
    expect(existsSync(join(dir, 'adapter_config.json'))).toBe(false);
  });
});
