// The first half of the journey in the web app, end to end in headless Chromium with WebGPU (SwiftShader without
// a GPU), against the local test hub (test/helpers/test-hub.ts):
//   Start     what the browser offers, the demo slot, keyboard: skip link and the main action;
//   Model     the built-in list with sizes and memory, the fixture model downloaded from the test hub and chosen;
//   Data      a JSONL file with broken lines (bad JSON, a missing field, an empty answer): problems by line, the
//             rest counted; a fix re-validates; the built-in alpaca sample: token statistics and the encoded view
//             of record 1 equal what src/data computes in Node with the same tokenizer and template;
//   Method    the guide's recommendation for scripted answers (equal to recommendMethod in Node), an invalid
//             setting shows its error next to the field, the job YAML; a reload keeps model, dataset and settings.
// Screenshots of each screen (light and dark, and the Data screen on a phone) go to test-results/journey-*.png.
// Never skips: without Chromium or WebGPU the test fails and says why.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { encodeConversation, encodeDataset } from '../../src/data/encode';
import { normaliseRecord } from '../../src/data/normalize';
import { parseDatasetText } from '../../src/data/parse';
import { DEFAULT_ANSWERS, recommendMethod, type GuideAnswers } from '../../src/ui/method-guide';
import { RESULTS, useApp } from '../helpers/app-page';
import { REPO_ROOT, expectWebGpuAdapter, type LaunchedBrowser, type StaticServer } from '../helpers/browser';
import { FIXTURE_REPO, type TestHub } from '../helpers/test-hub';
import { fixtureTemplate, fixtureTokenizer } from '../data/fixture';

const SAMPLE = readFileSync(join(REPO_ROOT, 'public/samples/graft_alpaca.json'), 'utf8');

/** A JSON Lines file with a bad JSON line (2), a missing field (4) and an empty answer (5). */
/** Whether the navigation marks a step done (✓, and "(done)" for screen readers). */
const marked = async (id: string): Promise<boolean> => ((await page.getByTestId(`nav-${id}`).textContent()) ?? '').includes('(done)');

const BROKEN = [
  '{"instruction": "What is Graft?", "input": "", "output": "A fine-tuning app in the browser."}',
  '{"instruction": "Broken line", "output": ',
  '{"instruction": "Say hi", "input": "", "output": "Hi!"}',
  '{"instruction": "No answer field here", "input": ""}',
  '{"instruction": "Empty answer", "input": "", "output": ""}',
  '{"instruction": "Count to two", "input": "", "output": "One, two."}',
].join('\n');

let server: StaticServer;
let browser: LaunchedBrowser;
let page: Page;
let hub: TestHub;
const { failWith, waitForAttr, shoot, go } = useApp('journey', (s) => {
  ({ page, browser, server } = s);
  hub = s.hub!;
}, { hub: true, keepFocus: true });

