// Hugging Face hub client: downloads a model's (or an adapter's) files into a ModelStore with progress, resume and
// integrity checks, and single hub files for datasets (fetchHubFile). Runs in browsers, workers and Node; the
// caller passes the endpoint, the token and the store. What is fetched, checked and resumed: docs/hub.md.
import { formatBytes } from '../engine/errors';
import { HubError } from './errors';
import { Sha256 } from './sha256';
import { checkFilePath, checkRepo, checkRevision, type CachedModel, type FileWriter, type ModelStore, type PlannedFile } from './store';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

/** Files every model needs, then optional ones, then the weights. */
export const REQUIRED_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;
export const OPTIONAL_FILES = ['generation_config.json', 'chat_template.jinja'] as const;
export const SINGLE_WEIGHTS = 'model.safetensors';
export const WEIGHTS_INDEX = 'model.safetensors.index.json';
/** What `kind: 'adapter'` downloads (both required). */
export const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'] as const;

export interface DownloadProgress {
  /**
   * 'plan': sizes and hashes are being collected; 'download': bytes arrive; 'retry': a network failure, the
   * file resumes after a pause; 'restart': the file starts again from 0 (server ignored Range, or integrity
   * failure), so `bytes` and `fileBytes` go down; 'verify': the file is being checked; 'done': all complete.
   */
  phase: 'plan' | 'download' | 'retry' | 'restart' | 'verify' | 'done';
  /** The file concerned ('' for the final 'done' event). */
  file: string;
  /** Bytes stored for the whole model, including what an earlier, interrupted download stored. */
  bytes: number;
  /** Total bytes of the model; undefined while some file's size is unknown. */
  total: number | undefined;
  fileBytes: number;
  fileTotal: number | undefined;
  /** Download speed over the last few seconds (bytes fetched in this call only). */
  bytesPerSecond: number;
  /** 'retry': why ("the server answered HTTP 500", "the connection was lost", "no data arrived for 60 s"). */
  reason?: string;
}

export interface HubOptions {
  /** Default https://huggingface.co. In Node, pass process.env.HF_ENDPOINT. */
  endpoint?: string;
  /** Default 'main'. A branch, tag or commit. */
  revision?: string;
  /** Access token for gated or private models (sent as Authorization: Bearer, only to the endpoint's origin). */
  token?: string;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

export interface DownloadOptions extends HubOptions {
  onProgress?: (p: DownloadProgress) => void;
  /** Network retries per file before failing with 'network' (default 3). */
  retries?: number;
  /** First retry pause in ms, doubled each time (default 500). */
  retryDelayMs?: number;
  /** A request that delivers no byte for this long is treated as a network failure (default 60 000 ms). */
  idleTimeoutMs?: number;
  /** Minimum ms between two 'download' progress events of one file (default 100). Phase changes always report. */
  progressIntervalMs?: number;
  /** Ask the tree API for sizes and hashes first (default true). */
  useTreeApi?: boolean;
  /** Download again even if the model is stored complete (default false: a complete model is returned as is, offline). */
  force?: boolean;
  /** 'adapter': the repository is an adapter, download ADAPTER_FILES instead of a model (default 'model'). */
  kind?: 'model' | 'adapter';
}

/** True for a host name that is this computer: localhost (and *.localhost), 127.0.0.0/8, [::1]. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::1' || h === '0:0:0:0:0:0:0:1';
}

/**
 * Why an endpoint cannot be used, or undefined: it must be an https:// address; plain http:// only for a hub
 * on this computer (anyone on the way could read the token and change the weights of a plain-http download).
 */
export function endpointProblem(endpoint: string): string | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `"${endpoint}" is not a web address; give the hub's address, for example ${DEFAULT_ENDPOINT}`;
  }
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    return isLoopbackHost(url.hostname)
      ? undefined
      : `${url.origin} uses plain http, which anyone on the network can read and change; use https:// (plain http is only for a hub on this computer: localhost, 127.0.0.1, [::1])`;
  }
  return `the hub address must start with https:// (or http:// for a hub on this computer), not ${url.protocol}//`;
}

