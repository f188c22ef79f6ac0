// A local Hugging Face hub for tests: a node:http server on 127.0.0.1 (random port) serving model folders in
// the hub's URL layout, plus a second server on another port playing the CDN that LFS files redirect to.
//
//   GET|HEAD /{org}/{name}/resolve/{rev}/{file}  → 200 for small (git) files, with a git-sha1 ETag;
//                                                 → 302 to {cdn}/cdn/{org}/{name}/{rev}/{file} for LFS files,
//                                                   carrying X-Linked-Size, X-Linked-Etag (sha256), X-Repo-Commit
//   GET|HEAD {cdn}/cdn/{org}/{name}/{rev}/{file} → the bytes, ETag a 32-hex (md5, like a CDN's), Range → 206
//   GET /api/models/{org}/{name}/tree/{rev}      → [{type, path, size, oid, lfs?: {oid, size, pointerSize}}]
//   GET /api/datasets/{org}/{name}/tree/{rev}    → the same for a dataset (only with datasetTreeApi: true; by
//                                                 default datasets have no tree API, like a mirror); added with
//                                                 addModel('datasets/{org}/{name}', files) and resolved at
//                                                 /datasets/{org}/{name}/resolve/{rev}/{file}, as on the hub
//
// Faults are injected per request (see Fault) and every request is recorded (see RecordedRequest).
// CORS headers are sent so that a browser test can use the same hub.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile, writeSafetensors } from '../../src/model/safetensors';

export type FaultKind =
  /** Destroy the socket after `afterBytes` bytes of the body (Content-Length announces the full length). */
  | 'drop'
  /** Serve the right length with one byte flipped. */
  | 'corrupt'
  /** No Content-Length: the body goes out with chunked transfer encoding. */
  | 'chunked'
  /** Answer `status` (404, 401, 500...) instead of the file. */
  | 'status'
  /** Answer 200 with the whole file to a Range request. */
  | 'ignore-range'
  /** Send `afterBytes` bytes, then nothing more while keeping the connection open (a stalled transfer). */
  | 'stall'
  /**
   * No Content-Length and no chunked encoding: the body ends when the connection closes (HTTP/1.0 style); with
   * `afterBytes` the connection closes after that many bytes, a cut the client cannot see from the transfer.
   */
  | 'eof'
  /** The hub's answer carries no size and no sha256 (no X-Linked-*, an ETag that is no hash). */
  | 'no-hash'
  /** The hub announces a wrong sha256 (X-Linked-Etag, or the ETag with lfs 'etag'). */
  | 'wrong-hash'
  /** Accept the request and never answer (until the hub closes). */
  | 'hang';

export interface Fault {
  kind: FaultKind;
  /** The repository file it applies to, e.g. "model.safetensors". */
  file: string;
  /** Only this repository (default: any). */
  repo?: string;
  /** Only this method (default: any). */
  method?: 'GET' | 'HEAD';
  /** For 'drop' and 'stall'. */
  afterBytes?: number;
  /** For 'status'. */
  status?: number;
  /** How many matching requests it affects (default 1; Infinity for all). */
  times?: number;
}

export interface RecordedRequest {
  /** 'resolve' (hub file URL), 'cdn' (after the redirect), 'api' (tree listing), 'other'. */
  stage: 'resolve' | 'cdn' | 'api' | 'other';
  method: string;
  url: string;
  repo?: string;
  revision?: string;
  file?: string;
  range?: string;
  authorization?: string;
  status: number;
  fault?: FaultKind;
}

export interface TestHubOptions {
  /** Serve /api/models/{repo}/tree/{rev} (default true). */
  treeApi?: boolean;
  /** Serve /api/datasets/{repo}/tree/{rev} too (default false: dataset readers then fall back to conventional names). */
  datasetTreeApi?: boolean;
  /**
   * How LFS files are served: 'x-linked' (default, like huggingface.co: resolve → 302 with X-Linked-* headers →
   * CDN) or 'etag' (no redirect: 200 with the sha256 as a quoted ETag and no X-Linked-* headers).
   */
  lfs?: 'x-linked' | 'etag';
}

interface ServedFile {
  bytes: Uint8Array;
  sha256: string;
  gitSha1: string;
  md5: string;
  lfs: boolean;
}

const COMMIT = 'a'.repeat(40);

