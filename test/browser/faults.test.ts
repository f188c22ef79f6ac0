// Faults in the middle of a training run in the web app, in headless Chromium with WebGPU (SwiftShader without a
// GPU), on the built-in demo model and its Q&A file (a LoRA job of 8 steps that saves a checkpoint every 2):
//   (1) the GPU device is lost while a step runs: once a checkpoint is stored, the worker's device is destroyed
//       (the worker API's loseDeviceForTest, which destroys the device the run uses). The run stops with the
//       device-lost sentence on the Train screen ("The GPU device was lost during training; checkpoint-N is kept:
//       continue the run ..."), checkpoint-N is still in IndexedDB, complete, and continuing the run from the
//       error box (which makes a new device) finishes it from step N + 1 to 8;
//   (2) IndexedDB's quota runs out while a checkpoint is written: with the run paused after its first checkpoint,
//       the origin's quota is set (CDP Storage.overrideQuotaForOrigin) just above what is stored (a quarter of a
//       checkpoint free), so the next checkpoint's transaction fails with QuotaExceededError. Chromium's IndexedDB
//       keeps the space it was granted for up to 30 s, so a scratch database is written until a write is refused
//       before the quota is set. The run stops with the sentence saying how much the checkpoint needs and how much
//       is free and that the earlier checkpoint is kept; that checkpoint is still complete in IndexedDB and the
//       failed one left nothing; with the quota given back, continuing finishes the run from it. (This Chromium's
//       navigator.storage.estimate() ignores the override, so the "free" figure is the quota without it.)
// Every wait is for a state of the page, never for a time. Screenshots go to test-results/faults-*.png. Never skips.
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app-page';
import { REPO_ROOT, type LaunchedBrowser, type StaticServer } from '../helpers/browser';

const MAX_STEPS = 8;
const SAVE_STEPS = 2;

let server: StaticServer;
let browser: LaunchedBrowser;
let page: Page;
const { failWith, waitForAttr, shoot, go, demoModelWithData } = useApp('faults', (s) => ({ page, browser, server } = s));
const run = () => page.getByTestId('train-run');
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** The checkpoint rows IndexedDB holds for the latest run (read from the page), with their bytes checked. */
async function storedCheckpoints(): Promise<{ runId: string; steps: { step: number; bytes: number; complete: boolean }[] }> {
  return page.evaluate(async () => {
    const runs = await window.__graft!.engine.listRuns();
    const latest = runs.sort((a, b) => b.createdAt - a.createdAt)[0];
    if (!latest) throw new Error('no run is stored');
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open('graft');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const get = <T,>(store: string, query: IDBValidKey | IDBKeyRange, all = false) =>
      new Promise<T>((resolve, reject) => {
        const s = db.transaction(store, 'readonly').objectStore(store);
        const req = all ? s.getAll(query) : s.get(query);
        req.onsuccess = () => resolve(req.result as T);
        req.onerror = () => reject(req.error);
      });
    try {
      type Row = { step: number; files: { name: string; size: number; chunks: number }[] };
      const rows = await get<Row[]>('checkpoints', IDBKeyRange.bound([latest.id, -Infinity], [latest.id, Infinity]), true);
      const steps = [];
      for (const row of rows) {
        let bytes = 0;
        let complete = row.files.length > 0;
        for (const f of row.files) {
          let at = 0;
          for (let i = 0; i < f.chunks; i++) {
            const chunk = await get<Uint8Array | undefined>('checkpointChunks', [latest.id, row.step, f.name, i]);
            if (!chunk) complete = false;
            at += chunk?.byteLength ?? 0;
          }
          if (at !== f.size) complete = false;
          bytes += at;
        }
        steps.push({ step: row.step, bytes, complete });
      }
      return { runId: latest.id, steps };
    } finally {
      db.close();
    }
  });
}

/** In the page: writes 1 KiB to a scratch database; 'complete', or the name of the error that refused it. */
async function scratchWrite(): Promise<string> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const req = indexedDB.open('faults-test-scratch');
    req.onupgradeneeded = () => req.result.createObjectStore('s');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  try {
    const tx = db.transaction('s', 'readwrite');
    tx.objectStore('s').put(crypto.getRandomValues(new Uint8Array(1024)), 'probe');
    return await new Promise<string>((resolve) => {
      tx.oncomplete = () => resolve('complete');
      tx.onabort = () => resolve(tx.error?.name ?? 'aborted');
    });
  } finally {
    db.close();
  }
}

