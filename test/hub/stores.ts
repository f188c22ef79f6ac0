// Store factories for the hub tests: the Node cache-folder store in a fresh temporary folder, and the
// IndexedDB store on fake-indexeddb with a fresh factory (an empty browser profile) and small chunks, so that
// files span several chunks and end in a short one. Also the two checks the hub tests share: a download that
// fails with a HubError, and files stored byte for byte.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { HubError } from '../../src/hub/errors';
import { IdbModelStore } from '../../src/hub/store-idb';
import { NodeFolderStore } from '../../src/hub/store-node';
import type { ModelStore, StorageEstimateInfo } from '../../src/hub/store';

export type StoreKind = 'folder' | 'indexeddb';
export const STORE_KINDS: StoreKind[] = ['folder', 'indexeddb'];

export interface TestStore {
  kind: StoreKind;
  store: ModelStore;
  /** The folder store's cache folder, or the IndexedDB factory. */
  dir?: string;
  factory?: IDBFactory;
  cleanup(): Promise<void>;
}

export async function makeStore(
  kind: StoreKind,
  options: { chunkSize?: number; estimate?: () => Promise<StorageEstimateInfo> } = {},
): Promise<TestStore> {
  if (kind === 'folder') {
    const dir = await mkdtemp(join(tmpdir(), 'graft-hub-'));
    const store = new NodeFolderStore({ dir, chunkSize: options.chunkSize ?? 100_000 });
    if (options.estimate) store.estimate = options.estimate;
    return { kind, store, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
  }
  const factory = new IDBFactory();
  const store = new IdbModelStore({
    indexedDB: factory,
    chunkSize: options.chunkSize ?? 64 * 1024,
    estimate: options.estimate ?? (async () => ({})),
  });
  return { kind, store, factory, cleanup: () => store.close() };
}

/** Catches the HubError a promise rejects with. */
export async function failure(p: Promise<unknown>): Promise<HubError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(HubError);
    return e as HubError;
  }
  throw new Error('expected the download to fail');
}

/** Every file of `files` is in the store under repo@main, byte for byte. */
export async function expectStored(t: TestStore, repo: string, files: Record<string, Uint8Array>): Promise<void> {
  for (const [path, bytes] of Object.entries(files)) {
    const got = await t.store.readFile(repo, 'main', path);
    expect(got.length, path).toBe(bytes.length);
    expect(Buffer.from(got).equals(Buffer.from(bytes)), `${path} is byte-identical`).toBe(true);
  }
}
