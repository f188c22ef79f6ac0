// The web app end to end: build it, serve it from a sub-path on 127.0.0.1, open it in the system Chromium
// with WebGPU on (SwiftShader when there is no GPU), and check that
//   - the engine worker found an adapter and ran the SwiGLU kernel on it, within 1e-5 of the float64 reference,
//   - a GpuError thrown in the worker reaches the page as a GpuError with its code,
//   - the web manifest and icons are served, the service worker registers, and the app shell opens offline,
//   - a new deployment shows the "new version" prompt, and Reload brings it in.
// A screenshot of the page (light and dark) goes to test-results/ for a person to look at.
// Never skips: without Chromium or a WebGPU adapter the test fails and says how to fix it.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SelfTestResult } from '../../src/worker/api';
import { RESULTS, pageTools } from '../helpers/app-page';
import {
  appBuilds,
  launchChromium,
  noWebGpuMessage,
  serveStatic,
  type LaunchedBrowser,
  type StaticServer,
} from '../helpers/browser';

let dist: string;
/** The same app with another build id: the "new version" for the update prompt. */
let distNext: string;
let server: StaticServer;
let browser: LaunchedBrowser;
let page: Page;

/** What the test reads from the page; mirrors GraftDebug in src/ui/gpu-check.ts minus the live objects. */
interface PageState {
  adapter?: SelfTestResult['adapter'];
  adapterError?: { name: string; code?: string; message: string };
  selfTest?: SelfTestResult;
  selfTestError?: { name: string; code?: string; message: string };
}

async function pageState(): Promise<PageState> {
  return page.evaluate(() => {
    const g = window.__graft;
    return g
      ? { adapter: g.adapter, adapterError: g.adapterError, selfTest: g.selfTest, selfTestError: g.selfTestError }
      : {};
  });
}

function failWith(message: string): never {
  throw new Error(`${message}\n\nRequests: ${server.requests.join(', ')}\nBrowser console:\n  ${browser.logs.join('\n  ')}`);
}
const { deployAndWaitForPrompt } = pageTools(() => ({ page, browser, server }), 'app', { failWith });

// The run's builds (test/global-setup.ts): the app, and the same app as a newer deployment.
let launching: Promise<LaunchedBrowser> | undefined;

beforeAll(() => {
  ({ app: dist, next: distNext } = appBuilds());
  launching = launchChromium();
  launching.catch(() => undefined); // reported by the first describe's beforeAll
});

