// The page around a training run, in headless Chromium with WebGPU (SwiftShader without a GPU), on the built-in
// demo model:
//   - the screen wake lock is requested when the run starts and released when it ends or is stopped
//     (navigator.wakeLock is replaced before the page loads by a recorder: headless Chromium has no screen);
//   - with notification permission granted and "Notify me when it finishes" ticked, the end of the run shows a
//     notification (through the service worker registration) whose text names the last step and its loss;
//   - a new version of the app (a second build, served in place of the first) is offered with a prompt that,
//     during the run, only says it will come back: there is no Reload button, and even when the new service worker
//     takes control of the page (another tab pressed Reload: the page posts SKIP_WAITING itself) the page is not
//     reloaded and the run goes on; when the run ends the prompt comes back, and Reload brings the new version in.
// Screenshots go to test-results/train-page-*.png. Never skips.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pageTools } from '../helpers/app-page';
import { appBuilds, expectWebGpuAdapter, launchChromium, serveStatic, type LaunchedBrowser, type StaticServer } from '../helpers/browser';

let dist: string;
let distNext: string;
let server: StaticServer;
let browser: LaunchedBrowser;
let page: Page;
/** Main-frame navigations (loads and reloads) since the page first opened. */
let navigations = 0;
// (Screenshots leave the "ready to work offline" toast alone: nothing is clicked during the run.)
const { failWith, waitForAttr, shoot, deployAndWaitForPrompt } = pageTools(() => ({ page, browser, server }), 'train-page', { dismissToast: false });
const waitForStatus = (values: string[], timeout: number) => waitForAttr('[data-testid="train-run"]', 'data-status', values, timeout);

interface Recorded {
  wakeLock: { event: 'request' | 'release'; type?: string; status: string | null }[];
  notifications: { via: 'registration' | 'constructor'; title: string; body: string; tag: string }[];
  controllerChanges: number;
}

/**
 * Runs in the page before its own scripts, on every load: navigator.wakeLock becomes a recorder whose sentinels
 * are real EventTargets (the session listens for 'release'), and notifications are recorded on their way to the
 * real API. Each record notes the run's status on the page at that moment.
 */
function instrument(): void {
  const rec: Recorded = { wakeLock: [], notifications: [], controllerChanges: 0 };
  (window as unknown as { __rec: Recorded }).__rec = rec;
  const status = () => document.querySelector('[data-testid="train-run"]')?.getAttribute('data-status') ?? null;
  class Sentinel extends EventTarget {
    released = false;
    readonly type = 'screen';
    async release(): Promise<void> {
      if (this.released) return;
      this.released = true;
      rec.wakeLock.push({ event: 'release', status: status() });
      this.dispatchEvent(new Event('release'));
    }
  }
  Object.defineProperty(Navigator.prototype, 'wakeLock', {
    configurable: true,
    get: () => ({
      request: async (type: string) => {
        rec.wakeLock.push({ event: 'request', type, status: status() });
        return new Sentinel();
      },
    }),
  });
  const show = ServiceWorkerRegistration.prototype.showNotification;
  ServiceWorkerRegistration.prototype.showNotification = function (title: string, options?: NotificationOptions) {
    rec.notifications.push({ via: 'registration', title, body: options?.body ?? '', tag: options?.tag ?? '' });
    return show.call(this, title, options);
  };
  const Real = window.Notification;
  class Recording extends Real {
    constructor(title: string, options?: NotificationOptions) {
      super(title, options);
      rec.notifications.push({ via: 'constructor', title, body: options?.body ?? '', tag: options?.tag ?? '' });
    }
  }
  window.Notification = Recording as typeof Notification;
  navigator.serviceWorker?.addEventListener('controllerchange', () => rec.controllerChanges++);
}

const recorded = (): Promise<Recorded> => page.evaluate(() => (window as unknown as { __rec: Recorded }).__rec);

