// Model store in a cache folder, for the Node CLI. Node-only (imports node:fs); browsers use store-idb.ts. The
// folder layout: docs/hub.md ("A cache folder").
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, statfs, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ModelRow } from '../storage';
import { HubError, isQuotaError, quotaError } from './errors';
import {
  buildCachedModel,
  checkFilePath,
  checkRepo,
  checkRevision,
  concatChunks,
  type CachedFile,
  type CachedModel,
  type FileWriter,
  type ModelStore,
  type PlannedFile,
  type ReadOptions,
  type StorageEstimateInfo,
} from './store';

const MANIFEST = 'graft-model.json';
const PARTIAL = '.partial';

/** graft-model.json: the catalogue entry IndexedDB keeps as a ModelRow (src/storage/schema.ts), and the files' expectations. */
interface Manifest extends Omit<ModelRow, 'set'> {
  version: 1;
  files: Record<string, { expectedSize?: number; sha256?: string }>;
}

/** The cache folder: $GRAFT_CACHE when set, else ~/.cache/graft/models. Pass process.env. */
export function defaultCacheDir(env: Record<string, string | undefined>): string {
  return env.GRAFT_CACHE || join(homedir(), '.cache', 'graft', 'models');
}

/**
 * Hub settings for the CLI from the environment (pass process.env): HF_ENDPOINT (default huggingface.co),
 * HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN) for gated models, GRAFT_CACHE for the cache folder.
 */
export function nodeHubSettings(env: Record<string, string | undefined>): { endpoint?: string; token?: string; cacheDir: string } {
  const out: { endpoint?: string; token?: string; cacheDir: string } = { cacheDir: defaultCacheDir(env) };
  if (env.HF_ENDPOINT) out.endpoint = env.HF_ENDPOINT;
  const token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (token) out.token = token;
  return out;
}

export interface NodeFolderStoreOptions {
  /** The cache folder (see defaultCacheDir). */
  dir: string;
  /** Bytes per chunk when reading files back (default 8 MiB). */
  chunkSize?: number;
}

