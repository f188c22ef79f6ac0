// The Evaluate screen in headless Chromium with WebGPU (SwiftShader without a GPU), on the built-in demo model and
// its Q&A file: a LoRA run of 2 steps holds out 2 of the 6 records (val_size 2, set on the Method screen); the
// Evaluate screen answers them with the base and the run's adapter (greedy, in the worker, jieba's WebAssembly
// loaded there) and shows BLEU-4, ROUGE-1/2/L and tokens/s for both, the answers beside the reference, and saves
// generated_predictions.jsonl and predict_results.json for each side. The saved files parse with LLaMA-Factory's
// fields, their metrics are the table's, and src/eval/metrics.ts with the command line's jieba (Node) gives the
// same BLEU-4 and ROUGE on the saved answers. Screenshots go to test-results/evaluate-*.png. Never skips.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { jiebaCut } from '../../src/eval/jieba-node';
import { exampleScores, meanScores } from '../../src/eval/metrics';
import { useApp } from '../helpers/app-page';
import { REPO_ROOT, type LaunchedBrowser, type StaticServer } from '../helpers/browser';

const DEMO = JSON.parse(readFileSync(join(REPO_ROOT, 'public/demo/demo_qa.json'), 'utf8')) as { instruction: string; output: string }[];
const METRICS = ['predict_bleu-4', 'predict_rouge-1', 'predict_rouge-2', 'predict_rouge-l', 'predict_tokens_per_second'];

let server: StaticServer;
let browser: LaunchedBrowser;
let page: Page;
const { failWith, waitForAttr, shoot, go, trainedOrFail, demoModelWithData } = useApp('evaluate', (s) => ({ page, browser, server } = s));

/** Clicks a download button; the saved file's text. */
async function save(testId: string): Promise<{ name: string; text: string }> {
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.getByTestId(testId).click()]);
  return { name: download.suggestedFilename(), text: readFileSync((await download.path())!, 'utf8') };
}

describe('the Evaluate screen', () => {
  it('trains a short LoRA run on the demo model that holds out 2 records', async () => {
    await demoModelWithData(join(REPO_ROOT, 'public/demo/demo_qa.json'));
    await go('Method', 'Choose a method and the settings');
    for (const [key, value] of [['finetuning_type', 'lora'], ['max_steps', '2'], ['per_device_train_batch_size', '2'], ['gradient_accumulation_steps', '1'], ['cutoff_len', '64'], ['val_size', '2'], ['learning_rate', '1e-2']]) {
      const field = page.getByTestId(`field-${key}`);
      if ((await field.getByRole('combobox').count()) > 0) await field.getByRole('combobox').selectOption(value!);
      else await field.getByRole('textbox').fill(value!);
    }
    await expect.poll(() => page.getByTestId('settings-form').getAttribute('data-valid'), { timeout: 15_000 }).toBe('yes');
    await go('Train', 'Train');
    await expect.poll(() => page.getByTestId('train-start').isEnabled(), { timeout: 30_000 }).toBe(true);
    await page.getByTestId('train-start').click();
    await page.getByTestId('train-run').waitFor({ timeout: 30_000 });
    await trainedOrFail('the LoRA run', 240_000);
  }, 420_000);

  it('answers the run’s held-out records with the base and the adapter, and shows the metric table and the answers', async () => {
    await go('Evaluate', 'Evaluate on held-out records');
    await expect.poll(() => page.getByTestId('evaluate-pick').inputValue(), { timeout: 15_000 }).toMatch(/^adapter:/);
    await expect.poll(() => page.getByTestId('evaluate-set-run').isChecked(), { timeout: 15_000 }).toBe(true);
    await page.getByTestId('evaluate-max-new').fill('8');
    await page.getByTestId('evaluate-run').click();
    if ((await waitForAttr('[data-testid="evaluate"]', 'data-status', ['done', 'error'], 240_000)) === 'error') {
      failWith(`the evaluation failed: ${await page.getByTestId('evaluate-error').innerText()}`);
    }
    const table = page.getByTestId('evaluate-metrics');
    for (const key of METRICS) {
      for (const side of ['base', 'tuned']) {
        const v = Number(await table.locator(`tr[data-metric="${key}"] td[data-side="${side}"]`).getAttribute('data-value'));
        expect(Number.isFinite(v), `${key} ${side}`).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
      }
    }
    expect(await table.locator('thead th').allInnerTexts()).toEqual(['Metric', 'Base: graft/demo-tiny-llama', expect.stringMatching(/^Tuned: /)]);
    const examples = page.getByTestId('evaluate-example');
    expect(await examples.count()).toBe(2);
    expect(await page.getByTestId('evaluate-answer-tuned').count()).toBe(2);
    await shoot('results');
  }, 300_000);

  it('saves generated_predictions.jsonl and predict_results.json for each side, in LLaMA-Factory’s format and with the table’s numbers', async () => {
    const asked = new Set(DEMO.map((d) => d.output));
    for (const side of ['base', 'tuned']) {
      const predictions = await save(`evaluate-download-${side}-predictions`);
      expect(predictions.name).toBe('generated_predictions.jsonl');
      const lines = predictions.text.split('\n');
      expect(lines.pop()).toBe('');
      const rows = lines.map((l) => JSON.parse(l) as { prompt: string; predict: string; label: string });
      expect(rows).toHaveLength(2);
      for (const row of rows) {
        expect(Object.keys(row)).toEqual(['prompt', 'predict', 'label']);
        expect(row.prompt).toMatch(/^[\s\S]+$/);
        expect(asked.has(row.label.trim())).toBe(true);
      }
      const results = await save(`evaluate-download-${side}-results`);
      expect(results.name).toBe('predict_results.json');
      expect(results.text).toMatch(/^\{\n {4}"predict_bleu-4": /);
      const metrics = JSON.parse(results.text) as Record<string, number>;
      expect(Object.keys(metrics)).toEqual([
        'predict_bleu-4', 'predict_rouge-1', 'predict_rouge-2', 'predict_rouge-l', 'predict_runtime', 'predict_samples_per_second', 'predict_steps_per_second', 'predict_tokens_per_second',
      ]);
      for (const key of METRICS) {
        expect(Number(await page.getByTestId('evaluate-metrics').locator(`tr[data-metric="${key}"] td[data-side="${side}"]`).getAttribute('data-value'))).toBe(metrics[key]);
      }
      // The browser's jieba (WebAssembly in the worker) segments as the command line's does.
      const want = meanScores(rows.map((r) => exampleScores(r.predict, r.label, jiebaCut)));
      for (const k of ['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l'] as const) expect(metrics[`predict_${k}`], `${side} ${k}`).toBe(want[k]);
    }
  }, 120_000);
});
