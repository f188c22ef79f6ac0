// The hub layer for browsers, workers and Node: client, store interface, IndexedDB store, errors, sha256.
// The Node cache-folder store is Node-only: import it from './store-node'.
export * from './client';
export * from './errors';
export * from './sha256';
export * from './store';
export { DEFAULT_CHUNK_SIZE, DEFAULT_IDB_NAME, IdbModelStore, type IdbModelStoreOptions } from './store-idb';