export class NodeFolderStore implements ModelStore {
  readonly dir: string;
  readonly chunkSize: number;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: NodeFolderStoreOptions) {
    this.dir = options.dir;
    this.chunkSize = options.chunkSize ?? 8 * 1024 * 1024;
  }

  /** The folder holding a model's files (complete ones under their own names). */
  filesDir(repo: string, revision: string): string {
    return join(this.modelDir(repo, revision), 'files');
  }

  private modelDir(repo: string, revision: string): string {
    checkRepo(repo);
    checkRevision(revision);
    return join(this.dir, `models--${repo.replace('/', '--')}`, encodeURIComponent(revision));
  }

  private filePath(repo: string, revision: string, path: string): string {
    checkFilePath(path);
    return join(this.filesDir(repo, revision), ...path.split('/'));
  }

  /** Manifest updates run one at a time. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async readManifest(repo: string, revision: string): Promise<Manifest | undefined> {
    try {
      return JSON.parse(await readFile(join(this.modelDir(repo, revision), MANIFEST), 'utf8')) as Manifest;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  private async writeManifest(m: Manifest): Promise<void> {
    const dir = this.modelDir(m.repo, m.revision);
    await guard(`the catalogue entry of ${m.repo}`, async () => {
      await mkdir(dir, { recursive: true });
      const tmp = join(dir, `${MANIFEST}.${Math.random().toString(36).slice(2)}.tmp`);
      await writeFile(tmp, JSON.stringify(m, null, 2));
      await rename(tmp, join(dir, MANIFEST));
    });
  }

  private updateManifest(repo: string, revision: string, fn: (m: Manifest) => void): Promise<void> {
    return this.locked(async () => {
      const now = Date.now();
      const m = (await this.readManifest(repo, revision)) ?? {
        version: 1,
        repo,
        revision,
        createdAt: now,
        updatedAt: now,
        complete: false,
        files: {},
      };
      fn(m);
      m.updatedAt = now;
      await this.writeManifest(m);
    });
  }

  async listModels(): Promise<CachedModel[]> {
    const out: CachedModel[] = [];
    for (const repoDir of await readdirOrEmpty(this.dir)) {
      if (!repoDir.startsWith('models--')) continue;
      for (const revDir of await readdirOrEmpty(join(this.dir, repoDir))) {
        let m: Manifest;
        try {
          m = JSON.parse(await readFile(join(this.dir, repoDir, revDir, MANIFEST), 'utf8')) as Manifest;
        } catch {
          continue;
        }
        const model = await this.getModel(m.repo, m.revision);
        if (model) out.push(model);
      }
    }
    return out;
  }

  async getModel(repo: string, revision: string): Promise<CachedModel | undefined> {
    const m = await this.readManifest(repo, revision);
    if (!m) return undefined;
    const files: CachedFile[] = [];
    for (const [path, exp] of Object.entries(m.files)) {
      const full = this.filePath(repo, revision, path);
      const done = await sizeOf(full);
      const f: CachedFile = { path, size: done ?? (await sizeOf(full + PARTIAL)) ?? 0, complete: done !== undefined };
      if (exp.expectedSize !== undefined) f.expectedSize = exp.expectedSize;
      if (exp.sha256 !== undefined) f.sha256 = exp.sha256;
      files.push(f);
    }
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return buildCachedModel(m, files);
  }

  async planFiles(repo: string, revision: string, planned: PlannedFile[]): Promise<void> {
    planned.forEach((f) => checkFilePath(f.path));
    await this.updateManifest(repo, revision, (m) => {
      m.complete = false;
      delete m.downloadedAt;
      for (const p of planned) {
        const e = (m.files[p.path] ??= {});
        if (p.expectedSize !== undefined) e.expectedSize = p.expectedSize;
        if (p.sha256 !== undefined) e.sha256 = p.sha256;
      }
    });
  }

  async markComplete(repo: string, revision: string): Promise<void> {
    const model = await this.getModel(repo, revision);
    const partial = model?.files.filter((f) => !f.complete).map((f) => f.path) ?? [];
    if (!model || partial.length) {
      throw new Error(`markComplete: ${repo}@${revision} ${model ? `has partial files: ${partial.join(', ')}` : 'is not stored'}`);
    }
    await this.updateManifest(repo, revision, (m) => {
      m.complete = true;
      m.downloadedAt = Date.now();
    });
  }

  async deleteModel(repo: string, revision: string): Promise<void> {
    const dir = this.modelDir(repo, revision);
    await this.locked(async () => {
      await rm(dir, { recursive: true, force: true });
      await rmdir(dirname(dir)).catch(() => undefined); // the repo folder, when no other revision is left
    });
  }

  async deleteFile(repo: string, revision: string, path: string, options: { forget?: boolean } = {}): Promise<void> {
    const full = this.filePath(repo, revision, path);
    await rm(full, { force: true });
    await rm(full + PARTIAL, { force: true });
    if (options.forget && (await this.readManifest(repo, revision))) {
      await this.updateManifest(repo, revision, (m) => {
        delete m.files[path];
      });
    }
  }

  async openWriter(repo: string, revision: string, path: string, options: { resume: boolean }): Promise<FileWriter> {
    const full = this.filePath(repo, revision, path);
    await this.updateManifest(repo, revision, (m) => {
      m.complete = false;
      delete m.downloadedAt;
      m.files[path] ??= {};
    });
    return guard(path, async () => {
      await mkdir(dirname(full), { recursive: true });
      if ((await sizeOf(full)) !== undefined) {
        if (options.resume) await rename(full, full + PARTIAL);
        else await rm(full, { force: true });
      }
      const fh = await open(full + PARTIAL, options.resume ? 'a' : 'w');
      const offset = options.resume ? (await fh.stat()).size : 0;
      return new NodeWriter(fh, full, path, offset);
    });
  }

  async *readChunks(repo: string, revision: string, path: string, options: ReadOptions = {}): AsyncIterable<Uint8Array> {
    const { file, size } = await this.readable(repo, revision, path, options);
    const limit = Math.min(size, options.end ?? Infinity);
    const fh = await open(file, 'r');
    try {
      let at = 0;
      while (at < limit) {
        const buf = new Uint8Array(Math.min(this.chunkSize, limit - at));
        let got = 0;
        while (got < buf.length) {
          const { bytesRead } = await fh.read(buf, got, buf.length - got, at + got);
          if (bytesRead === 0) throw new Error(`NodeFolderStore: ${file} shrank while being read`);
          got += bytesRead;
        }
        at += got;
        yield buf;
      }
    } finally {
      await fh.close();
    }
  }

  async readFile(repo: string, revision: string, path: string, options: ReadOptions = {}): Promise<Uint8Array> {
    const { size } = await this.readable(repo, revision, path, options);
    return concatChunks(this.readChunks(repo, revision, path, options), Math.min(size, options.end ?? Infinity));
  }

  private async readable(repo: string, revision: string, path: string, options: ReadOptions): Promise<{ file: string; size: number }> {
    const full = this.filePath(repo, revision, path);
    const done = await sizeOf(full);
    if (done !== undefined) return { file: full, size: done };
    const partial = await sizeOf(full + PARTIAL);
    if (partial === undefined) {
      throw new HubError('not-found', `${path} of ${repo} is not stored on this device. Download the model first.`, { file: path });
    }
    if (!options.allowPartial) {
      throw new HubError('not-found', `${path} of ${repo} is only partly downloaded. Resume the download before using the model.`, {
        file: path,
      });
    }
    return { file: full + PARTIAL, size: partial };
  }

  async estimate(): Promise<StorageEstimateInfo> {
    let dir = this.dir;
    for (;;) {
      try {
        const s = await statfs(dir);
        return { available: Number(s.bavail) * Number(s.bsize) };
      } catch (e) {
        const parent = dirname(dir);
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || parent === dir) return {};
        dir = parent;
      }
    }
  }

  async persist(): Promise<boolean> {
    return true;
  }
}

class NodeWriter implements FileWriter {
  private closed = false;
  constructor(
    private readonly fh: FileHandle,
    private readonly full: string,
    private readonly path: string,
    public offset: number,
  ) {}

  async append(data: Uint8Array): Promise<void> {
    if (this.closed) throw new Error(`NodeWriter: append after close (${this.path})`);
    await guard(this.path, async () => {
      let at = 0;
      while (at < data.length) {
        const { bytesWritten } = await this.fh.write(data, at, data.length - at);
        at += bytesWritten;
        this.offset += bytesWritten;
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  async complete(): Promise<void> {
    if (this.closed) throw new Error(`NodeWriter: complete after close (${this.path})`);
    this.closed = true;
    await guard(this.path, async () => {
      try {
        await this.fh.sync();
      } finally {
        await this.fh.close();
      }
      await rename(this.full + PARTIAL, this.full);
    });
  }
}

async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isQuotaError(e)) throw quotaError(what, e);
    throw e;
  }
}

async function sizeOf(p: string): Promise<number | undefined> {
  try {
    const s = await stat(p);
    return s.isFile() || s.isCharacterDevice() ? s.size : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
