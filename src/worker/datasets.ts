// The worker's datasets: the one open in memory, and the last few in IndexedDB (stores datasets and
// datasetEdits of the "graft" database, src/storage) with their edits and column mapping, so that a reload finds
// them again. The trainer reads a dataset's valid records through conversations(id).
import { EncodeError } from '../data/encode';
import type { Conversation } from '../data/types';
import { HubError } from '../hub/errors';
import { GraftDbConnection, type GraftDb } from '../storage';
import { applyEdit, applyMapping, buildDataset, mappingRewriter, summarize, viewOf, type Dataset, type Row, type StoredEdit } from './dataset-rows';
import type { ColumnMapping, DatasetSummary, RowEdit, RowPage, RowQuery, RowUpdate } from './protocol';

// The "graft" database (src/storage): store "datasets" holds each file's bytes once (written when it is opened),
// store "datasetEdits" its edits (rewritten on each edit, small), both keyed by the dataset id. A file's column
// mapping is kept on its record in "datasets" (a field of the value; the store's shape is unchanged).
const FILES = 'datasets';
const EDITS = 'datasetEdits';
/** Datasets kept on the device; older ones are deleted when a new one is opened. */
const KEEP = 4;

interface StoredFile {
  id: string;
  name: string;
  bytes: Uint8Array;
  savedAt: number;
  /** The column mapping chosen for this file (absent: none). */
  mapping?: ColumnMapping;
}

interface StoredEdits {
  id: string;
  edits: [number, StoredEdit][];
}

function replay(row: Row, e: StoredEdit, mapper?: (record: unknown) => unknown): void {
  if (e.fields) applyEdit(row, e.fields, mapper);
  if (e.removed) applyEdit(row, { kind: 'removed' }, mapper);
}

function newId(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return `ds-${Date.now().toString(36)}-${[...b].map((x) => x.toString(16).padStart(2, '0')).join('')}`;
}

/** The worker's datasets: in memory, and in IndexedDB for reloads. */
export class DatasetService {
  private readonly open = new Map<string, Dataset>();
  private readonly connection: GraftDbConnection | undefined;

  /**
   * `store`: keep datasets in IndexedDB for reloads (true: globalThis.indexedDB; or the factory to use, as tests
   * pass fake-indexeddb's); off where there is none.
   */
  constructor(store: boolean | IDBFactory = globalThis.indexedDB !== undefined) {
    this.connection = store === false ? undefined : new GraftDbConnection(store === true ? undefined : store);
  }

  private db(): Promise<GraftDb> | undefined {
    return this.connection?.get();
  }

  /** Stores a new dataset's file (and forgets the oldest beyond KEEP), or only its edits. */
  private async save(d: Dataset, what: 'file' | 'edits' | 'mapping'): Promise<void> {
    const dbp = this.db();
    if (!dbp) return;
    try {
      const db = await dbp;
      if (what === 'edits') {
        const edits: StoredEdits = { id: d.id, edits: [...d.edits] };
        await db.put(EDITS, edits);
        return;
      }
      if (what === 'mapping') {
        const stored = (await db.get(FILES, d.id)) as StoredFile | undefined;
        if (!stored) return;
        const next: StoredFile = { ...stored };
        if (d.mapping) next.mapping = d.mapping;
        else delete next.mapping;
        await db.put(FILES, next);
        return;
      }
      const file: StoredFile = { id: d.id, name: d.name, bytes: d.bytes, savedAt: Date.now(), ...(d.mapping ? { mapping: d.mapping } : {}) };
      await db.put(FILES, file);
      const keys = (await db.getAllKeys(FILES)) as string[];
      if (keys.length > KEEP) {
        const all = (await db.getAll(FILES)) as StoredFile[];
        all.sort((a, b) => b.savedAt - a.savedAt);
        for (const old of all.slice(KEEP)) {
          await db.delete(FILES, old.id);
          await db.delete(EDITS, old.id);
        }
      }
    } catch (e) {
      // The dataset still works for this visit; it will not survive a reload.
      console.warn('Graft: the dataset could not be stored on this device.', e);
    }
  }

  async openBytes(input: ArrayBuffer | Uint8Array | string, name: string): Promise<DatasetSummary> {
    const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input instanceof Uint8Array ? input : new Uint8Array(input);
    const fileName = name.trim() || 'dataset.jsonl';
    const d = buildDataset(newId(), fileName, bytes, await this.rememberedMapping(fileName, bytes));
    // One dataset in memory at a time (the others stay stored, and come back with restore()).
    this.open.clear();
    this.open.set(d.id, d);
    await this.save(d, 'file');
    return summarize(d);
  }