describe('the journey: start, model, data, method', () => {
  it('Start: says what Graft does and what this browser offers; keyboard reaches the main action', async () => {
    await page.goto(server.url);
    await page.getByRole('heading', { level: 1, name: 'Graft' }).waitFor({ timeout: 10_000 });
    await page.getByRole('heading', { level: 2, name: 'Fine-tune a language model in your browser' }).waitFor();
    await expectWebGpuAdapter(page, browser, failWith);
    const offers = page.getByTestId('browser-offers');
    await expect.poll(() => offers.innerText()).toMatch(/WebGPU\s+yes/);
    expect(await offers.innerText()).toMatch(/shader-f16/);
    expect(await offers.innerText()).toMatch(/Largest buffer/);
    await expect.poll(() => page.getByTestId('start-storage').innerText()).toMatch(/used/);
    // The demo slot: its button once a demo screen is registered, "coming" until then (never a fake demo).
    expect((await page.getByTestId('demo-button').count()) + (await page.getByTestId('demo-coming').count())).toBe(1);
    // The self-test finishes before the screenshots, so they show the final state.
    await waitForAttr('[data-testid="selftest"]', 'data-status', ['passed', 'failed', 'error'], 45_000);

    // Keyboard: the first Tab reaches the skip link, which moves focus to the content; the next Tab the main action.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Start: choose a model');
    // Focus is visible: an outline on the focused button.
    expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).not.toBe('none');
    await shoot('start');
    await shoot('start', { dark: true });
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 2, name: 'Choose a model' }).waitFor();
    // A new screen puts the focus on its heading.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('screen-title');
  });

  it('Model: lists browser-suited models with sizes and memory; downloads the fixture from the test hub and chooses it', async () => {
    const list = page.getByTestId('model-list');
    const builtIn = ['HuggingFaceTB/SmolLM2-135M-Instruct', 'HuggingFaceTB/SmolLM2-360M-Instruct', 'Qwen/Qwen2.5-0.5B-Instruct', 'openai-community/gpt2'];
    for (const repo of builtIn) {
      const row = list.locator(`[data-testid="model-choice"][data-repo="${repo}"]`);
      await expect.poll(() => row.locator('[data-testid="model-size"]').innerText().catch(() => ''), { timeout: 10_000 }).toMatch(/about \d+ MB|about 1\.0 GB/);
      expect(await row.locator('[data-testid="fit-lora"]').innerText()).toMatch(/GiB|MiB/);
      expect(await row.locator('[data-testid="fit-full"]').getAttribute('data-level')).toMatch(/fits|tight|no/);
    }
    expect(await list.locator('[data-repo="HuggingFaceTB/SmolLM2-135M-Instruct"] [data-testid="model-size"]').innerText()).toBe('about 271 MB');
    // The fit explanation says WebGPU does not tell the GPU's memory.
    await page.getByRole('button', { name: 'How is “fits” judged?' }).click();
    expect(await page.getByRole('note').innerText()).toMatch(/WebGPU does not tell/);

    // Point the app at the test hub and download the fixture model.
    await page.locator('details.settings summary').click();
    await page.getByLabel('Hub address').fill(hub.endpoint);
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.getByTestId('settings-note').textContent()).toContain(hub.endpoint);
    // "Check size" describes a model that is not downloaded from its config and weight headers (Range requests).
    await page.getByLabel('Model id on the hub').fill(FIXTURE_REPO);
    hub.clearRequests();
    await page.getByRole('button', { name: 'Check size' }).click();
    const described = list.locator(`[data-testid="model-choice"][data-repo="${FIXTURE_REPO}"]`);
    await expect.poll(() => described.locator('[data-testid="model-size"]').innerText().catch(() => ''), { timeout: 10_000 }).toMatch(/^\d+ kB$/);
    expect(await described.getAttribute('data-from')).toBe('hub');
    expect(await described.locator('[data-testid="model-status"]').innerText()).toBe('Not downloaded');
    const weights = hub.requestsFor('model.safetensors', { stage: 'cdn', method: 'GET' });
    expect(weights.length).toBeGreaterThan(0);
    expect(weights.every((r) => r.range?.startsWith('bytes=0-') && r.status === 206)).toBe(true);
    // The navigation marks Model done only for a chosen model on this device.
    expect(await marked('model')).toBe(false);
    await page.getByRole('button', { name: 'Download', exact: true }).click();
    expect(await waitForAttr('[data-testid="download"]', 'data-status', ['done', 'error'], 30_000)).toBe('done');

    // It joins the list, described from the device, and can be chosen.
    const fixture = list.locator(`[data-testid="model-choice"][data-repo="${FIXTURE_REPO}"]`);
    await expect.poll(() => fixture.getAttribute('data-from'), { timeout: 10_000 }).toBe('device');
    await expect.poll(() => fixture.locator('[data-testid="model-size"]').innerText().catch(() => '')).toMatch(/^\d+ kB$/);
    expect(await fixture.locator('[data-testid="model-status"]').innerText()).toBe('On this device');
    await page.getByRole('button', { name: `Choose ${FIXTURE_REPO}` }).click();
    expect(await page.getByTestId('chosen-model').getAttribute('data-repo')).toBe(FIXTURE_REPO);
    expect(await page.getByRole('button', { name: `Choose ${FIXTURE_REPO}` }).getAttribute('aria-pressed')).toBe('true');
    await expect.poll(() => marked('model')).toBe(true);
    await shoot('model');
    await shoot('model', { dark: true });
  });

  it('Data: a JSONL file with broken lines lists its problems by line and counts the rest; a fix re-validates', async () => {
    await go('Data', 'Bring a dataset');
    // Keyboard: from the screen's heading, the next Tab is the file picker (its label is the visible button).
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('screen-title');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('dataset-file');
    expect(await page.evaluate(() => getComputedStyle(document.querySelector('.file-button')!).outlineStyle)).not.toBe('none');
    // A file without a record to train on is not a done Data step.
    await page.getByLabel('Choose a dataset file').setInputFiles({ name: 'unusable.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from('{"instruction": "No answer here."}\n') });
    await expect.poll(() => page.getByTestId('dataset-summary').getAttribute('data-valid').catch(() => ''), { timeout: 15_000 }).toBe('0');
    expect(await marked('data')).toBe(false);
    await page.getByLabel('Choose a dataset file').setInputFiles({ name: 'broken.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(BROKEN) });
    await expect.poll(() => page.getByTestId('dataset-summary').getAttribute('data-problems'), { timeout: 15_000 }).toBe('3');
    const summary = page.getByTestId('dataset-summary');
    expect(await summary.getAttribute('data-valid')).toBe('3');
    await expect.poll(() => marked('data')).toBe(true);
    expect(await summary.getAttribute('data-format')).toBe('alpaca');
    expect(await page.getByTestId('dataset-counts').innerText()).toMatch(/3 records to train on, 3 problems/);
    const problems = page.getByTestId('problem');
    expect(await problems.evaluateAll((els) => els.map((e) => e.getAttribute('data-line')))).toEqual(['2', '4', '5']);
    const texts = await problems.allInnerTexts();
    expect(texts[0]).toMatch(/^line 2: not valid JSON/);
    expect(texts[1]).toMatch(/^line 4: "output" is missing/);
    expect(texts[2]).toMatch(/^line 5: "output" is empty/);
    // The same problems as the data layer reports in Node.
    expect(parseDatasetText(BROKEN, 'broken.jsonl').problems.map((p) => p.line)).toEqual([2, 4, 5]);

    // Fix line 4: add its answer; the worker checks it again.
    await page.getByRole('button', { name: 'Fix line 4' }).click();
    const editor = page.getByTestId('record-editor');
    expect(await editor.getByTestId('editor-status').innerText()).toMatch(/"output" is missing/);
    await editor.getByLabel('Answer').fill('Here it is.');
    await editor.getByRole('button', { name: 'Save and check' }).click();
    await expect.poll(() => editor.getByTestId('editor-status').innerText()).toMatch(/^Valid \(edited\)/);
    await expect.poll(() => summary.getAttribute('data-valid')).toBe('4');
    expect(await summary.getAttribute('data-problems')).toBe('2');
    // Token statistics need the chosen model, which is downloaded: they are there.
    expect(await waitForAttr('[data-testid="token-stats"]', 'data-status', ['done', 'error'], 20_000)).toBe('done');
    await shoot('data-problems');
  });

  it('Data: the built-in alpaca sample gives token statistics and an encoded view equal to src/data in Node', async () => {
    await page.getByRole('button', { name: 'Graft Q&A (alpaca)' }).click();
    await expect.poll(() => page.getByTestId('dataset-summary').getAttribute('data-valid'), { timeout: 15_000 }).toBe('24');
    expect(await page.getByTestId('dataset-format').innerText()).toMatch(/^alpaca/);
    expect(await page.getByTestId('dataset-summary').getAttribute('data-problems')).toBe('0');
    expect(await page.getByTestId('record-row').count()).toBe(20); // the first page

    // Statistics with the fixture's tokenizer and template, cutoff_len 512 (the browser default).
    expect(await waitForAttr('[data-testid="token-stats"]', 'data-status', ['done', 'error'], 20_000)).toBe('done');
    const tokenizer = fixtureTokenizer();
    const template = fixtureTemplate();
    const records = parseDatasetText(SAMPLE, 'graft_alpaca.json').records;
    const node = encodeDataset(records, tokenizer, template, { cutoffLen: 512 }).stats;
    const stats = page.getByTestId('token-stats');
    expect(Number(await stats.getAttribute('data-tokens'))).toBe(node.tokens);
    expect(Number(await stats.getAttribute('data-targets'))).toBe(node.targetTokens);
    expect(Number(await stats.getAttribute('data-truncated'))).toBe(node.truncatedExamples);
    expect(node.tokens).toBeGreaterThan(node.targetTokens);
    expect(await page.getByTestId('stats-text').innerText()).toContain(`${node.tokens.toLocaleString('en-US')} tokens`);

    // The encoded view of record 1: trained and masked tokens, in the DOM and in words.
    await page.getByRole('button', { name: 'Show the tokens of row 1', exact: true }).click();
    const view = page.getByTestId('encoded-view');
    await view.waitFor({ timeout: 15_000 });
    const first = normaliseRecord(JSON.parse(SAMPLE)[0]);
    if (!first.ok) throw new Error(first.reason);
    const enc = encodeConversation(first.conversation, tokenizer, template, { cutoffLen: 512 });
    const trained = enc.labels.filter((l) => l !== -100).length;
    const masked = enc.labels.length - trained;
    expect(Number(await view.getAttribute('data-trained'))).toBe(trained);
    expect(Number(await view.getAttribute('data-masked'))).toBe(masked);
    expect(await view.locator('[data-testid="token"][data-trained="true"]').count()).toBe(trained);
    expect(await view.locator('[data-testid="token"][data-trained="false"]').count()).toBe(masked);
    expect(await view.locator('[data-testid="token"]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-id'))))).toEqual(enc.inputIds);
    const counts = await view.getByTestId('encoded-counts').innerText();
    expect(counts).toContain(`${trained} trained tokens`);
    expect(counts).toContain(`${masked} masked tokens`);
    // Told apart for screen readers too: each run of tokens starts with its kind in words.
    const spoken = await view.locator('.segment .sr-only').allTextContents();
    expect(spoken[0]).toMatch(/^Masked \(context only\), \d+ tokens:/);
    expect(spoken.some((s) => /^Trained, \d+ tokens?:/.test(s))).toBe(true);
    expect(await view.getByRole('list', { name: 'Legend' }).innerText()).toMatch(/trained.*\n?.*masked/s);
    await shoot('data');
    await shoot('data', { dark: true });
    await view.screenshot({ path: join(RESULTS, 'journey-encoded-view.png') });

    // A phone-sized viewport.
    await page.setViewportSize({ width: 390, height: 844 });
    await shoot('data-phone');
    await page.setViewportSize({ width: 1100, height: 900 });
  });

  it('Method: the guide recommends as recommendMethod does; an invalid setting shows its error; a reload keeps everything', async () => {
    await go('Method', 'Choose a method and the settings');
    const answers: GuideAnswers = { ...DEFAULT_ANSWERS, dataSize: 'hundreds', labels: 'pairs', domain: 'far', changesDaily: false, strictFormat: true, severalTasks: false };
    const labels: Record<string, string> = { hundreds: '100 to 10,000', pairs: 'An input and the answer I want', far: 'Far: a new language, notation or code it rarely saw' };
    await page.getByTestId('q-dataSize').getByLabel(labels.hundreds!).check();
    await page.getByTestId('q-labels').getByLabel(labels.pairs!).check();
    await page.getByTestId('q-domain').getByLabel(labels.far!).check();
    await page.getByTestId('q-changesDaily').getByLabel('No', { exact: true }).check();
    await page.getByTestId('q-strictFormat').getByLabel('Yes', { exact: true }).check();
    const expected = recommendMethod(answers);
    const advice = page.getByTestId('recommendation');
    await expect.poll(() => advice.getAttribute('data-rule')).toBe(expected.rule);
    expect(await advice.getAttribute('data-method')).toBe(expected.primary);
    expect(expected).toMatchObject({ primary: 'lora', rule: 'lora-far' });
    expect(await advice.innerText()).toMatch(/LoRA[\s\S]*higher rank \(16\)/);
    // Retrieval when the facts change daily.
    await page.getByTestId('q-changesDaily').getByLabel('Yes', { exact: true }).check();
    await expect.poll(() => advice.getAttribute('data-method')).toBe(recommendMethod({ ...answers, changesDaily: true }).primary);
    expect(await advice.getAttribute('data-method')).toBe('rag');
    await page.getByTestId('q-changesDaily').getByLabel('No', { exact: true }).check();
    await expect.poll(() => advice.getAttribute('data-method')).toBe('lora');
    await page.getByRole('button', { name: 'Use these settings' }).click();
    await expect.poll(() => page.getByLabel('LoRA rank (r)').inputValue()).toBe('16');
    // Every method has its memory for the chosen (stored) model.
    await expect.poll(() => page.getByTestId('method-options').locator('tbody tr').count()).toBe(7);
    await expect.poll(() => page.getByTestId('method-options').locator('tr[data-method="full"] td').last().innerText()).toMatch(/MiB|GiB/);

    // An invalid value: the error next to its field, named by the setting; the YAML waits for a valid job.
    const lr = page.getByLabel('Learning rate');
    await lr.fill('fast');
    const lrError = page.getByTestId('error-learning_rate');
    await expect.poll(() => lrError.innerText().catch(() => '')).toMatch(/learning_rate must be a number, not "fast"/);
    expect(await lr.getAttribute('aria-invalid')).toBe('true');
    expect((await lr.getAttribute('aria-describedby'))!.split(' ')).toContain(await lrError.getAttribute('id'));
    expect(await page.getByTestId('yaml-stale').innerText()).toMatch(/last valid job/);
    // The way to the Train screen waits for valid settings.
    await expect.poll(() => page.getByTestId('method-next').isDisabled()).toBe(true);
    await page.getByLabel('Cut-off length').fill('0');
    await expect.poll(() => page.getByTestId('error-cutoff_len').innerText().catch(() => '')).toMatch(/must be at least 1, not 0/);
    await shoot('method-errors');

    // Valid again: the job YAML shows the choices.
    await lr.fill('3e-4');
    await page.getByLabel('Cut-off length').fill('256');
    await expect.poll(() => page.getByTestId('settings-form').getAttribute('data-valid')).toBe('yes');
    expect(await page.getByTestId('method-next').isEnabled()).toBe(true);
    const yaml = page.getByTestId('job-yaml');
    await expect.poll(() => yaml.innerText()).toContain('cutoff_len: 256');
    const text = await yaml.innerText();
    expect(text).toContain(`model_name_or_path: ${FIXTURE_REPO}`);
    expect(text).toContain('dataset: graft_alpaca.json');
    expect(text).toContain('finetuning_type: lora');
    expect(text).toContain('lora_rank: 16');
    expect(text).toContain('learning_rate: 0.0003');
    expect(text).toContain('per_device_train_batch_size: 2');
    await shoot('method');
    await shoot('method', { dark: true });

    // A reload keeps the screen, the answers, the settings, the model and the dataset.
    await page.reload();
    await page.getByRole('heading', { level: 2, name: 'Choose a method and the settings' }).waitFor({ timeout: 10_000 });
    expect(await page.getByLabel('Learning rate').inputValue()).toBe('3e-4');
    expect(await page.getByLabel('Cut-off length').inputValue()).toBe('256');
    expect(await page.getByLabel('LoRA rank (r)').inputValue()).toBe('16');
    expect(await page.getByTestId('q-domain').getByLabel(labels.far!).isChecked()).toBe(true);
    await expect.poll(() => page.getByTestId('job-yaml').innerText().catch(() => '')).toContain('dataset: graft_alpaca.json');
    await go('Data', 'Bring a dataset');
    await expect.poll(() => page.getByTestId('dataset-summary').getAttribute('data-valid'), { timeout: 10_000 }).toBe('24');
    // cutoff_len 256 now: the statistics follow it.
    expect(await waitForAttr('[data-testid="token-stats"]', 'data-status', ['done', 'error'], 20_000)).toBe('done');
    expect(await page.getByTestId('token-stats').innerText()).toContain('cutoff_len 256');
    await go('Model', 'Choose a model');
    expect(await page.getByTestId('chosen-model').getAttribute('data-repo')).toBe(FIXTURE_REPO);
  });
});