beforeAll(async () => {
  // The run's builds (test/global-setup.ts): the app, and the same app as a newer deployment.
  ({ app: dist, next: distNext } = appBuilds());
  browser = await launchChromium();
  server = await serveStatic(dist, '/graft/');
  await browser.context.grantPermissions(['notifications'], { origin: new URL(server.url).origin });
  await browser.context.addInitScript(instrument);
  page = await browser.newPage();
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) navigations++;
  });
  await page.emulateMedia({ colorScheme: 'light' });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the page around a training run', () => {
  it('holds a wake lock while training, notifies at the end, and never reloads for an update mid-run', async () => {
    await page.goto(server.url);
    await expectWebGpuAdapter(page, browser, failWith);
    // The service worker installs on the first visit and controls the page from the next load on.
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    await page.reload();
    expect(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL)).toBe(`${server.url}sw.js`);

    // Notifications: permission is granted; the person ticks the box on the Train screen.
    await page.getByRole('navigation', { name: 'Steps' }).getByRole('link', { name: /Train/ }).click();
    await page.getByRole('heading', { level: 2, name: 'Train' }).waitFor();
    const notify = page.getByLabel('Notify me when it finishes');
    await notify.check();
    await expect.poll(() => notify.isChecked()).toBe(true);

    // The demo run starts: a wake lock is requested, and nothing is released yet.
    await page.goto(`${server.url}#/demo`);
    await page.getByRole('heading', { level: 2, name: 'The built-in demo' }).waitFor({ timeout: 10_000 });
    await expect.poll(() => page.getByTestId('demo-train').isEnabled(), { timeout: 20_000 }).toBe(true);
    const before = navigations;
    await page.evaluate(() => ((window as unknown as { __mark: string }).__mark = 'this page, not a reloaded one'));
    expect((await recorded()).wakeLock).toEqual([]);
    await page.getByTestId('demo-train').click();
    // Pause as soon as the first step is in (the demo's 24 steps take seconds): clicked from inside the page, so
    // that the run cannot finish between seeing the button and clicking it. A paused run is still active, and
    // keeps its wake lock, while a new version is deployed below.
    // While it waits, it notes what the first step says: "Compiling GPU kernels…", and no time left (none is
    // shown before three steady steps after the first are timed).
    await page.waitForFunction(
      () => {
        const seen = ((window as unknown as { __firstStep?: { compiling: boolean; timeLeft: string[] } }).__firstStep ??= { compiling: false, timeLeft: [] });
        const phase = document.querySelector('[data-testid="train-phase"]')?.textContent ?? '';
        const shown = document.querySelector('[data-testid="train-progress"]')?.textContent ?? '';
        if (/Compiling GPU kernels…/.test(phase)) seen.compiling = true;
        if (/left/.test(shown)) seen.timeLeft.push(shown);
        const pause = document.querySelector<HTMLButtonElement>('[data-testid="train-pause"]');
        const run = document.querySelector('[data-testid="train-run"]');
        if (run?.getAttribute('data-status') !== 'training' || Number(run.getAttribute('data-step') || 0) < 1 || !pause) return false;
        pause.click();
        return true;
      },
      undefined,
      { timeout: 60_000, polling: 20 },
    );
    expect(await page.evaluate(() => (window as unknown as { __firstStep: unknown }).__firstStep)).toEqual({ compiling: true, timeLeft: [] });
    await waitForStatus(['paused'], 30_000);
    await expect.poll(async () => (await recorded()).wakeLock.map((w) => w.event), { timeout: 10_000 }).toEqual(['request']);
    const request = (await recorded()).wakeLock[0]!;
    expect(request.type).toBe('screen');
    await expect.poll(() => page.getByTestId('train-run').innerText(), { timeout: 30_000 }).toMatch(/the screen stays on while it trains/);
    const prompt = await deployAndWaitForPrompt(distNext);
    expect(await prompt.getAttribute('data-state')).toBe('deferred');
    expect(await page.getByTestId('update-deferred').innerText()).toMatch(/offered again when training ends/);
    expect(await prompt.getByRole('button', { name: 'Reload' }).count()).toBe(0);
    await shoot('update-deferred');

    // Another tab's Reload: the waiting worker is told to take over. It controls this page now, but the page stays.
    const waiting = await page.evaluate(async () => {
      const reg = await navigator.serviceWorker.getRegistration();
      if (!reg?.waiting) return false;
      reg.waiting.postMessage({ type: 'SKIP_WAITING' });
      return true;
    });
    expect(waiting).toBe(true);
    await expect.poll(async () => (await recorded()).controllerChanges, { timeout: 20_000 }).toBe(1);
    await expect.poll(() => page.getByTestId('update-prompt').innerText(), { timeout: 10_000 }).toMatch(/updated in another tab[\s\S]*until training ends/);
    expect(await page.evaluate(() => (window as unknown as { __mark?: string }).__mark)).toBe('this page, not a reloaded one');
    expect(navigations).toBe(before);
    // "Later" hides it for now.
    await prompt.getByRole('button', { name: 'Later' }).click();
    await expect.poll(() => prompt.count()).toBe(0);
    expect((await recorded()).wakeLock.map((w) => w.event)).toEqual(['request']);

    // Resume; the run finishes on this page.
    await page.getByTestId('train-resume').click();
    expect(await waitForStatus(['completed', 'failed'], 150_000)).toBe('completed');
    expect(navigations).toBe(before);
    expect(await page.evaluate(() => (window as unknown as { __mark?: string }).__mark)).toBe('this page, not a reloaded one');
    const steps = (await page.getByTestId('train-run').getAttribute('data-steps'))!.split(',').map(Number);
    expect(steps).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));

    // The wake lock was released when the run ended (not before).
    await expect.poll(async () => (await recorded()).wakeLock.map((w) => w.event), { timeout: 5_000 }).toEqual(['request', 'release']);
    expect((await recorded()).wakeLock[1]!.status).not.toBe('paused');
    expect(await page.getByTestId('train-run').innerText()).not.toMatch(/the screen stays on/);

    // One notification, through the service worker registration, naming the last step and its loss.
    const loss = await page.getByTestId('stat-loss').innerText();
    await expect.poll(async () => (await recorded()).notifications.length, { timeout: 10_000 }).toBe(1);
    const n = (await recorded()).notifications[0]!;
    expect(n).toMatchObject({ via: 'registration', title: 'Graft: training finished', tag: 'graft-training' });
    const m = /^Built-in demo: step 24 of 24, loss (\d+\.\d{3})\.$/.exec(n.body);
    expect(m, n.body).not.toBeNull();
    // The page shows the loss to 4 places, the notification to 3: the same number, rounded twice.
    expect(Math.abs(Number(m![1]) - Number(loss))).toBeLessThanOrEqual(0.00055);
    // The browser holds it (permission granted, so showNotification did not throw).
    const shown = await page.evaluate(async () => {
      const reg = await navigator.serviceWorker.getRegistration();
      return (await reg!.getNotifications({ tag: 'graft-training' })).map((x) => x.title);
    });
    expect(shown).toEqual(['Graft: training finished']);

    // The run over, the update is offered again, now with Reload, which brings the new version in.
    await prompt.waitFor({ timeout: 10_000 });
    expect(await prompt.getAttribute('data-state')).toBe('ready');
    await shoot('update-ready');
    await shoot('update-ready', { dark: true });
    expect(await page.getByTestId('version').textContent()).not.toContain('update-test');
    await Promise.all([page.waitForEvent('load', { timeout: 20_000 }), prompt.getByRole('button', { name: 'Reload' }).click()]);
    await expect.poll(() => page.getByTestId('version').textContent(), { timeout: 10_000 }).toContain('update-test');
  });

  it('releases the wake lock when a run is stopped', async () => {
    // The reloaded page (the new version) records afresh.
    await page.goto(`${server.url}#/demo`);
    await page.getByRole('heading', { level: 2, name: 'The built-in demo' }).waitFor({ timeout: 10_000 });
    await expect.poll(() => page.getByTestId('demo-train').isEnabled(), { timeout: 20_000 }).toBe(true);
    expect((await recorded()).wakeLock).toEqual([]);
    await page.getByTestId('demo-train').click();
    // Stop as soon as the run trains (the demo's 24 steps take seconds): clicked from inside the page, so that the
    // run cannot finish between seeing the button and clicking it.
    await page.waitForFunction(
      () => {
        const stop = document.querySelector<HTMLButtonElement>('[data-testid="train-stop"]');
        if (document.querySelector('[data-testid="train-run"]')?.getAttribute('data-status') !== 'training' || !stop || stop.disabled) return false;
        stop.click();
        return true;
      },
      undefined,
      { timeout: 60_000, polling: 20 },
    );
    expect((await recorded()).wakeLock[0]?.event).toBe('request');
    expect(await waitForStatus(['stopped', 'completed', 'failed'], 60_000)).toBe('stopped');
    await expect.poll(async () => (await recorded()).wakeLock.map((w) => w.event), { timeout: 5_000 }).toEqual(['request', 'release']);
    // Stopped is not finished: the notification says so.
    await expect.poll(async () => (await recorded()).notifications.map((n) => n.title), { timeout: 10_000 }).toEqual(['Graft: training stopped']);
  });
});