  /** The mapping chosen earlier for the same file (same name and bytes) on this device, if any. */
  private async rememberedMapping(name: string, bytes: Uint8Array): Promise<ColumnMapping | null> {
    const dbp = this.db();
    if (!dbp) return null;
    try {
      const all = (await (await dbp).getAll(FILES)) as StoredFile[];
      const same = all
        .filter((f) => f.mapping && f.name === name && f.bytes.length === bytes.length && f.bytes.every((b, i) => b === bytes[i]))
        .sort((a, b) => b.savedAt - a.savedAt)[0];
      if (!same?.mapping) return null;
      mappingRewriter(same.mapping, name); // still a valid mapping
      return same.mapping;
    } catch {
      return null;
    }
  }

  /** Reads the dataset again through a column mapping (null: none), and remembers it with the file. */
  async setMapping(id: string, mapping: ColumnMapping | null): Promise<DatasetSummary> {
    const d = await this.get(id);
    applyMapping(d, mapping);
    await this.save(d, 'mapping');
    return summarize(d);
  }

  async openUrl(url: string, name: string): Promise<DatasetSummary> {
    let res: Response;
    try {
      res = await fetch(url);
    } catch (cause) {
      throw new HubError('network', `${name} could not be fetched (${String(cause)}). Check the connection and try again.`, { cause });
    }
    if (!res.ok) throw new HubError(res.status === 404 ? 'not-found' : 'bad-response', `${name} could not be fetched: the server answered ${res.status}.`, { status: res.status });
    return this.openBytes(await res.arrayBuffer(), name);
  }

  async restore(id: string): Promise<DatasetSummary | undefined> {
    const have = this.open.get(id);
    if (have) return summarize(have);
    const dbp = this.db();
    if (!dbp) return undefined;
    const db = await dbp;
    const stored = (await db.get(FILES, id)) as StoredFile | undefined;
    if (!stored) return undefined;
    const edits = ((await db.get(EDITS, id)) as StoredEdits | undefined)?.edits ?? [];
    let d: Dataset;
    try {
      d = buildDataset(stored.id, stored.name, stored.bytes, stored.mapping ?? null);
    } catch {
      d = buildDataset(stored.id, stored.name, stored.bytes); // a mapping this version no longer accepts
    }
    for (const [row, edit] of edits) {
      const r = d.rows[row];
      if (!r || typeof edit !== 'object' || edit === null) continue;
      replay(r, edit, d.mapper);
      d.edits.set(row, edit);
    }
    this.open.clear();
    this.open.set(d.id, d);
    return summarize(d);
  }

  async get(id: string): Promise<Dataset> {
    if (!this.open.has(id)) await this.restore(id);
    const d = this.open.get(id);
    if (!d) throw new EncodeError('This dataset is no longer on this device. Open the file again.');
    return d;
  }

  async summary(id: string): Promise<DatasetSummary> {
    return summarize(await this.get(id));
  }

  async rows(id: string, q: RowQuery): Promise<RowPage> {
    const d = await this.get(id);
    const match: number[] = [];
    d.rows.forEach((r, i) => {
      if (q.only === 'problems' ? !r.removed && r.problem !== undefined : true) match.push(i);
    });
    const offset = Math.max(0, Math.floor(q.offset));
    const limit = Math.max(0, Math.min(500, Math.floor(q.limit)));
    return { rows: match.slice(offset, offset + limit).map((i) => viewOf(d.rows[i]!, i)), total: match.length };
  }

  async update(id: string, index: number, edit: RowEdit): Promise<RowUpdate> {
    const d = await this.get(id);
    const row = d.rows[index];
    if (!row) throw new EncodeError(`There is no row ${index + 1} in ${d.name}.`);
    applyEdit(row, edit, d.mapper);
    const before = d.edits.get(index) ?? {};
    d.edits.set(index, edit.kind === 'removed' ? { ...before, removed: true } : { fields: edit, removed: false });
    await this.save(d, 'edits');
    return { row: viewOf(row, index), summary: summarize(d) };
  }

  async jsonl(id: string): Promise<string> {
    const d = await this.get(id);
    return d.rows
      .filter((r) => !r.removed)
      .map((r) => (r.raw === undefined ? (r.text ?? '') : JSON.stringify(r.raw)))
      .join('\n')
      .concat('\n');
  }

  /** The records that can be trained on, edits applied, in file order (for the trainer). */
  async conversations(id: string): Promise<{ name: string; records: Conversation[] }> {
    const d = await this.get(id);
    return { name: d.name, records: d.rows.filter((r) => !r.removed && r.conversation).map((r) => r.conversation!) };
  }

  async row(id: string, index: number): Promise<{ d: Dataset; row: Row }> {
    const d = await this.get(id);
    const row = d.rows[index];
    if (!row || row.removed) throw new EncodeError(`There is no row ${index + 1} in ${d.name}.`);
    return { d, row };
  }
}

/** The worker's one dataset service (in IndexedDB where there is one). */
export const datasets = new DatasetService();
