// openGraftDb: the one way to the "graft" database. The first open for an IndexedDB factory in this JS realm
// imports the legacy databases (legacy.ts) before any connection is handed out. GraftDbConnection is the lazily
// opened connection the stores keep: it opens again after another tab's upgrade made it close.
import { connectGraftDb } from './connect';
import { importLegacyDatabases } from './legacy';
import type { GraftDb } from './schema';

export interface OpenGraftDbOptions {
  /** Called when the connection closes on its own (another tab's upgrade, storage cleared): open it again. */
  onClose?: () => void;
}

const imports = new WeakMap<IDBFactory, Promise<void>>();

/**
 * A new connection to "graft" at the current version (upgraded when older), after the legacy import. The factory
 * defaults to globalThis.indexedDB; tests pass fake-indexeddb's. A failed import does not fail the open: the
 * legacy databases stay, and the next page load tries again.
 */
export async function openGraftDb(factory: IDBFactory | undefined = globalThis.indexedDB, options: OpenGraftDbOptions = {}): Promise<GraftDb> {
  if (!factory) throw new Error('IndexedDB is not available here. Use a current browser outside private mode.');
  let imported = imports.get(factory);
  if (!imported) {
    imported = importLegacyDatabases(factory).then(
      () => undefined,
      (e: unknown) => console.warn('Graft: the data of an earlier version could not all be moved; it is tried again on the next visit.', e),
    );
    imports.set(factory, imported);
  }
  await imported;
  return connectGraftDb(factory, options.onClose);
}

/** A connection opened on first use and kept; opened again when it closed on its own. */
export class GraftDbConnection {
  private current: Promise<GraftDb> | undefined;

  /**
   * `factory`: the IndexedDB factory (undefined: globalThis.indexedDB when first used). `missing`: the error to
   * give when there is none.
   */
  constructor(
    private readonly factory: IDBFactory | undefined,
    private readonly missing: () => Error = () => new Error('IndexedDB is not available here. Use a current browser outside private mode.'),
  ) {}

  get(): Promise<GraftDb> {
    if (this.current) return this.current;
    const factory = this.factory ?? globalThis.indexedDB;
    if (!factory) return Promise.reject(this.missing());
    const p: Promise<GraftDb> = openGraftDb(factory, {
      onClose: () => {
        if (this.current === p) this.current = undefined;
      },
    }).catch((e: unknown) => {
      if (this.current === p) this.current = undefined;
      throw e;
    });
    this.current = p;
    return p;
  }

  /** Closes the connection (it opens again on next use). */
  async close(): Promise<void> {
    const p = this.current;
    this.current = undefined;
    if (p) (await p.catch(() => undefined))?.close();
  }
}