export class TestHub {
  readonly requests: RecordedRequest[] = [];
  private readonly models = new Map<string, Map<string, ServedFile>>(); // `${repo}@${rev}` → files
  private readonly tokens = new Map<string, string>();
  private faults: (Fault & { left: number })[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly hub: Server,
    private readonly cdn: Server,
    private readonly options: TestHubOptions,
  ) {}

  static async start(options: TestHubOptions = {}): Promise<TestHub> {
    const hubServer = createServer();
    const cdnServer = createServer();
    const t = new TestHub(hubServer, cdnServer, options);
    hubServer.on('request', (req, res) => t.onHub(req, res));
    cdnServer.on('request', (req, res) => t.onCdn(req, res));
    for (const s of [hubServer, cdnServer]) {
      s.on('connection', (sock) => {
        t.sockets.add(sock);
        sock.on('close', () => t.sockets.delete(sock));
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return t;
  }

  /** The endpoint to give the client, e.g. http://127.0.0.1:41234. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
  }

  get cdnOrigin(): string {
    return `http://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`;
  }

  addModel(repo: string, files: Record<string, Uint8Array>, revision = 'main'): void {
    const m = new Map<string, ServedFile>();
    for (const [path, bytes] of Object.entries(files)) {
      m.set(path, {
        bytes,
        sha256: createHash('sha256').update(bytes).digest('hex'),
        gitSha1: createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex'),
        md5: createHash('md5').update(bytes).digest('hex'),
        lfs: /\.(safetensors|bin|gguf)$/.test(path) || bytes.length > 1024 * 1024,
      });
    }
    this.models.set(`${repo}@${revision}`, m);
  }

  /** Requests for `repo` (resolve and API) need `Authorization: Bearer {token}`, else 401. */
  requireToken(repo: string, token: string): void {
    this.tokens.set(repo, token);
  }

  fault(f: Fault): void {
    this.faults.push({ ...f, left: f.times ?? 1 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  /** Requests for one file, optionally only one stage and method. */
  requestsFor(file: string, filter: { stage?: RecordedRequest['stage']; method?: string } = {}): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.file === file && (!filter.stage || r.stage === filter.stage) && (!filter.method || r.method === filter.method),
    );
  }

  async close(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    for (const sock of this.sockets) sock.destroy();
  }

  // ------------------------------------------------------------------------------------------------------

  private takeFault(kinds: FaultKind[], method: string, repo: string, file: string): Fault | undefined {
    const f = this.faults.find(
      (x) =>
        x.left > 0 &&
        kinds.includes(x.kind) &&
        x.file === file &&
        (!x.repo || x.repo === repo) &&
        (!x.method || x.method === method),
    );
    if (f) f.left--;
    return f;
  }

  private record(req: IncomingMessage, stage: RecordedRequest['stage'], parts: { repo?: string; revision?: string; file?: string }) {
    const r: RecordedRequest = { stage, method: req.method ?? '', url: req.url ?? '', status: 0, ...parts };
    if (req.headers.range) r.range = req.headers.range;
    if (req.headers.authorization) r.authorization = req.headers.authorization;
    this.requests.push(r);
    return r;
  }

  private authorized(req: IncomingMessage, repo: string): boolean {
    const token = this.tokens.get(repo);
    return token === undefined || req.headers.authorization === `Bearer ${token}`;
  }

  private onHub(req: IncomingMessage, res: ServerResponse): void {
    cors(res);
    if (req.method === 'OPTIONS') return end(res, 204);
    const url = new URL(req.url ?? '/', 'http://x');
    const seg = url.pathname.split('/').slice(1);

    if (seg[0] === 'api' && (seg[1] === 'models' || seg[1] === 'datasets')) {
      const t = seg.indexOf('tree');
      const repo = `${seg[1] === 'datasets' ? 'datasets/' : ''}${seg.slice(2, t).join('/')}`;
      const revision = decodeURIComponent(seg[t + 1] ?? '');
      const rec = this.record(req, 'api', { repo, revision });
      if (this.options.treeApi === false || t < 0 || (seg[1] === 'datasets' && !this.options.datasetTreeApi)) return end(res, (rec.status = 404));
      if (!this.authorized(req, repo)) return end(res, (rec.status = 401), { 'X-Error-Code': 'GatedRepo' });
      const m = this.models.get(`${repo}@${revision}`);
      if (!m) return end(res, (rec.status = 404), { 'X-Error-Code': 'RepoNotFound' });
      const list = [...m].map(([path, f]) => ({
        type: 'file',
        path,
        size: f.bytes.length,
        oid: f.gitSha1,
        ...(f.lfs ? { lfs: { oid: f.sha256, size: f.bytes.length, pointerSize: 134 } } : {}),
      }));
      rec.status = 200;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(list));
      return;
    }

    const r = seg.indexOf('resolve');
    if (r < 1 || seg.length < r + 3) {
      const rec = this.record(req, 'other', {});
      return end(res, (rec.status = 404));
    }
    const repo = seg.slice(0, r).join('/');
    const revision = decodeURIComponent(seg[r + 1]!);
    const file = seg.slice(r + 2).map(decodeURIComponent).join('/');
    const rec = this.record(req, 'resolve', { repo, revision, file });
    const method = req.method ?? 'GET';

    const st = this.takeFault(['status'], method, repo, file);
    if (st) {
      rec.fault = 'status';
      return end(res, (rec.status = st.status ?? 500));
    }
    if (this.takeFault(['hang'], method, repo, file)) {
      rec.fault = 'hang';
      return;
    }
    if (!this.authorized(req, repo)) return end(res, (rec.status = 401), { 'X-Error-Code': 'GatedRepo' });
    const m = this.models.get(`${repo}@${revision}`);
    const f = m?.get(file);
    if (!m) return end(res, (rec.status = 404), { 'X-Error-Code': 'RepoNotFound' });
    if (!f) return end(res, (rec.status = 404), { 'X-Error-Code': 'EntryNotFound' });

    const hashFault = this.takeFault(['no-hash', 'wrong-hash'], method, repo, file);
    if (hashFault) rec.fault = hashFault.kind;
    const sha256 = hashFault?.kind === 'wrong-hash' ? createHash('sha256').update(f.sha256).digest('hex') : f.sha256;
    if (f.lfs && this.options.lfs !== 'etag') {
      const location = `${this.cdnOrigin}/cdn/${repo}/${encodeURIComponent(revision)}/${file}`;
      rec.status = 302;
      end(res, 302, {
        Location: location,
        ...(hashFault?.kind === 'no-hash' ? {} : { 'X-Linked-Size': String(f.bytes.length), 'X-Linked-Etag': `"${sha256}"` }),
        ETag: `"${f.gitSha1}"`,
        'X-Repo-Commit': COMMIT,
      });
      return;
    }
    const etag = hashFault?.kind === 'no-hash' ? f.md5 : f.lfs ? sha256 : f.gitSha1;
    this.serveBytes(req, res, rec, f, { ETag: `"${etag}"`, 'X-Repo-Commit': COMMIT }, repo, file);
  }

  private onCdn(req: IncomingMessage, res: ServerResponse): void {
    cors(res);
    if (req.method === 'OPTIONS') return end(res, 204);
    const url = new URL(req.url ?? '/', 'http://x');
    const seg = url.pathname.split('/').slice(1);
    // /cdn/{repo...}/{rev}/{file}: the repo is one or two segments (three for datasets/{org}/{name}); find the
    // model whose id fits.
    const method = req.method ?? 'GET';
    for (const n of [3, 2, 1]) {
      const repo = seg.slice(1, 1 + n).join('/');
      const revision = decodeURIComponent(seg[1 + n] ?? '');
      const file = seg.slice(2 + n).map(decodeURIComponent).join('/');
      const f = this.models.get(`${repo}@${revision}`)?.get(file);
      if (!f) continue;
      const rec = this.record(req, 'cdn', { repo, revision, file });
      const st = this.takeFault(['status'], method, repo, file);
      if (st) {
        rec.fault = 'status';
        return end(res, (rec.status = st.status ?? 500));
      }
      if (this.takeFault(['hang'], method, repo, file)) {
        rec.fault = 'hang';
        return;
      }
      this.serveBytes(req, res, rec, f, { ETag: `"${f.md5}"` }, repo, file);
      return;
    }
    const rec = this.record(req, 'cdn', {});
    end(res, (rec.status = 404));
  }

  private serveBytes(
    req: IncomingMessage,
    res: ServerResponse,
    rec: RecordedRequest,
    f: ServedFile,
    headers: Record<string, string>,
    repo: string,
    file: string,
  ): void {
    const method = req.method ?? 'GET';
    const size = f.bytes.length;
    let status = 200;
    let start = 0;
    let endExcl = size;
    const out: Record<string, string> = { ...headers, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };

    const range = req.headers.range;
    const ignore = range ? this.takeFault(['ignore-range'], method, repo, file) : undefined;
    if (ignore) rec.fault = 'ignore-range';
    if (range && !ignore) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!m) return end(res, (rec.status = 416), { 'Content-Range': `bytes */${size}` });
      start = Number(m[1]);
      endExcl = m[2] ? Math.min(size, Number(m[2]) + 1) : size;
      if (start >= size || start >= endExcl) return end(res, (rec.status = 416), { 'Content-Range': `bytes */${size}` });
      status = 206;
      out['Content-Range'] = `bytes ${start}-${endExcl - 1}/${size}`;
    }
    let body = f.bytes.subarray(start, endExcl);

    const chunked = this.takeFault(['chunked'], method, repo, file);
    const eof = chunked ? undefined : this.takeFault(['eof'], method, repo, file);
    if (chunked) rec.fault = 'chunked';
    else if (eof) {
      rec.fault = 'eof';
      res.useChunkedEncodingByDefault = false;
      res.shouldKeepAlive = false;
      out.Connection = 'close';
    } else out['Content-Length'] = String(body.length);

    rec.status = status;
    if (method === 'HEAD') {
      res.writeHead(status, out);
      res.end();
      return;
    }
    const corrupt = this.takeFault(['corrupt'], method, repo, file);
    if (corrupt && body.length > 0) {
      rec.fault = 'corrupt';
      body = body.slice();
      body[body.length >> 1]! ^= 0xff;
    }
    const drop = this.takeFault(['drop', 'stall'], method, repo, file);
    res.writeHead(status, out);
    if (eof) {
      // The body ends where the connection closes: all of it, or `afterBytes` of it.
      const n = Math.min(eof.afterBytes ?? body.length, body.length);
      res.write(body.subarray(0, n), () => setTimeout(() => res.socket?.destroy(), 30));
      return;
    }
    if (drop) {
      rec.fault = drop.kind;
      const n = Math.min(drop.afterBytes ?? 0, body.length);
      // 'stall' leaves the response open; close() ends it.
      res.write(body.subarray(0, n), () => {
        if (drop.kind === 'drop') setTimeout(() => res.socket?.destroy(), 30);
      });
      return;
    }
    if (chunked) {
      // Several writes so that the chunked encoding is real.
      const step = Math.max(1, Math.ceil(body.length / 4));
      for (let i = 0; i < body.length; i += step) res.write(body.subarray(i, i + step));
      res.end();
      return;
    }
    res.end(body);
  }
}

function cors(res: ServerResponse): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
  res.setHeader('Access-Control-Allow-Headers', 'Authorization, Range, Accept-Encoding');
  res.setHeader(
    'Access-Control-Expose-Headers',
    'ETag, X-Linked-Size, X-Linked-Etag, X-Repo-Commit, X-Error-Code, Content-Range, Content-Length, Accept-Ranges',
  );
}

