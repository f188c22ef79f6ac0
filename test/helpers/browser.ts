// The browser for tests: the system Chromium driven by playwright-core, with WebGPU on. On a machine without
// a GPU, WebGPU runs on SwiftShader (the Vulkan driver that Debian's `chromium` package ships). Browser tests
// never skip: a missing Chromium or a missing WebGPU adapter fails with a message that says how to fix it.
//
// Also here: building the web app into a temporary folder, the builds that test/global-setup.ts makes once per
// run (appBuilds), and serving a folder over HTTP on 127.0.0.1.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { inject } from 'vitest';
import { FIXTURE_REPO, fixtureModelFiles, TestHub } from './test-hub';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');

const INSTALL_HINT =
  'Install it with `sudo apt-get install -y chromium libvulkan1` (Debian/Ubuntu; `.ci/run` does this), ' +
  'or point GRAFT_CHROMIUM at a Chromium or Chrome executable.';

/** Where a system Chromium usually lives. GRAFT_CHROMIUM, when set, wins. */
export const CHROMIUM_CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/lib/chromium/chromium',
  '/snap/bin/chromium',
  '/usr/bin/google-chrome-stable',
  '/usr/bin/google-chrome',
];

/** The Chromium to launch, or an error that says how to install one. */
export function findChromium(): string {
  const fromEnv = process.env.GRAFT_CHROMIUM;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`GRAFT_CHROMIUM=${fromEnv} does not exist. ${INSTALL_HINT}`);
    return fromEnv;
  }
  const found = CHROMIUM_CANDIDATES.find((p) => existsSync(p) && statSync(p).isFile());
  if (!found) {
    throw new Error(`No Chromium found (looked in ${CHROMIUM_CANDIDATES.join(', ')}). ${INSTALL_HINT}`);
  }
  return found;
}

/**
 * WebGPU in headless Chromium, on SwiftShader when there is no GPU (see docs: design notes, "WebGPU without
 * a GPU"). On a machine with a GPU, drop the two `swiftshader` switches to test the real adapter.
 *
 * playwright-core adds `--headless` (headless: true), `--no-sandbox` (chromiumSandbox: false) and
 * `--user-data-dir` itself (launchPersistentContext, which refuses the switch in `args`). It also passes
 * its own `--enable-features=...`; Chromium keeps only the last `--enable-features`, so ours (below) wins
 * and playwright's two (a screenshot tweak and a network quietener) are repeated here to keep them.
 */
export const WEBGPU_FLAGS = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan,CDPScreenshotNewSurface,SkipListAccountsWithoutGaiaCookies',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--enable-unsafe-swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Debian's launcher only adds this when /dev/shm is small; containers often have a tiny /dev/shm.
  '--disable-dev-shm-usage',
];

