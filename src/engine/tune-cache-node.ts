// The autotuner's cache in Node (the `graft` command, the benchmarks): one JSON file in the cache folder
// (matmul-plans.json beside the models, GRAFT_CACHE), read once, written whole (to a temporary name, then
// renamed) after each new entry. Node-only (imports node:fs), as adapter-node.ts; the browser keeps its plans in
// IndexedDB (the graft database's matmulPlans store).
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TuneCache, TuneEntry } from './autotune';

export const TUNE_CACHE_FILE = 'matmul-plans.json';

export class NodeTuneCache implements TuneCache {
  private map: Map<string, TuneEntry> | undefined;
  readonly file: string;

  /** `dir`: the cache folder (the models' folder: hub/store-node.ts's defaultCacheDir). */
  constructor(dir: string) {
    this.file = join(dir, TUNE_CACHE_FILE);
  }

  private load(): Map<string, TuneEntry> {
    if (this.map) return this.map;
    try {
      const raw = JSON.parse(readFileSync(this.file, 'utf8')) as { version?: number; plans?: Record<string, TuneEntry> };
      this.map = new Map(raw.version === 1 && raw.plans ? Object.entries(raw.plans) : []);
    } catch {
      // none yet, or unreadable: start empty (the file is rewritten whole on the next put)
      this.map = new Map();
    }
    return this.map;
  }

  async get(key: string): Promise<TuneEntry | undefined> {
    return this.load().get(key);
  }

  async put(key: string, entry: TuneEntry): Promise<void> {
    const map = this.load();
    map.set(key, entry);
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: 1, plans: Object.fromEntries(map) }, null, 1) + '\n');
    renameSync(tmp, this.file);
  }

  async entries(): Promise<[string, TuneEntry][]> {
    return [...this.load()];
  }
}