/** {endpoint}/{repo}/resolve/{revision}/{file}, with the revision and each path segment URL-encoded. */
export function resolveUrl(repo: string, file: string, options: { endpoint?: string; revision?: string } = {}): string {
  const endpoint = (options.endpoint || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const revision = options.revision ?? DEFAULT_REVISION;
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Downloads (or resumes) a model into `store` and returns its catalogue entry, complete.
 * Throws HubError: 'not-found', 'unauthorized', 'network', 'integrity', 'quota', 'aborted', 'bad-response'.
 */
export async function downloadModel(repo: string, store: ModelStore, options: DownloadOptions = {}): Promise<CachedModel> {
  return new Download(repo, store, options).run();
}

/** Fetches one file from the hub into memory (small files: configs, templates). */
export async function fetchHubFile(repo: string, file: string, options: HubOptions = {}): Promise<Uint8Array> {
  checkRepo(repo);
  checkFilePath(file);
  const d = new Download(repo, undefined as unknown as ModelStore, { ...options, retries: 0 });
  const { res, watchdog } = await d.request('GET', file, undefined);
  try {
    if (!res.ok) {
      await discard(res);
      d.checkStatus(res, file, true);
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    // Without Content-Length a body cut short looks complete: what can be checked by its content is checked.
    if (res.headers.get('content-length') === null && !isEncoded(res)) {
      const why = await incompleteContent(file, bytes);
      if (why) {
        throw new HubError('integrity', `${file} of ${repo} arrived without a size, and ${why}; it was not used. Try again, or use an endpoint that sends Content-Length.`, { file });
      }
    }
    return bytes;
  } catch (e) {
    throw d.transportError(e, file, watchdog);
  } finally {
    watchdog.stop();
  }
}

// --------------------------------------------------------------------------------------------------------

interface RemoteInfo {
  size?: number;
  sha256?: string;
}

interface FileState {
  path: string;
  required: boolean;
  expectedSize?: number;
  sha256?: string;
  /** Bytes held for this file now (for progress). */
  bytes: number;
  done: boolean;
}

/** An integrity failure the client may retry once; internal. */
class IntegrityFailure extends Error {}

const retryable = new WeakSet<object>();

class Download {
  private readonly endpoint: string;
  private readonly origin: string;
  private readonly revision: string;
  private readonly token: string | undefined;
  private readonly fetchFn: typeof fetch;
  private readonly signal: AbortSignal | undefined;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly idleTimeoutMs: number;
  private readonly interval: number;
  /** False once the runtime showed that it hides redirect responses (browsers). */
  private manualRedirects = true;
  private readonly files = new Map<string, FileState>();
  private readonly samples: { t: number; n: number }[] = [];
  private fetched = 0;
  private lastEmit = new Map<string, number>();

  constructor(
    private readonly repo: string,
    private readonly store: ModelStore,
    private readonly options: DownloadOptions,
  ) {
    this.endpoint = (options.endpoint || DEFAULT_ENDPOINT).replace(/\/+$/, '');
    const problem = endpointProblem(this.endpoint);
    if (problem) throw new HubError('bad-endpoint', `The hub address cannot be used: ${problem}.`);
    this.origin = new URL(this.endpoint).origin;
    this.revision = options.revision ?? DEFAULT_REVISION;
    this.token = options.token || undefined;
    const f = options.fetch ?? globalThis.fetch;
    if (!f) throw new Error('No fetch() in this runtime.');
    this.fetchFn = f.bind(globalThis);
    this.signal = options.signal;
    this.retries = options.retries ?? 3;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.interval = options.progressIntervalMs ?? 100;
  }

  async run(): Promise<CachedModel> {
    const { repo, revision, store } = this;
    checkRepo(repo);
    checkRevision(revision);
    this.throwIfAborted();
    const existing = await store.getModel(repo, revision);
    if (existing?.complete && !this.options.force) {
      this.emitDone(existing.totalBytes);
      return existing;
    }
    const stored = new Map(existing?.files.map((f) => [f.path, f]) ?? []);

    // Plan: what exists, how large, which hash.
    const tree = this.options.useTreeApi === false ? undefined : await this.fetchTree();
    const planned: FileState[] = [];
    const add = (path: string, required: boolean, info: RemoteInfo) => {
      const s = stored.get(path);
      const f: FileState = { path, required, bytes: s?.size ?? 0, done: !!s?.complete && !this.options.force };
      if (info.size !== undefined) f.expectedSize = info.size;
      if (info.sha256 !== undefined) f.sha256 = info.sha256;
      planned.push(f);
      this.files.set(path, f);
    };
    const adapter = this.options.kind === 'adapter';
    const requiredFiles: readonly string[] = adapter ? ADAPTER_FILES : REQUIRED_FILES;
    for (const path of adapter ? ADAPTER_FILES : [...REQUIRED_FILES, ...OPTIONAL_FILES]) {
      const required = requiredFiles.includes(path);
      const info = await this.probe(path, required, tree);
      if (info) add(path, required, info);
    }
    let weights = adapter ? undefined : await this.probe(SINGLE_WEIGHTS, false, tree);
    if (adapter) {
      // The adapter's weights were planned with its config above.
    } else if (weights) {
      add(SINGLE_WEIGHTS, true, weights);
    } else {
      const index = await this.probe(WEIGHTS_INDEX, false, tree);
      if (!index) {
        throw new HubError(
          'not-found',
          `${repo} (revision ${revision}) has neither ${SINGLE_WEIGHTS} nor ${WEIGHTS_INDEX} on ${this.endpoint}. ` +
            'Graft reads weights in safetensors format only; pick a model that has them.',
          { file: SINGLE_WEIGHTS, status: 404 },
        );
      }
      add(WEIGHTS_INDEX, true, index);
      await this.reconcile(planned.slice(-1), stored);
      stored.delete(WEIGHTS_INDEX);
      await store.planFiles(repo, revision, planned.slice(-1).map(toPlanned));
      const idx = this.files.get(WEIGHTS_INDEX)!;
      if (!idx.done) await this.downloadFile(idx);
      for (const shard of parseIndex(await store.readFile(repo, revision, WEIGHTS_INDEX), repo)) {
        weights = await this.probe(shard, true, tree);
        add(shard, true, weights!);
      }
    }
    await this.reconcile(planned, stored);
    await store.planFiles(repo, revision, planned.map(toPlanned));

    // Space: fail early when what is left to fetch cannot fit.
    let needed = 0;
    for (const f of planned) if (!f.done && f.expectedSize !== undefined) needed += Math.max(0, f.expectedSize - f.bytes);
    const { available } = await store.estimate();
    if (available !== undefined && needed > available) {
      throw new HubError(
        'quota',
        `${repo} needs ${formatBytes(needed)} more storage but only ${formatBytes(available)} is free. ` +
          'Delete models you no longer need (or free disk space), or pick a smaller model.',
      );
    }

    for (const f of planned) {
      if (f.done) continue;
      try {
        await this.downloadFile(f);
      } catch (e) {
        if (!f.required && e instanceof HubError && e.code === 'not-found') {
          // An optional file that the listing announced but the server does not have: leave it out.
          await store.deleteFile(repo, revision, f.path, { forget: true });
          this.files.delete(f.path);
          continue;
        }
        throw e;
      }
    }
    // Files an earlier download planned that this one does not (the repository changed): forget them.
    for (const f of (await store.getModel(repo, revision))?.files ?? []) {
      if (!this.files.has(f.path)) await store.deleteFile(repo, revision, f.path, { forget: true });
    }
    await store.markComplete(repo, revision);
    const model = (await store.getModel(repo, revision))!;
    this.emitDone(model.totalBytes);
    return model;
  }

  /** Files whose stored expectations differ from what the hub says now changed upstream: drop their bytes. */
  private async reconcile(planned: FileState[], stored: Map<string, { sha256?: string; expectedSize?: number; size: number; complete: boolean }>) {
    for (const f of planned) {
      const s = stored.get(f.path);
      if (!s || s.size === 0) continue;
      const have = s.complete ? s.size : s.expectedSize;
      const changed =
        (f.sha256 !== undefined && s.sha256 !== undefined && f.sha256 !== s.sha256) ||
        (f.expectedSize !== undefined && have !== undefined && f.expectedSize !== have);
      if (changed) {
        await this.store.deleteFile(this.repo, this.revision, f.path);
        f.bytes = 0;
        f.done = false;
      }
    }
  }

  // Planning ---------------------------------------------------------------------------------------------

  /** Sizes and LFS hashes from the tree API, or undefined when the endpoint has none (errors are ignored). */
  private async fetchTree(): Promise<Map<string, RemoteInfo> | undefined> {
    const url = `${this.endpoint}/api/models/${this.repo}/tree/${encodeURIComponent(this.revision)}`;
    try {
      const { res, watchdog } = await this.requestUrl('GET', url, undefined, false);
      let list: unknown;
      try {
        if (!res.ok) {
          await discard(res);
          return undefined;
        }
        list = await res.json();
      } finally {
        watchdog.stop();
      }
      if (!Array.isArray(list)) return undefined;
      const out = new Map<string, RemoteInfo>();
      for (const e of list as { type?: unknown; path?: unknown; size?: unknown; lfs?: { oid?: unknown; size?: unknown } }[]) {
        if (e?.type !== 'file' || typeof e.path !== 'string') continue;
        const info: RemoteInfo = {};
        const size = e.lfs?.size ?? e.size;
        if (typeof size === 'number' && Number.isSafeInteger(size) && size >= 0) info.size = size;
        const oid = e.lfs?.oid;
        if (typeof oid === 'string' && /^[0-9a-f]{64}$/i.test(oid)) info.sha256 = oid.toLowerCase();
        out.set(e.path, info);
      }
      return out;
    } catch (e) {
      if (this.signal?.aborted) throw this.abortedError();
      return undefined;
    }
  }

  /** What the hub says about a file, or undefined when it does not exist (404) and is not required. */
  private async probe(path: string, required: boolean, tree: Map<string, RemoteInfo> | undefined): Promise<RemoteInfo | undefined> {
    checkFilePath(path);
    this.emit(path, 'plan', true);
    const listed = tree?.get(path);
    if (listed && listed.size !== undefined) return listed;
    if (tree && !listed && !required) return undefined;
    return this.withRetries(path, async () => {
      const { res, hops, watchdog } = await this.request('HEAD', path, undefined, true);
      watchdog.stop();
      await discard(res);
      if (res.status === 404 || res.status === 410) {
        if (!required) return undefined;
        throw this.notFound(path, res.status);
      }
      // A redirect answered by the hub itself with X-Linked-Size (we stopped there) counts as found.
      if (!(res.ok || (isRedirect(res.status) && res.headers.has('x-linked-size')))) this.checkStatus(res, path, false);
      return { ...listed, ...infoFromHeaders(hops, res, 'full') };
    });
  }

  // Downloading ------------------------------------------------------------------------------------------

  /** Downloads one file, with one fresh retry after an integrity failure. */
  private async downloadFile(f: FileState): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.fetchInto(f, attempt === 1 && !this.options.force);
        return;
      } catch (e) {
        if (!(e instanceof IntegrityFailure)) throw e;
        await this.store.deleteFile(this.repo, this.revision, f.path);
        f.bytes = 0;
        if (attempt >= 2) {
          throw new HubError(
            'integrity',
            `${f.path} of ${this.repo} failed its integrity check twice (${e.message}). The damaged file was deleted and ` +
              'not used. The copy on the server or a proxy on the way may be damaged; try again later or from another network.',
            { file: f.path },
          );
        }
        this.emit(f.path, 'restart', true);
      }
    }
  }

  private async fetchInto(f: FileState, mayResume: boolean): Promise<void> {
    const { store, repo, revision } = this;
    let writer: FileWriter = await store.openWriter(repo, revision, f.path, { resume: mayResume });
    let hasher = new Sha256();
    /** False when stored bytes from an earlier call were not hashed yet (done lazily, only if a hash is known). */
    let hashed = writer.offset === 0;
    let completed = false;
    f.bytes = writer.offset;
    const restart = async () => {
      await writer.close();
      writer = await store.openWriter(repo, revision, f.path, { resume: false });
      hasher = new Sha256();
      hashed = true;
      f.bytes = 0;
      this.emit(f.path, 'restart', true);
    };
    try {
      let failures = 0;
      for (;;) {
        if (f.expectedSize !== undefined && writer.offset === f.expectedSize) break;
        if (f.expectedSize !== undefined && writer.offset > f.expectedSize) await restart();
        try {
          const finished = await this.transfer(f, () => writer, restart, (chunk) => {
            if (hashed) hasher.update(chunk);
          });
          if (finished) break;
        } catch (e) {
          if (!retryable.has(e as object) || failures >= this.retries) throw e;
          failures++;
          this.emit(f.path, 'retry', true, retryReason(e));
          await this.sleep(this.retryDelayMs * 2 ** (failures - 1));
        }
      }

      // Integrity.
      this.emit(f.path, 'verify', true);
      if (f.expectedSize !== undefined && writer.offset !== f.expectedSize) {
        throw new IntegrityFailure(`${writer.offset} bytes received, the hub announced ${f.expectedSize}`);
      }
      if (f.sha256 !== undefined) {
        if (!hashed) {
          // Resumed from an earlier call: hash the whole stored file now.
          await writer.close();
          hasher = new Sha256();
          for await (const c of store.readChunks(repo, revision, f.path, { allowPartial: true })) hasher.update(c);
          writer = await store.openWriter(repo, revision, f.path, { resume: true });
        }
        const got = hasher.hex();
        if (got !== f.sha256) throw new IntegrityFailure(`sha256 ${got.slice(0, 12)}… does not match ${f.sha256.slice(0, 12)}…`);
      }
      if (f.expectedSize === undefined && f.sha256 === undefined) {
        // Neither a size nor a hash from the hub: a transfer cut short may look complete (a body that ends when
        // the connection closes). The file is complete only if its content proves it.
        await writer.close();
        await this.verifyContent(f.path, writer.offset);
        writer = await store.openWriter(repo, revision, f.path, { resume: true });
      }
      if (f.expectedSize === undefined) f.expectedSize = writer.offset;
      await writer.complete();
      completed = true;
      f.bytes = writer.offset;
      f.done = true;
      this.emit(f.path, 'download', true);
    } finally {
      if (!completed) await writer.close().catch(() => undefined);
    }
  }

  /**
   * Checks a stored file whose size and hash the hub did not give, by what its content must be: a safetensors
   * file's header says how long the file is; a JSON file must parse. Other files cannot be checked, so they are
   * refused (IntegrityFailure: deleted and fetched once more, then an integrity error naming the file).
   */
  private async verifyContent(path: string, size: number): Promise<void> {
    const { store, repo, revision } = this;
    const read = (end?: number) => store.readFile(repo, revision, path, { allowPartial: true, ...(end !== undefined ? { end } : {}) });
    if (/\.safetensors$/i.test(path)) {
      const want = await safetensorsLength(await read(Math.min(size, 8)), async (n) => read(Math.min(size, 8 + n)));
      if (want === undefined) throw new IntegrityFailure(`the server sent no size and the ${size} bytes received are not a complete safetensors file`);
      if (want !== size) throw new IntegrityFailure(`the server sent no size, and the safetensors header describes ${want} bytes where ${size} arrived`);
      return;
    }
    if (/\.json$/i.test(path)) {
      try {
        JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await read()));
      } catch (e) {
        throw new IntegrityFailure(`the server sent no size, and the ${size} bytes received are not complete JSON (${e instanceof Error ? e.message : String(e)})`);
      }
      return;
    }
    throw new IntegrityFailure(`the server sent neither its size nor a hash, so the ${size} bytes received cannot be checked; use an endpoint that sends Content-Length or X-Linked-Size`);
  }

  /**
   * One GET of the rest of a file into the writer. Returns true when the file's bytes are all there, false
   * when the caller should ask again (the request restarted the file). Throws retryable network errors.
   */
  private async transfer(
    f: FileState,
    writer: () => FileWriter,
    restart: () => Promise<void>,
    hash: (chunk: Uint8Array) => void,
  ): Promise<boolean> {
    const offset = writer().offset;
    const { res, hops, watchdog } = await this.request('GET', f.path, offset > 0 ? offset : undefined, false);
    try {
      if (res.status === 416) {
        await discard(res);
        await restart();
        return false;
      }
      if (res.status !== 200 && res.status !== 206) {
        await discard(res);
        this.checkStatus(res, f.path, true);
      }
      const partial = res.status === 206;
      const range = partial ? parseContentRange(res.headers.get('content-range')) : undefined;
      if (partial && (!range || range.start !== offset)) {
        // A range we did not ask for: start again from 0 without Range.
        await discard(res);
        await restart();
        return false;
      }
      // What the server says now: hub headers override, transfer sizes only fill gaps.
      const info = infoFromHeaders(hops, res, partial ? 'partial' : 'full');
      const linked = linkedInfo(hops, res);
      let changed = false;
      if (linked.sha256 !== undefined && linked.sha256 !== f.sha256) {
        changed = f.sha256 !== undefined;
        f.sha256 = linked.sha256;
      } else if (f.sha256 === undefined && info.sha256 !== undefined) f.sha256 = info.sha256;
      if (linked.size !== undefined && linked.size !== f.expectedSize) {
        changed ||= f.expectedSize !== undefined;
        f.expectedSize = linked.size;
      } else if (f.expectedSize === undefined && (range?.total ?? info.size) !== undefined) f.expectedSize = range?.total ?? info.size;
      if (linked.sha256 !== undefined || linked.size !== undefined || info.size !== undefined) {
        await this.store.planFiles(this.repo, this.revision, [toPlanned(f)]);
      }
      if ((!partial && offset > 0) || (changed && offset > 0)) {
        // The server ignored the Range (200), or the file changed upstream: restart cleanly from 0, reusing a 200 body.
        if (partial) {
          await discard(res);
          await restart();
          return false;
        }
        await restart();
      }

      const encoded = isEncoded(res);
      const transferLength = encoded ? undefined : numberHeader(res.headers.get('content-length'));
      let received = 0;
      const body = res.body;
      if (body) {
        const reader = body.getReader();
        let ended = false;
        try {
          for (;;) {
            let r: ReadableStreamReadResult<Uint8Array>;
            try {
              r = await reader.read();
            } catch (e) {
              throw this.transportError(e, f.path, watchdog);
            }
            if (r.done) {
              ended = true;
              break;
            }
            watchdog.kick();
            const chunk = r.value;
            const w = writer();
            if (f.expectedSize !== undefined && w.offset + chunk.length > f.expectedSize) {
              throw new IntegrityFailure(`the server sent more than the ${f.expectedSize} bytes the hub announced`);
            }
            await w.append(chunk);
            hash(chunk);
            received += chunk.length;
            this.fetched += chunk.length;
            f.bytes = w.offset;
            this.emit(f.path, 'download', false);
          }
        } finally {
          if (!ended) await reader.cancel().catch(() => undefined);
          reader.releaseLock();
        }
      }
      if (transferLength !== undefined && received < transferLength) {
        const err = new HubError('network', this.networkMessage(f.path, 'the connection closed before the file was complete'), {
          file: f.path,
        });
        retryable.add(err);
        throw err;
      }
      return true;
    } finally {
      watchdog.stop();
      if (!res.bodyUsed) await discard(res);
    }
  }

  // HTTP -------------------------------------------------------------------------------------------------

  /** A request for a repository file, following redirects. */
  async request(method: 'GET' | 'HEAD', path: string, rangeStart: number | undefined, stopAtLinked = false) {
    return this.requestUrl(method, resolveUrl(this.repo, path, { endpoint: this.endpoint, revision: this.revision }), rangeStart, stopAtLinked);
  }

  /**
   * Fetches `url`, following up to 10 redirects. Where the runtime shows redirect responses (Node), follows
   * them by hand, collecting their headers in `hops`, sending the token only to the endpoint's origin, and
   * (with stopAtLinked) stopping at a redirect that already carries X-Linked-Size.
   */
  private async requestUrl(method: 'GET' | 'HEAD', url: string, rangeStart: number | undefined, stopAtLinked: boolean) {
    const watchdog = new Watchdog(this.idleTimeoutMs, this.signal);
    const hops: Headers[] = [];
    let current = url;
    try {
      for (let hop = 0; hop <= 10; hop++) {
        const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
        if (rangeStart !== undefined) headers.Range = `bytes=${rangeStart}-`;
        if (this.token && new URL(current).origin === this.origin) headers.Authorization = `Bearer ${this.token}`;
        let res: Response;
        try {
          res = await this.fetchFn(current, {
            method,
            headers,
            redirect: this.manualRedirects ? 'manual' : 'follow',
            signal: watchdog.signal,
            cache: 'no-store',
          });
        } catch (e) {
          throw this.transportError(e, fileOf(current), watchdog);
        }
        if (res.type === 'opaqueredirect') {
          // A browser: redirect responses are hidden. Let the runtime follow them from here on.
          this.manualRedirects = false;
          hop--;
          continue;
        }
        const location = res.headers.get('location');
        if (this.manualRedirects && isRedirect(res.status) && location) {
          if (stopAtLinked && res.headers.has('x-linked-size')) return { res, hops, watchdog };
          hops.push(res.headers);
          await discard(res);
          current = new URL(location, current).href;
          continue;
        }
        watchdog.kick();
        return { res, hops, watchdog };
      }
    } catch (e) {
      watchdog.stop();
      throw e;
    }
    watchdog.stop();
    throw new HubError('bad-response', `${url} redirected more than 10 times. Check the endpoint setting.`);
  }

  /** Throws the HubError for a non-success status. */
  checkStatus(res: Response, path: string, required: boolean): void {
    if (res.ok) return;
    const s = res.status;
    if (s === 404 || s === 410) throw this.notFound(path, s, required);
    if (s === 401 || s === 403) {
      const where = `${this.endpoint}/${this.repo}`;
      throw new HubError(
        'unauthorized',
        this.token
          ? `The hub refused access to ${path} of ${this.repo} (HTTP ${s}) with the access token given. The model is gated or ` +
              `private: accept its licence on ${where} with the account the token belongs to, or use a token with read access.`
          : `${this.repo} is gated or private (the hub answered ${s} for ${path}). Accept its licence on ${where} and give ` +
              'Graft an access token (huggingface.co → Settings → Access Tokens; HF_TOKEN for the command line).',
        { file: path, status: s },
      );
    }
    const err = new HubError(
      'bad-response',
      `The hub answered HTTP ${s} ${res.statusText} for ${path} of ${this.repo}. ` +
        (s >= 500 || s === 429 ? 'The server is busy or failing; try again in a few minutes (the download resumes).' : 'Check the endpoint setting.'),
      { file: path, status: s },
    );
    if (s >= 500 || s === 429 || s === 408) retryable.add(err);
    throw err;
  }

  private get what(): string {
    return this.options.kind === 'adapter' ? 'adapter' : 'model';
  }

  private notFound(path: string, status: number, required = true): HubError {
    return new HubError(
      'not-found',
      `No such ${this.what} or file: ${path} of ${this.repo} (revision ${this.revision}) is not on ${this.endpoint} (HTTP ${status}). ` +
        (required ? `Check the ${this.what} id and revision; a private ${this.what} also answers this way without a token.` : ''),
      { file: path, status },
    );
  }

  transportError(e: unknown, path: string, watchdog?: Watchdog): HubError {
    if (this.signal?.aborted) return this.abortedError();
    if (e instanceof HubError) return e;
    const why = watchdog?.timedOut ? `no data arrived for ${Math.round(this.idleTimeoutMs / 1000)} s` : describe(e);
    const err = new HubError('network', this.networkMessage(path, why), { file: path, cause: e });
    retryable.add(err);
    return err;
  }

  private networkMessage(path: string, why: string): string {
    return `Network error while downloading ${path} of ${this.repo} (${why}). What was stored is kept: check the connection and start the download again; it resumes where it stopped.`;
  }

  private abortedError(): HubError {
    return new HubError(
      'aborted',
      `The download of ${this.repo} was cancelled. What was stored is kept; start the download again to resume it.`,
    );
  }

  private throwIfAborted(): void {
    if (this.signal?.aborted) throw this.abortedError();
  }

  private async withRetries<T>(path: string, fn: () => Promise<T>): Promise<T> {
    for (let failures = 0; ; failures++) {
      try {
        return await fn();
      } catch (e) {
        if (!retryable.has(e as object) || failures >= this.retries) throw e;
        this.emit(path, 'retry', true, retryReason(e));
        await this.sleep(this.retryDelayMs * 2 ** failures);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.signal?.aborted) return reject(this.abortedError());
      const onAbort = () => {
        clearTimeout(t);
        reject(this.abortedError());
      };
      const t = setTimeout(() => {
        this.signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      this.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  // Progress ---------------------------------------------------------------------------------------------

  private emit(path: string, phase: DownloadProgress['phase'], force: boolean, reason?: string): void {
    const cb = this.options.onProgress;
    if (!cb) return;
    const now = clock();
    if (!force && now - (this.lastEmit.get(path) ?? -Infinity) < this.interval) return;
    this.lastEmit.set(path, now);
    const f = this.files.get(path);
    let bytes = 0;
    let total: number | undefined = 0;
    for (const g of this.files.values()) {
      bytes += g.bytes;
      const size = g.done ? g.bytes : g.expectedSize;
      total = total === undefined || size === undefined ? undefined : total + size;
    }
    cb({
      phase,
      file: path,
      bytes,
      total,
      fileBytes: f?.bytes ?? 0,
      fileTotal: f?.expectedSize,
      bytesPerSecond: this.speed(now),
      ...(reason !== undefined ? { reason } : {}),
    });
  }

  private emitDone(bytes: number): void {
    this.options.onProgress?.({ phase: 'done', file: '', bytes, total: bytes, fileBytes: 0, fileTotal: undefined, bytesPerSecond: this.speed(clock()) });
  }

  /** Bytes per second over the last 5 s. */
  private speed(now: number): number {
    this.samples.push({ t: now, n: this.fetched });
    while (this.samples.length > 2 && now - this.samples[0]!.t > 5000) this.samples.shift();
    const first = this.samples[0]!;
    const dt = (now - first.t) / 1000;
    return dt > 0 ? (this.fetched - first.n) / dt : 0;
  }
}

/** An AbortSignal that fires on the caller's abort or when no byte arrived for `ms`. */
class Watchdog {
  private readonly ctl = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  timedOut = false;
  private readonly onAbort = () => this.ctl.abort(this.outer?.reason);
  constructor(
    private readonly ms: number,
    private readonly outer: AbortSignal | undefined,
  ) {
    if (outer?.aborted) this.ctl.abort(outer.reason);
    outer?.addEventListener('abort', this.onAbort, { once: true });
    this.kick();
  }
  get signal(): AbortSignal {
    return this.ctl.signal;
  }
  kick(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.ctl.abort(new Error('idle timeout'));
    }, this.ms);
  }
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.outer?.removeEventListener('abort', this.onAbort);
  }
}