describe('web app in Chromium', () => {
  beforeAll(async () => {
    browser = await launching!;
    server = await serveStatic(dist, '/graft/');
    page = await browser.newPage();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('runs the SwiGLU self-test on a WebGPU adapter inside the engine worker', async () => {
    await page.goto(server.url);
    await page.getByRole('heading', { level: 1, name: 'Graft' }).waitFor({ timeout: 10_000 });
    const selftest = page.getByTestId('selftest');
    try {
      await page.waitForFunction(
        () => {
          const s = document.querySelector('[data-testid="selftest"]')?.getAttribute('data-status');
          return s !== undefined && s !== null && s !== 'waiting' && s !== 'running';
        },
        undefined,
        { timeout: 45_000 },
      );
    } catch {
      failWith(`The self-test did not finish in 45 s; the page says: ${await selftest.innerText().catch(() => '?')}`);
    }
    const state = await pageState();
    if (!state.adapter) failWith(noWebGpuMessage(state.adapterError?.message, browser.logs));
    if (!state.selfTest) failWith(`The self-test threw: ${JSON.stringify(state.selfTestError)}`);

    const r = state.selfTest;
    expect(r.kernel).toBe('swiglu_forward');
    expect(r.ranIn).toBe('worker');
    expect(r.n).toBeGreaterThan(0);
    expect(r.maxAbsError).toBeLessThanOrEqual(1e-5);
    // A real adapter, reported from inside the worker, with real limits.
    expect(r.adapter.limits.maxBufferSize).toBeGreaterThan(0);
    expect(r.adapter.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(r.adapter).toEqual(state.adapter);
    // The worker exists (the UI thread never touched the GPU).
    expect(page.workers().some((w) => w.url().includes('engine.worker'))).toBe(true);

    // The page says so, too.
    expect(await selftest.getAttribute('data-status')).toBe('passed');
    expect(await selftest.innerText()).toMatch(/Kernel self-test: passed, max error/);
    const adapterText = await page.getByTestId('adapter').innerText();
    expect(adapterText).toContain('maxStorageBufferBindingSize');
    expect(adapterText).toContain('shader-f16');
    expect(adapterText).toContain('subgroups');

    mkdirSync(RESULTS, { recursive: true });
    await page.screenshot({ path: join(RESULTS, 'app-light.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(RESULTS, 'app-dark.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
    console.log(
      `self-test on ${r.adapter.description || r.adapter.vendor}: n=${r.n}, max error ${r.maxAbsError.toExponential(2)}, ` +
        `${r.gpuMs.toFixed(1)} ms; screenshots in test-results/`,
    );
  });

  it("holds to its Content-Security-Policy: same origin, the hub and its CDN, loopback hubs; nothing refused", async () => {
    const csp = await page.evaluate(() => document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.getAttribute('content') ?? '');
    expect(csp).toMatch(/default-src 'self'/);
    expect(csp).toMatch(/connect-src 'self' https:\/\/huggingface\.co https:\/\/\*\.huggingface\.co https:\/\/\*\.hf\.co http:\/\/localhost:\* http:\/\/127\.0\.0\.1:\*/);
    expect(csp).toMatch(/object-src 'none'/);
    // A fetch to an origin the policy does not name is refused by the browser, not by Graft.
    const refused = await page.evaluate(() => fetch('https://example.org/').then(() => 'fetched', (e: Error) => e.name));
    expect(refused).toBe('TypeError');
    expect(browser.logs.filter((l) => /Content Security Policy/.test(l) && !/example\.org/.test(l))).toEqual([]);
  });

  it('keeps GpuError and its code across the worker boundary', async () => {
    const thrown = await page.evaluate(async () => {
      const g = window.__graft!;
      try {
        // 2^30 floats need a 4 GiB binding, more than any adapter allows: the worker throws limit-exceeded.
        await g.engine.selfTest({ n: 2 ** 30 });
        return { threw: false as const };
      } catch (e) {
        return {
          threw: true as const,
          isGpuError: e instanceof g.GpuError,
          name: (e as Error).name,
          code: (e as { code?: string }).code,
          message: (e as Error).message,
        };
      }
    });
    expect(thrown).toMatchObject({ threw: true, isGpuError: true, name: 'GpuError', code: 'limit-exceeded' });
    expect(thrown.threw && thrown.message).toMatch(/more than this adapter allows/);
  });

  it('serves the web manifest and icons', async () => {
    const href = await page.locator('link[rel="manifest"]').first().getAttribute('href');
    expect(href).toBeTruthy();
    const manifestUrl = new URL(href!, server.url).href;
    const res = await page.request.get(manifestUrl);
    expect(res.status()).toBe(200);
    expect(res.headers()['content-type']).toContain('manifest+json');
    const manifest = (await res.json()) as { name: string; start_url: string; icons: { src: string; type: string }[] };
    expect(manifest.name).toBe('Graft');
    expect(manifest.icons.map((i) => i.type)).toEqual(expect.arrayContaining(['image/svg+xml', 'image/png']));
    for (const icon of manifest.icons) {
      const r = await page.request.get(new URL(icon.src, manifestUrl).href);
      expect(r.status(), icon.src).toBe(200);
      expect(r.headers()['content-type']).toBe(icon.type);
    }
  });

  it('registers the service worker and opens offline from the precached app shell', async () => {
    const sw = await page.evaluate(async () => {
      const reg = await Promise.race([
        navigator.serviceWorker.ready,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000)),
      ]);
      return reg ? { scope: reg.scope, script: reg.active?.scriptURL } : undefined;
    });
    if (!sw) failWith('The service worker did not become active within 20 s.');
    expect(sw.scope).toBe(server.url);
    expect(sw.script).toBe(`${server.url}sw.js`);

    // The first visit installs the service worker; the next load is served by it, even offline.
    await browser.context.setOffline(true);
    try {
      await page.reload();
      await page.getByRole('heading', { level: 1, name: 'Graft' }).waitFor({ timeout: 10_000 });
      expect(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL)).toBe(`${server.url}sw.js`);
      // The engine worker's chunk is precached too: the self-test runs again offline.
      await page.waitForFunction(
        () => document.querySelector('[data-testid="selftest"]')?.getAttribute('data-status') === 'passed',
        undefined,
        { timeout: 30_000 },
      );
    } finally {
      await browser.context.setOffline(false);
    }
  });

  it('offers a new version with a prompt and reloads into it', async () => {
    expect(await page.getByTestId('version').textContent()).not.toContain('update-test');
    const prompt = await deployAndWaitForPrompt(distNext);
    expect(await prompt.innerText()).toContain('A new version of Graft is available');
    await page.screenshot({ path: join(RESULTS, 'app-update-prompt.png') });
    await Promise.all([
      page.waitForEvent('load', { timeout: 20_000 }),
      prompt.getByRole('button', { name: 'Reload' }).click(),
    ]);
    await expect.poll(() => page.getByTestId('version').textContent(), { timeout: 10_000 }).toContain('update-test');
  });
});

describe('web app in a browser without WebGPU', () => {
  it('says that there is no adapter and which browsers work', async () => {
    const [noGpu, srv] = await Promise.all([launchChromium({ webgpu: false }), serveStatic(dist, '/graft/')]);
    try {
      const p = await noGpu.newPage();
      await p.goto(srv.url);
      const adapter = p.getByTestId('adapter');
      await p.waitForFunction(
        () => document.querySelector('[data-testid="adapter"]')?.getAttribute('data-status') !== 'searching',
        undefined,
        { timeout: 20_000 },
      );
      expect(await adapter.getAttribute('data-status'), noGpu.logs.join('\n')).toBe('missing');
      const text = (await adapter.textContent()) ?? '';
      expect(text).toMatch(/no GPU adapter|no WebGPU/);
      expect(text).toContain('Browsers that run Graft');
      expect(text).toContain('--enable-unsafe-webgpu');
      expect(await p.getByTestId('selftest').getAttribute('data-status')).toBe('skipped');
      const err = await p.evaluate(() => window.__graft?.adapterError);
      expect(err?.name).toBe('GpuError');
      expect(['no-webgpu', 'no-adapter']).toContain(err?.code);
      mkdirSync(RESULTS, { recursive: true });
      await p.screenshot({ path: join(RESULTS, 'app-no-webgpu.png'), fullPage: true });
    } finally {
      await noGpu.close();
      await srv.close();
    }
  });
});
