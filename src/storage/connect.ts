// Opens a connection to the "graft" database at GRAFT_DB_VERSION, running the upgrade steps of schema.ts when it
// is older. This is idb's openDB with the IndexedDB factory passed in (openDB always takes the global one, and
// tests pass fake-indexeddb's). open.ts adds the legacy import on top; use openGraftDb from there.
import { wrap } from 'idb';
import { GRAFT_DB_NAME, GRAFT_DB_VERSION, upgradeGraftDb, type GraftDb, type UpgradeTransaction } from './schema';

/**
 * `onClose` is called when the connection closes on its own: another tab asks for a newer version (this
 * connection then closes at once so that its upgrade is not blocked) or the browser closes it (storage cleared).
 */
export function connectGraftDb(factory: IDBFactory, onClose?: () => void): Promise<GraftDb> {
  return new Promise((resolve, reject) => {
    let upgradeError: unknown;
    const req = factory.open(GRAFT_DB_NAME, GRAFT_DB_VERSION);
    req.onupgradeneeded = (e) => {
      const tx = req.transaction!;
      const db = wrap(req.result) as unknown as GraftDb;
      upgradeGraftDb(db, e.oldVersion, e.newVersion ?? GRAFT_DB_VERSION, wrap(tx) as unknown as UpgradeTransaction).catch((err: unknown) => {
        upgradeError = err;
        try {
          tx.abort();
        } catch {
          // already finished: the open's error event reports it
        }
      });
    };
    req.onsuccess = () => {
      const db = req.result;
      db.onversionchange = () => {
        db.close();
        onClose?.();
      };
      db.onclose = () => onClose?.();
      resolve(wrap(db) as unknown as GraftDb);
    };
    req.onerror = () => reject(upgradeError ?? req.error);
    // `blocked` (a tab holds an older version open) is not fatal: Graft's connections close on `versionchange`
    // (above), and the open then proceeds.
  });
}