/** Clicks the error box's "Continue from step N" and waits for the continued run to complete from N. */
async function continueAndFinish(checkpoint: number, what: string): Promise<void> {
  await page.getByTestId('train-error').getByRole('button', { name: `Continue from step ${checkpoint}` }).click();
  await waitForAttr('[data-testid="train-run"]', 'data-status', ['training'], 60_000);
  if ((await waitForAttr('[data-testid="train-run"]', 'data-status', ['completed', 'failed'], 240_000)) === 'failed') {
    failWith(`${what} failed: ${await page.getByTestId('train-error').innerText()}`);
  }
  expect(Number(await run().getAttribute('data-resumed-from'))).toBe(checkpoint);
  // Steps 1..N came back with the checkpoint, N+1..8 are the continued run's: no gap, no repeat.
  expect((await run().getAttribute('data-steps'))!.split(',').map(Number)).toEqual(range(1, MAX_STEPS));
  expect(await page.getByTestId('train-done').innerText()).toMatch(/Saved on this device/);
}

/** Starts the job from the Train screen. */
async function start(): Promise<void> {
  await go('Train', 'Train');
  await expect.poll(() => page.getByTestId('train-start').isEnabled(), { timeout: 30_000 }).toBe(true);
  await page.getByTestId('train-start').click();
  await run().waitFor({ timeout: 30_000 });
}