// Headers ------------------------------------------------------------------------------------------------

function linkedInfo(hops: Headers[], res: Response): RemoteInfo {
  const out: RemoteInfo = {};
  for (const h of [...hops, res.headers]) {
    const size = numberHeader(h.get('x-linked-size'));
    const sha = sha256FromEtag(h.get('x-linked-etag'));
    if (out.size === undefined && size !== undefined) out.size = size;
    if (out.sha256 === undefined && sha !== undefined) out.sha256 = sha;
  }
  return out;
}

/** Size and sha256 from a response: X-Linked-* from any hop first, then ETag / Content-Length of the last. */
function infoFromHeaders(hops: Headers[], res: Response, kind: 'full' | 'partial'): RemoteInfo {
  const out = linkedInfo(hops, res);
  if (out.sha256 === undefined) {
    for (const h of [...hops, res.headers]) {
      const sha = sha256FromEtag(h.get('etag'));
      if (sha) {
        out.sha256 = sha;
        break;
      }
    }
  }
  if (out.size === undefined) {
    if (kind === 'partial') {
      const total = parseContentRange(res.headers.get('content-range'))?.total;
      if (total !== undefined) out.size = total;
    } else if (!isRedirect(res.status) && !isEncoded(res)) {
      const len = numberHeader(res.headers.get('content-length'));
      if (len !== undefined) out.size = len;
    }
  }
  return out;
}