function end(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'Content-Length': '0' });
  res.end();
}

// Fixtures -------------------------------------------------------------------------------------------------

export const FIXTURE_REPO = 'graft-test/tiny-llama';
export const SHARDED_REPO = 'graft-test/tiny-llama-sharded';
const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/tiny-llama/', import.meta.url));

/** The files of test/fixtures/tiny-llama (top level only: not the reference/ folder). */
export function fixtureModelFiles(): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const name of readdirSync(FIXTURE_DIR).sort()) {
    const p = join(FIXTURE_DIR, name);
    if (statSync(p).isFile()) out[name] = new Uint8Array(readFileSync(p));
  }
  return out;
}

/**
 * The fixture with its weights split into two safetensors shards plus model.safetensors.index.json (as
 * transformers writes them), instead of model.safetensors.
 */
export function shardedModelFiles(): Record<string, Uint8Array> {
  const { ['model.safetensors']: weights, ...rest } = fixtureModelFiles();
  const st = new SafetensorsFile(weights!, 'model.safetensors');
  const names = st.names;
  const half = Math.ceil(names.length / 2);
  const shards = [names.slice(0, half), names.slice(half)];
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  const out: Record<string, Uint8Array> = { ...rest };
  shards.forEach((group, i) => {
    const shardName = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    out[shardName] = writeSafetensors(
      group.map((name) => {
        const info = st.info(name);
        totalSize += info.end - info.begin;
        weightMap[name] = shardName;
        return { name, dtype: info.dtype, shape: info.shape, data: st.raw(name) };
      }),
      { format: 'pt' },
    );
  });
  out['model.safetensors.index.json'] = new TextEncoder().encode(
    JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2),
  );
  return out;
}
