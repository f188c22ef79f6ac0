// What the browser tests do on the app's page, written once: fail with the browser console in the message, wait
// for an attribute to take one of some values, take screenshots (light, and dark on request), go to a screen by
// the step navigation, wait for a training run to end, and deploy the run's second build to get the update prompt.
//
// A test file keeps its page, browser and server in variables that beforeAll fills; useApp starts the app session
// for the file (startApp in beforeAll, stopApp in afterAll) and hands it to the file's own variables:
//
//   let page: Page; let browser: LaunchedBrowser; let server: StaticServer;
//   const { failWith, waitForAttr, shoot, go } = useApp('bench', (s) => ({ page, browser, server } = s));
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { expectWebGpuAdapter, REPO_ROOT, startApp, stopApp, type AppSession, type LaunchedBrowser, type StaticServer } from './browser';

/** Where the screenshots go (a person looks at them; nothing reads them back). */
export const RESULTS = join(REPO_ROOT, 'test-results');

export interface PageSession {
  page: Page;
  browser: LaunchedBrowser;
  server: StaticServer;
}

export interface PageToolOptions {
  /**
   * Screenshots dismiss the "ready to work offline" toast first (it floats over the page), default true; with
   * keepFocus the keyboard focus goes back where it was after the click.
   */
  dismissToast?: boolean;
  keepFocus?: boolean;
  /** The file's own failure (default: the message and the last 40 lines of the browser console). */
  failWith?: (message: string) => never;
}

export interface PageTools {
  failWith(message: string): never;
  /** Waits until the first element matching `selector` has `attr` in `values`; returns the value. */
  waitForAttr(selector: string, attr: string, values: string[], timeout: number): Promise<string>;
  /** A full-page screenshot, test-results/<prefix>-<name>.png (and -dark with { dark: true }). */
  shoot(name: string, options?: { dark?: boolean }): Promise<void>;
  /** Follows the step navigation to `screen` and waits for its heading. */
  go(screen: string, heading: string): Promise<void>;
  /** Waits (up to `timeout`) for the Train screen's run to complete; fails with its error when it failed. */
  trainedOrFail(what: string, timeout?: number): Promise<void>;
  /** Serves `nextBuild` in place of the app, asks the service worker to update, and waits for the update prompt. */
  deployAndWaitForPrompt(nextBuild: string): Promise<Locator>;
  /**
   * Opens the app (failing when it finds no WebGPU adapter), puts the built-in demo model on the device with the
   * demo button, chooses it on the Model screen and opens `file` on the Data screen; ends on the Data screen.
   */
  demoModelWithData(file: string): Promise<void>;
}

export function pageTools(session: () => PageSession, prefix: string, options: PageToolOptions = {}): PageTools {
  const failWith =
    options.failWith ??
    ((message: string): never => {
      throw new Error(`${message}\n\nBrowser console:\n  ${session().browser.logs.slice(-40).join('\n  ')}`);
    });

  const waitForAttr = async (selector: string, attr: string, values: string[], timeout: number): Promise<string> => {
    const { page } = session();
    try {
      await page.waitForFunction(
        ({ selector, attr, values }) => values.includes(document.querySelector(selector)?.getAttribute(attr) ?? ''),
        { selector, attr, values },
        { timeout },
      );
    } catch {
      const now = await page.locator(selector).first().getAttribute(attr).catch(() => null);
      failWith(`${selector} ${attr} did not become ${values.join(' or ')} within ${timeout} ms (it is ${now}); it says: ${await page.locator(selector).first().innerText().catch(() => '?')}`);
    }
    return (await page.locator(selector).first().getAttribute(attr))!;
  };

  const go = async (screen: string, heading: string): Promise<void> => {
    const { page } = session();
    await page.getByRole('navigation', { name: 'Steps' }).getByRole('link', { name: new RegExp(`^\\d?\\s*${screen}`) }).click();
    await page.getByRole('heading', { level: 2, name: heading }).waitFor({ timeout: 10_000 });
  };

  return {
    failWith,
    waitForAttr,

    async shoot(name, shot = {}) {
      const { page } = session();
      mkdirSync(RESULTS, { recursive: true });
      const toast = page.getByTestId('offline-ready');
      if (options.dismissToast !== false && (await toast.isVisible())) {
        const focused = options.keepFocus ? await page.evaluateHandle(() => document.activeElement) : undefined;
        await toast.getByRole('button', { name: 'OK' }).click();
        await focused?.evaluate((el) => (el as HTMLElement | null)?.focus());
      }
      if (shot.dark) await page.emulateMedia({ colorScheme: 'dark' });
      await page.screenshot({ path: join(RESULTS, `${prefix}-${name}${shot.dark ? '-dark' : ''}.png`), fullPage: true });
      if (shot.dark) await page.emulateMedia({ colorScheme: 'light' });
    },

    go,

    async trainedOrFail(what, timeout = 120_000) {
      if ((await waitForAttr('[data-testid="train-run"]', 'data-status', ['completed', 'failed'], timeout)) === 'failed') {
        failWith(`${what} failed: ${await session().page.getByTestId('train-error').innerText()}`);
      }
    },

    async demoModelWithData(file) {
      const { page, browser, server } = session();
      await page.goto(server.url);
      await expectWebGpuAdapter(page, browser, failWith);
      await page.getByTestId('demo-button').click();
      await expect.poll(() => page.getByTestId('demo-pairs').locator('li').count(), { timeout: 60_000 }).toBeGreaterThan(0);
      await go('Model', 'Choose a model');
      await page.getByRole('button', { name: 'Choose graft/demo-tiny-llama' }).click();
      await go('Data', 'Bring a dataset');
      await page.getByLabel('Choose a dataset file').setInputFiles(file);
      await page.getByTestId('dataset-summary').waitFor({ timeout: 30_000 });
    },

    async deployAndWaitForPrompt(nextBuild) {
      const { page, server } = session();
      server.setRoot(nextBuild);
      await page.evaluate(async () => {
        const reg = await navigator.serviceWorker.getRegistration();
        await reg?.update();
      });
      const prompt = page.getByTestId('update-prompt');
      try {
        await prompt.waitFor({ timeout: 20_000 });
      } catch {
        failWith('No update prompt within 20 s after a new build was deployed.');
      }
      return prompt;
    },
  };
}

/**
 * The file's app session: startApp(options) in beforeAll, handed to `assign`, and stopApp in afterAll; the tools
 * work on it (screenshots named test-results/<prefix>-*.png).
 */
export function useApp(prefix: string, assign: (session: AppSession) => void, options: PageToolOptions & { hub?: boolean } = {}): PageTools {
  let app: AppSession | undefined;
  beforeAll(async () => {
    app = await startApp({ hub: options.hub ?? false });
    assign(app);
  }, 90_000);
  afterAll(() => stopApp(app));
  return pageTools(() => app!, prefix, options);
}