/** The sha256 in an ETag-like header: a (possibly weak, possibly quoted) 64-hex value. Git sha1s are 40 hex. */
export function sha256FromEtag(v: string | null): string | undefined {
  if (!v) return undefined;
  const m = /^(?:W\/)?"?([0-9a-fA-F]{64})"?$/.exec(v.trim());
  return m ? m[1]!.toLowerCase() : undefined;
}

function parseContentRange(v: string | null): { start: number; end: number; total?: number } | undefined {
  const m = v ? /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(v.trim()) : null;
  if (!m) return undefined;
  const out: { start: number; end: number; total?: number } = { start: Number(m[1]), end: Number(m[2]) };
  if (m[3] !== '*') out.total = Number(m[3]);
  return out;
}

function numberHeader(v: string | null): number | undefined {
  if (v === null || !/^\s*\d+\s*$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function isEncoded(res: Response): boolean {
  const enc = res.headers.get('content-encoding');
  return !!enc && enc.toLowerCase() !== 'identity';
}

async function discard(res: Response): Promise<void> {
  try {
    if (res.body && !res.bodyUsed) await res.body.cancel();
  } catch {
    // already errored or locked: nothing to free
  }
}

function parseIndex(bytes: Uint8Array, repo: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new HubError('bad-response', `${WEIGHTS_INDEX} of ${repo} is not valid JSON (${(e as Error).message}).`, { file: WEIGHTS_INDEX });
  }
  const map = (json as { weight_map?: unknown })?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new HubError('bad-response', `${WEIGHTS_INDEX} of ${repo} has no weight_map object.`, { file: WEIGHTS_INDEX });
  }
  const shards = new Set<string>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string') {
      throw new HubError('bad-response', `${WEIGHTS_INDEX} of ${repo} maps tensor "${name}" to a non-string file.`, { file: WEIGHTS_INDEX });
    }
    checkFilePath(file);
    shards.add(file);
  }
  if (shards.size === 0) throw new HubError('bad-response', `${WEIGHTS_INDEX} of ${repo} names no shard files.`, { file: WEIGHTS_INDEX });
  return [...shards].sort();
}