/** A browser without a WebGPU adapter: no unsafe-WebGPU switches, and the GPU process's GPU use off. */
export const NO_WEBGPU_FLAGS = [
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

export interface LaunchedBrowser {
  context: BrowserContext;
  /** The fresh, empty profile folder this browser uses; removed by close(). */
  userDataDir: string;
  /** Everything the pages and workers wrote to the console, and uncaught errors, for failure messages. */
  logs: string[];
  /** Opens a page whose console output and errors go to `logs`. */
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export interface LaunchOptions {
  /** Extra Chromium switches, appended after the others. */
  args?: string[];
  /**
   * Default true: WEBGPU_FLAGS. false: no WebGPU switches and no GPU (`--disable-gpu`), so the page finds
   * no adapter; for testing what a person without WebGPU sees.
   */
  webgpu?: boolean;
  /** Default true; set GRAFT_HEADFUL=1 to watch. */
  headless?: boolean;
}

/** Launches the system Chromium with WebGPU on and a new empty profile. */
export async function launchChromium(options: LaunchOptions = {}): Promise<LaunchedBrowser> {
  const executablePath = findChromium();
  const userDataDir = mkdtempSync(join(tmpdir(), 'graft-chromium-'));
  const logs: string[] = [];
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: options.headless ?? !process.env.GRAFT_HEADFUL,
      args: [...(options.webgpu === false ? NO_WEBGPU_FLAGS : WEBGPU_FLAGS), ...(options.args ?? [])],
      viewport: { width: 1100, height: 900 },
      timeout: 30_000,
    });
  } catch (cause) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw new Error(`Chromium (${executablePath}) did not start: ${String(cause)}\n${INSTALL_HINT}`, { cause });
  }
  const watch = (page: Page): void => {
    page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
    page.on('worker', (w) => logs.push(`[worker] started ${w.url()}`));
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  return {
    context,
    userDataDir,
    logs,
    async newPage() {
      // A persistent context opens with one blank page; use it first.
      const blank = context.pages().find((p) => p.url() === 'about:blank');
      return blank ?? (await context.newPage());
    },
    async close() {
      await context.close().catch(() => undefined);
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** The message for a page that found no WebGPU adapter: what to install, and what the page said. */
export function noWebGpuMessage(pageMessage: string | undefined, logs: string[]): string {
  return [
    `Chromium found no WebGPU adapter${pageMessage ? `: ${pageMessage}` : '.'}`,
    'Without a GPU, WebGPU runs on SwiftShader, which needs the Vulkan loader and the chromium package: ' +
      '`sudo apt-get install -y chromium libvulkan1` (`.ci/run` installs both).',
    logs.length ? `Browser console:\n  ${logs.slice(-30).join('\n  ')}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

// ---- building and serving the web app ---------------------------------------------------------------------

export interface BuildOptions {
  /** Where to build; a new temporary folder by default. */
  outDir?: string;
  /** Extra environment for the build, e.g. { GRAFT_BUILD_ID: 'x' } or { GRAFT_BASE: '/graft/' }. */
  env?: Record<string, string>;
}

/** Runs `vite build` (the project's vite.config.ts) and returns the output folder. */
export async function buildApp(options: BuildOptions = {}): Promise<string> {
  const outDir = options.outDir ?? mkdtempSync(join(tmpdir(), 'graft-dist-'));
  const vite = join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const output: string[] = [];
  const code = await new Promise<number | null>((done, fail) => {
    const child = spawn(process.execPath, [
        vite,
        'build',
        '--outDir',
        outDir,
        '--emptyOutDir',
        '--logLevel',
        'warn',
        // Vite refuses a second `vite build` of one project at a time; ours write to their own folders.
        '--bypass-lock',
      ], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_ENV: 'production', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr.on('data', (d: Buffer) => output.push(d.toString()));
    child.on('error', fail);
    child.on('close', done);
  });
  if (code !== 0) throw new Error(`vite build failed (exit ${code}):\n${output.join('')}`);
  return outDir;
}

/** The builds test/global-setup.ts makes once per run; the tests only read them. */
export interface AppBuilds {
  /** GRAFT_BUILD_ID '': the app every browser test serves. */
  app: string;
  /** GRAFT_BUILD_ID 'update-test': the same app as a newer deployment (the update prompt). */
  next: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    graftAppBuilds: AppBuilds;
  }
}

/**
 * The web app built once for the whole run by test/global-setup.ts (the browser project's globalSetup in
 * vitest.config.ts). Shared by every browser test file: serve it, never write into it or delete it.
 */
export function appBuilds(): AppBuilds {
  const builds = inject('graftAppBuilds');
  if (!builds) {
    throw new Error(
      'No app build: test/global-setup.ts builds the app for the tests under test/browser/ (the "browser" project ' +
        'of vitest.config.ts); a browser test elsewhere needs its own buildApp(), or the project\'s include.',
    );
  }
  return builds;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.wgsl': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

export interface StaticServer {
  /** The served folder's URL, ending in '/' (e.g. http://127.0.0.1:41234/graft/). */
  url: string;
  /** Every path requested, in order, with its status (for assertions and failure messages). */
  requests: string[];
  /** Serves another folder from now on (e.g. a newer build, to test updates). */
  setRoot(root: string): void;
  close(): Promise<void>;
}

/**
 * Serves `root` on 127.0.0.1 (a secure context, as service workers and WebGPU require) at `prefix`, on a
 * free port. Serving under a sub-path checks that the app works away from the site root.
 */
export async function serveStatic(root: string, prefix = '/'): Promise<StaticServer> {
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  let rootDir = resolve(root);
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      let status = 404;
      let body: Buffer | string = 'not found';
      let type = 'text/plain; charset=utf-8';
      if (path.startsWith(base)) {
        let rel = path.slice(base.length);
        if (rel === '' || rel.endsWith('/')) rel += 'index.html';
        const file = normalize(join(rootDir, rel));
        if (file.startsWith(rootDir + sep) && existsSync(file) && statSync(file).isFile()) {
          status = 200;
          body = await readFile(file);
          type = MIME[extname(file)] ?? 'application/octet-stream';
        }
      } else if (path === base.slice(0, -1)) {
        res.writeHead(301, { location: base }).end();
        requests.push(`301 ${path}`);
        return;
      }
      requests.push(`${status} ${path}`);
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : body);
    })().catch((e: unknown) => {
      res.writeHead(500).end(String(e));
    });
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', done);
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('static server has no port');
  return {
    url: `http://127.0.0.1:${address.port}${base}`,
    requests,
    setRoot(next: string) {
      rootDir = resolve(next);
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

// ---- one app session per test file -------------------------------------------------------------------------

/** The run's app build served at /graft/, a Chromium and one light-mode page on it (startApp / stopApp). */
export interface AppSession {
  /** The shared build (appBuilds().app): read it, never change it. */
  dist: string;
  browser: LaunchedBrowser;
  server: StaticServer;
  page: Page;
  /** With startApp({ hub: true }): the local test hub, holding the fixture model (FIXTURE_REPO). */
  hub?: TestHub;
}

/**
 * Serves the run's app build (appBuilds().app) at /graft/, launches Chromium and opens a light-mode page; with
 * { hub: true } also starts the local test hub with the fixture model (while Chromium launches). Call in
 * beforeAll and pair with stopApp in afterAll.
 */
export async function startApp(options: { hub?: boolean } = {}): Promise<AppSession> {
  const dist = appBuilds().app;
  const launching = launchChromium();
  launching.catch(() => undefined);
  let hub: TestHub | undefined;
  let browser: LaunchedBrowser | undefined;
  let server: StaticServer | undefined;
  try {
    if (options.hub) {
      hub = await TestHub.start();
      hub.addModel(FIXTURE_REPO, fixtureModelFiles());
    }
    browser = await launching;
    server = await serveStatic(dist, '/graft/');
    const page = await browser.newPage();
    await page.emulateMedia({ colorScheme: 'light' });
    return { dist, browser, server, page, ...(hub ? { hub } : {}) };
  } catch (e) {
    if (!browser) await launching.then((b) => b.close(), () => undefined);
    await stopApp({ ...(browser ? { browser } : {}), ...(server ? { server } : {}), ...(hub ? { hub } : {}) });
    throw e;
  }
}

/** Closes what startApp opened (any part of it may be missing when startApp failed); the build stays for the run. */
export async function stopApp(app: Partial<AppSession> | undefined): Promise<void> {
  await app?.browser?.close();
  await app?.server?.close();
  await app?.hub?.close();
}

/**
 * Waits for the page's WebGPU check (the Start screen's adapter line) and fails through `fail` — the test
 * file's own failWith, which adds the browser console — when the page found no adapter.
 */
export async function expectWebGpuAdapter(page: Page, browser: LaunchedBrowser, fail: (message: string) => never): Promise<void> {
  await page.waitForFunction(() => document.querySelector('[data-testid="adapter"]')?.getAttribute('data-status') !== 'searching', undefined, { timeout: 30_000 });
  if ((await page.getByTestId('adapter').getAttribute('data-status')) !== 'found') {
    fail(noWebGpuMessage(await page.evaluate(() => window.__graft?.adapterError?.message), browser.logs));
  }
}
