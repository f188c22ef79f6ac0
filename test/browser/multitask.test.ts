// A multi-task run in the web app, in headless Chromium with WebGPU (SwiftShader without a GPU), on the built-in
// demo model: the Data screen's multi-task sample (records with a `task` field) trains, and the Train screen draws
// one loss curve per task with its weight. The table beside the chart must hold, for every task, the last
// task_loss/<task>, task_weight/<task> and eval_task_loss/<task> of the run's records, which the test reads back
// from the training report the Export screen downloads (metrics.json). Screenshots go to
// test-results/multitask-*.png. Never skips.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app-page';
import { REPO_ROOT, type LaunchedBrowser, type StaticServer } from '../helpers/browser';

const SAMPLE = join(REPO_ROOT, 'public/samples/multitask.json');
const TASKS = [...new Set((JSON.parse(readFileSync(SAMPLE, 'utf8')) as { task: string }[]).map((r) => r.task))].sort();

let server: StaticServer;
let browser: LaunchedBrowser;
let page: Page;
const { failWith, shoot, go, demoModelWithData } = useApp('multitask', (s) => ({ page, browser, server } = s));

describe('a multi-task run in the app', () => {
  it('draws a loss curve per task, and its table holds the last values of the run’s records', async () => {
    await demoModelWithData(SAMPLE);
    await go('Method', 'Choose a method and the settings');
    await page.getByTestId('field-finetuning_type').getByRole('combobox').selectOption('full');
    for (const [key, value] of [['max_steps', '6'], ['per_device_train_batch_size', '4'], ['gradient_accumulation_steps', '1'], ['cutoff_len', '128'], ['learning_rate', '3e-3'], ['val_size', '3'], ['logging_steps', '3']] as const) {
      await page.getByTestId(`field-${key}`).getByRole('textbox').fill(value);
    }
    await page.getByTestId('field-eval_strategy').getByRole('combobox').selectOption('steps');
    await expect.poll(() => page.getByTestId('settings-form').getAttribute('data-valid')).toBe('yes');
    await go('Train', 'Train');
    await expect.poll(() => page.getByTestId('train-start').isEnabled(), { timeout: 15_000 }).toBe(true);
    await page.getByTestId('train-start').click();
    // The per-task chart appears with the first step.
    await page.getByTestId('task-chart').waitFor({ timeout: 60_000 });
    try {
      await page.waitForFunction(() => ['completed', 'failed'].includes(document.querySelector('[data-testid="train-run"]')?.getAttribute('data-status') ?? ''), undefined, { timeout: 120_000 });
    } catch {
      failWith(`the run did not end; it says: ${await page.getByTestId('train-run').innerText()}`);
    }
    if ((await page.getByTestId('train-run').getAttribute('data-status')) === 'failed') failWith(`the run failed: ${await page.getByTestId('train-error').innerText()}`);
    expect(await page.getByTestId('task-chart').getAttribute('data-tasks')).toBe(TASKS.join(','));
    // The chart is drawn: uPlot's canvas with a legend entry per task series (loss, validation, weight).
    expect(await page.getByTestId('task-chart').locator('canvas').count()).toBeGreaterThan(0);
    for (const t of TASKS) expect(await page.getByTestId('task-chart').locator('.u-legend').innerText()).toContain(`${t} weight`);
    await shoot('train');
    await shoot('train', { dark: true });

    // The run's records, from the training report.
    await page.getByTestId('train-done').getByRole('button', { name: 'Export it' }).click();
    await page.getByRole('heading', { level: 2, name: 'Export' }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-report').click()]);
    const zip = unzipSync(new Uint8Array(readFileSync((await download.path())!)));
    const metrics = JSON.parse(new TextDecoder().decode(zip[Object.keys(zip).find((n) => n.endsWith('metrics.json'))!])) as {
      log_history: Record<string, number>[];
      eval_history: Record<string, number>[];
    };
    expect(metrics.log_history.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    const lastOf = (rows: Record<string, number>[], key: string) => {
      for (let i = rows.length - 1; i >= 0; i--) if (typeof rows[i]![key] === 'number' && Number.isFinite(rows[i]![key])) return rows[i]![key];
      return undefined;
    };
    // Every step reports a weight for every task.
    for (const r of metrics.log_history) for (const t of TASKS) expect(typeof r[`task_weight/${t}`]).toBe('number');

    await go('Train', 'Train');
    const table = page.getByTestId('task-table');
    for (const t of TASKS) {
      const cells = await table.getByRole('row', { name: new RegExp(`^${t}\\s`) }).getByRole('cell').allInnerTexts();
      const loss = lastOf(metrics.log_history, `task_loss/${t}`);
      const weight = lastOf(metrics.log_history, `task_weight/${t}`);
      const evalLoss = lastOf(metrics.eval_history, `eval_task_loss/${t}`);
      expect(cells, t).toEqual([loss === undefined ? '—' : loss.toFixed(4), weight === undefined ? '—' : weight.toFixed(3), evalLoss === undefined ? '—' : evalLoss.toFixed(4)]);
    }
    // At least one task has a loss in the records (the table is not all dashes).
    expect(TASKS.some((t) => lastOf(metrics.log_history, `task_loss/${t}`) !== undefined)).toBe(true);
    expect(TASKS.some((t) => lastOf(metrics.eval_history, `eval_task_loss/${t}`) !== undefined)).toBe(true);
  });
});