/**
 * The length a safetensors file must have by its header (8 + header length + the end of the furthest tensor),
 * or undefined when the header cannot be read. `readHeader(n)` reads the first 8 + n bytes.
 */
async function safetensorsLength(first8: Uint8Array, readHeader: (n: number) => Promise<Uint8Array>): Promise<number | undefined> {
  if (first8.length < 8) return undefined;
  const n = Number(new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true));
  if (!Number.isSafeInteger(n) || n <= 0 || n > 100 * 1024 * 1024) return undefined;
  const bytes = await readHeader(n);
  if (bytes.length < 8 + n) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return undefined;
  let end = 0;
  for (const [name, t] of Object.entries(header as Record<string, { data_offsets?: unknown }>)) {
    if (name === '__metadata__') continue;
    const o = t?.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || !o.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) return undefined;
    end = Math.max(end, o[1] as number);
  }
  return 8 + n + end;
}

/**
 * Why bytes received without a size are not a complete file of their kind (a safetensors header, JSON that
 * parses, Parquet's magic at both ends), or undefined when they are, or when the kind cannot be checked.
 */
async function incompleteContent(file: string, bytes: Uint8Array): Promise<string | undefined> {
  const name = file.replace(/\.gz$/i, '');
  if (name !== file) return undefined; // gzip's own trailer is checked where it is inflated
  if (/\.safetensors$/i.test(file)) {
    const want = await safetensorsLength(bytes.subarray(0, 8), async (n) => bytes.subarray(0, 8 + n));
    return want === bytes.length ? undefined : `its ${bytes.length} bytes are not a complete safetensors file`;
  }
  if (/\.jsonl?$/i.test(file)) {
    // A JSON document, or JSON Lines (datasets name those .json too) whose every line parses.
    try {
      const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      try {
        JSON.parse(text);
      } catch {
        for (const line of text.split('\n')) if (line.trim()) JSON.parse(line);
      }
      return undefined;
    } catch {
      return `its ${bytes.length} bytes are not complete JSON or JSON Lines`;
    }
  }
  if (/\.parquet$/i.test(file)) {
    const magic = (at: number) => bytes.length >= 8 && String.fromCharCode(...bytes.subarray(at, at + 4)) === 'PAR1';
    return magic(0) && magic(bytes.length - 4) ? undefined : `its ${bytes.length} bytes are not a complete Parquet file`;
  }
  return undefined;
}

/** Why a download is retried, in words, for the 'retry' progress event. */
function retryReason(e: unknown): string {
  if (e instanceof HubError && e.status !== undefined) return `the server answered HTTP ${e.status}`;
  if (e instanceof HubError && /no data arrived/.test(e.message)) return (/\(([^)]*no data arrived[^)]*)\)/.exec(e.message)?.[1]) ?? 'no data arrived';
  return 'the connection was lost';
}

function toPlanned(f: FileState): PlannedFile {
  const p: PlannedFile = { path: f.path };
  if (f.expectedSize !== undefined) p.expectedSize = f.expectedSize;
  if (f.sha256 !== undefined) p.sha256 = f.sha256;
  return p;
}

function fileOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.split('/').pop() ?? url);
  } catch {
    return url;
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    const c = cause instanceof Error ? `: ${cause.message}` : '';
    return `${e.message}${c}`;
  }
  return String(e);
}

function clock(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