describe('faults in the middle of a training run', () => {
  it('sets up a short LoRA job on the demo model that checkpoints every 2 steps', async () => {
    await demoModelWithData(join(REPO_ROOT, 'public/demo/demo_qa.json'));
    await go('Method', 'Choose a method and the settings');
    const settings: [string, string][] = [
      ['finetuning_type', 'lora'],
      ['max_steps', String(MAX_STEPS)],
      ['save_steps', String(SAVE_STEPS)],
      ['per_device_train_batch_size', '2'],
      ['gradient_accumulation_steps', '1'],
      ['cutoff_len', '64'],
      ['val_size', '0'],
      ['learning_rate', '1e-2'],
      ['lr_scheduler_type', 'constant'],
    ];
    for (const [key, value] of settings) {
      const field = page.getByTestId(`field-${key}`);
      if ((await field.getByRole('combobox').count()) > 0) await field.getByRole('combobox').selectOption(value);
      else await field.getByRole('textbox').fill(value);
    }
    await expect.poll(() => page.getByTestId('settings-form').getAttribute('data-valid'), { timeout: 10_000 }).toBe('yes');
  });

  it('(1) a GPU device lost mid-step stops the run with the device-lost sentence; continuing finishes it from the checkpoint', async () => {
    await start();
    // As soon as a checkpoint is stored and the run trains on (the next step is running), the device is destroyed:
    // called from inside the page, so that the run cannot finish between seeing the checkpoint and the call.
    await page.waitForFunction(
      () => {
        const el = document.querySelector('[data-testid="train-run"]');
        if (el?.getAttribute('data-status') !== 'training' || Number(el.getAttribute('data-checkpoint') || 0) < 1) return false;
        const w = window as unknown as { __lost?: Promise<boolean> };
        w.__lost ??= window.__graft!.engine.loseDeviceForTest();
        return true;
      },
      undefined,
      { timeout: 180_000, polling: 20 },
    );
    expect(await page.evaluate(() => (window as unknown as { __lost: Promise<boolean> }).__lost)).toBe(true);
    await waitForAttr('[data-testid="train-run"]', 'data-status', ['failed', 'completed'], 120_000);
    expect(await run().getAttribute('data-status')).toBe('failed');
    const error = page.getByTestId('train-error');
    expect(await error.getAttribute('data-code')).toBe('device-lost');
    const checkpoint = Number(await run().getAttribute('data-checkpoint'));
    expect(checkpoint).toBeGreaterThanOrEqual(SAVE_STEPS);
    expect(checkpoint % SAVE_STEPS).toBe(0);
    expect(checkpoint).toBeLessThan(MAX_STEPS);
    const text = await error.innerText();
    expect(text).toContain('The GPU stopped responding (the device was lost).');
    expect(text).toContain(`The GPU device was lost during training; checkpoint-${checkpoint} is kept: continue the run to resume from it (a new device is made)`);
    expect(text).toContain('Your checkpoints are safe');
    await shoot('device-lost');

    // The checkpoint is still in IndexedDB, every chunk of it.
    const stored = await storedCheckpoints();
    const kept = stored.steps.find((s) => s.step === checkpoint);
    expect(kept, JSON.stringify(stored)).toBeDefined();
    expect(kept!.complete).toBe(true);
    expect(kept!.bytes).toBeGreaterThan(0);

    await continueAndFinish(checkpoint, 'the run continued after the device was lost');
  }, 600_000);

  it('(2) IndexedDB quota running out during a checkpoint write stops the run with what it needs; the earlier checkpoint continues', async () => {
    const origin = new URL(server.url).origin;
    const cdp = await page.context().newCDPSession(page);
    try {
      await start();
      // Pause as soon as the first checkpoint is stored (clicked inside the page, so the run cannot save the next
      // one first); the quota is then set just above what the origin stores, with nothing being written.
      await page.waitForFunction(
        () => {
          const pause = document.querySelector<HTMLButtonElement>('[data-testid="train-pause"]');
          const el = document.querySelector('[data-testid="train-run"]');
          if (el?.getAttribute('data-status') !== 'training' || Number(el.getAttribute('data-checkpoint') || 0) < 1 || !pause) return false;
          pause.click();
          return true;
        },
        undefined,
        { timeout: 180_000, polling: 20 },
      );
      await waitForAttr('[data-testid="train-run"]', 'data-status', ['paused'], 60_000);
      await expect.poll(() => page.getByTestId('train-phase').innerText(), { timeout: 60_000 }).toMatch(/Paused/);
      const first = Number(await run().getAttribute('data-checkpoint'));
      expect(first % SAVE_STEPS).toBe(0);
      expect(first).toBeLessThan(MAX_STEPS);
      const checkpointBytes = (await storedCheckpoints()).steps.find((c) => c.step === first)?.bytes ?? 0;
      expect(checkpointBytes).toBeGreaterThan(16 * 1024);
      // Chromium's IndexedDB asks the quota manager again only once the space it was last granted runs out, which
      // it lets decay over 30 s (BucketContext::kBucketSpaceCacheTimeLimit): with the quota at 1 byte, a scratch
      // database is written until a write is refused, so the override is in force for every write after.
      await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 1 });
      await expect
        .poll(() => page.evaluate(scratchWrite), { timeout: 180_000, interval: 1000 })
        .toBe('QuotaExceededError');
      // The quota just above what is stored (the scratch database stays until the end: deleting it now would free
      // its space after the usage is read): a quarter of the checkpoint's size is free.
      const usage = await page.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0);
      expect(usage).toBeGreaterThan(0);
      const quota = usage + Math.floor(checkpointBytes / 4);
      await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: quota });
      // The quota manager holds the override (this Chromium's navigator.storage.estimate() still reports the quota
      // without it, so the message's "free" figure is that one's).
      expect(await cdp.send('Storage.getUsageAndQuota', { origin })).toMatchObject({ quota, overrideActive: true });

      await page.getByTestId('train-resume').click();
      await waitForAttr('[data-testid="train-run"]', 'data-status', ['failed', 'completed'], 180_000);
      if ((await run().getAttribute('data-status')) !== 'failed') failWith(`the run with the quota at ${quota} bytes (${usage} used) completed instead of failing`);
      const error = page.getByTestId('train-error');
      const text = await error.innerText();
      expect(await error.getAttribute('data-code'), text).toBe('quota');
      expect(text).toContain('Storage is full.');
      const failedAt = first + SAVE_STEPS;
      expect(text).toMatch(
        new RegExp(
          `There is not enough storage space to save checkpoint-${failedAt}: it needs [\\d.]+ (B|KiB|MiB|GiB) and [\\d.]+ (B|KiB|MiB|GiB) is free; ` +
            `checkpoint-${first}, the latest complete checkpoint, is kept: free at least that much`,
        ),
      );
      expect(Number(await run().getAttribute('data-checkpoint'))).toBe(first);
      await shoot('quota');

      // The earlier checkpoint is whole, and the failed one left nothing behind.
      const stored = await storedCheckpoints();
      expect(stored.steps.map((s) => s.step), JSON.stringify(stored)).toEqual([first]);
      expect(stored.steps[0]!.complete).toBe(true);

      // The quota back as it was: continuing finishes the run from the earlier checkpoint.
      await cdp.send('Storage.overrideQuotaForOrigin', { origin });
      await continueAndFinish(first, 'the run continued after the quota ran out');
    } finally {
      await cdp.send('Storage.overrideQuotaForOrigin', { origin }).catch(() => undefined);
      await cdp.detach().catch(() => undefined);
      await page.evaluate(() => void indexedDB.deleteDatabase('faults-test-scratch')).catch(() => undefined);
    }
  }, 600_000);
});
