// The second half of the journey in the web app, end to end in headless Chromium with WebGPU (SwiftShader without
// a GPU):
//   (a) the built-in demo with every request off the app's own origin blocked: one button trains the tiny demo
//       model, and asked a training question (greedy) it gives the trained answer, word for word;
//   (b) a LoRA run on the fixture model (downloaded from the local test hub) reloaded mid-way on the Start screen:
//       the page offers to continue from the last checkpoint there, continuing opens the Train screen, and the
//       continued run's steps follow on without a gap;
//   (c) the adapter export downloads, and its bytes read back in Node (zip → safetensors names and shapes); the
//       report holds the metrics and the chart as a PNG; the exported zip imports again; Chat compares base and
//       tuned and keeps a preference pair, which then trains the adapter further with DPO;
//   (d) no request leaves 127.0.0.1 / localhost during the whole session.
// Screenshots of each screen (light and dark) go to test-results/journey-train-*.png. Never skips.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import type { Page, Request } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/model/safetensors';
import { RESULTS, useApp } from '../helpers/app-page';
import { REPO_ROOT, expectWebGpuAdapter, type LaunchedBrowser, type StaticServer } from '../helpers/browser';
import { FIXTURE_REPO, fixtureModelFiles, type TestHub } from '../helpers/test-hub';

const DEMO = JSON.parse(readFileSync(join(REPO_ROOT, 'public/demo/demo_qa.json'), 'utf8')) as { instruction: string; output: string }[];
const FIXTURE_CONFIG = JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/tiny-llama/config.json'), 'utf8')) as Record<string, number>;

let server: StaticServer;
let browser: LaunchedBrowser;
let page: Page;
let hub: TestHub;
const requests: string[] = [];
const timings: Record<string, number> = {};
const { failWith, waitForAttr, shoot, go } = useApp('journey-train', (s) => {
  ({ page, browser, server } = s);
  hub = s.hub!;
  // Every request of the session: pages, workers and the service worker.
  browser.context.on('request', (r: Request) => requests.push(r.url()));
  // Leaving a page mid-run asks first (beforeunload): the reload in (b) says yes.
  page.on('dialog', (d) => void d.accept());
}, { hub: true });
afterAll(() => {
  if (Object.keys(timings).length) console.log(`journey-train timings (s): ${JSON.stringify(timings)}`);
});

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('the journey: train, chat, export, and the built-in demo', () => {
  it('(a) the built-in demo, with every request off the app origin blocked, learns its answers', async () => {
    const origin = new URL(server.url).origin;
    const blocked: string[] = [];
    await browser.context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(origin) || url.startsWith('blob:') || url.startsWith('data:')) return route.continue();
      blocked.push(url);
      return route.abort('internetdisconnected');
    });
    try {
      await page.goto(server.url);
      await expectWebGpuAdapter(page, browser, failWith);
      // Nothing off the app's origin can be reached, not even the local test hub on another port.
      expect(await page.evaluate((url) => fetch(url).then(() => 'reached', () => 'blocked'), `${hub.endpoint}/api/models/${FIXTURE_REPO}/tree/main`)).toBe('blocked');

      await page.getByTestId('demo-button').click();
      await page.getByRole('heading', { level: 2, name: 'The built-in demo' }).waitFor();
      await expect.poll(() => page.getByTestId('demo-pairs').locator('li').count(), { timeout: 20_000 }).toBe(DEMO.length);
      await shoot('demo-before');
      const t0 = Date.now();
      await page.getByTestId('demo-train').click();
      await page.getByTestId('train-run').waitFor({ timeout: 20_000 });
      await waitForAttr('[data-testid="train-run"]', 'data-status', ['training'], 60_000);
      await waitForAttr('[data-testid="train-run"]', 'data-status', ['completed', 'failed'], 150_000);
      timings.demoTrain = (Date.now() - t0) / 1000;
      if ((await page.getByTestId('train-run').getAttribute('data-status')) === 'failed') failWith(`the demo failed: ${await page.getByTestId('train-error').innerText()}`);
      const run = page.getByTestId('train-run');
      expect(await run.getAttribute('data-total')).toBe('24');
      expect((await run.getAttribute('data-steps'))!.split(',').map(Number)).toEqual(range(1, 24));
      // The loss fell from about ln(512) to near zero.
      const loss = Number(await page.getByTestId('stat-loss').innerText());
      expect(loss).toBeLessThan(0.6);
      expect(await page.getByTestId('stat-gpu').innerText()).toMatch(/(kB|MB|KiB|MiB)$/);

      // The trained model answers a training question with its trained answer (greedy); the base does not.
      const compare = page.getByTestId('compare-chat');
      await compare.waitFor({ timeout: 10_000 });
      expect(await compare.getByLabel('Prompt').inputValue()).toBe(DEMO[0]!.instruction);
      const t1 = Date.now();
      await compare.getByTestId('compare-ask').click();
      await waitForAttr('[data-testid="answer-tuned"]', 'data-status', ['done', 'error'], 60_000);
      timings.demoAnswer = (Date.now() - t1) / 1000;
      expect(await page.getByTestId('answer-base').getAttribute('data-status')).toBe('done');
      expect(await page.getByTestId('answer-tuned-text').innerText()).toBe(DEMO[0]!.output);
      expect(await page.getByTestId('answer-base-text').innerText()).not.toBe(DEMO[0]!.output);
      // Another question from the list.
      await compare.getByRole('button', { name: DEMO[5]!.instruction }).click();
      await expect.poll(() => page.getByTestId('answer-tuned').getAttribute('data-status'), { timeout: 60_000 }).toBe('done');
      expect(await page.getByTestId('answer-tuned-text').innerText()).toBe(DEMO[5]!.output);
      await shoot('demo');
      await shoot('demo', { dark: true });
      // Only the probe above was blocked: the demo needed nothing from elsewhere.
      expect(blocked).toEqual([`${hub.endpoint}/api/models/${FIXTURE_REPO}/tree/main`]);
    } finally {
      await browser.context.unroute('**/*');
    }
  });

  it('(a) with no network at all, the service worker serves the app and the demo files, and the trained demo answers', async () => {
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    await browser.context.setOffline(true);
    try {
      await page.reload();
      await page.getByRole('heading', { level: 2, name: 'The built-in demo' }).waitFor({ timeout: 15_000 });
      // The demo's model and Q&A are read again (from the service worker's cache).
      await expect.poll(() => page.getByTestId('demo-pairs').locator('li').count(), { timeout: 20_000 }).toBe(DEMO.length);
      expect(await page.getByTestId('demo-train').isEnabled()).toBe(true);
      // The trained demo is kept on the device: the Chat screen compares it offline.
      await go('Chat', 'Chat with the base and the tuned model');
      await expect.poll(() => page.getByTestId('compare-picked').innerText().catch(() => ''), { timeout: 10_000 }).toContain('graft/demo-tiny-llama');
      await page.getByTestId('compare-chat').getByLabel('Prompt').fill(DEMO[3]!.instruction);
      await page.getByTestId('compare-ask').click();
      await waitForAttr('[data-testid="answer-tuned"]', 'data-status', ['done', 'error'], 60_000);
      expect(await page.getByTestId('answer-tuned-text').innerText()).toBe(DEMO[3]!.output);
    } finally {
      await browser.context.setOffline(false);
    }
  });

  it('(b) a run reloaded mid-way offers to continue, and continues from its checkpoint without a gap', async () => {
    // The fixture model from the local test hub.
    await go('Model', 'Choose a model');
    await page.locator('details.settings summary').click();
    await page.getByLabel('Hub address').fill(hub.endpoint);
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.getByTestId('settings-note').textContent()).toContain(hub.endpoint);
    await page.getByLabel('Model id on the hub').fill(FIXTURE_REPO);
    await page.getByRole('button', { name: 'Download', exact: true }).click();
    expect(await waitForAttr('[data-testid="download"]', 'data-status', ['done', 'error'], 30_000)).toBe('done');
    await page.getByRole('button', { name: `Choose ${FIXTURE_REPO}` }).click();

    await go('Data', 'Bring a dataset');
    await page.getByRole('button', { name: 'Graft Q&A (alpaca)' }).click();
    await expect.poll(() => page.getByTestId('dataset-summary').getAttribute('data-valid'), { timeout: 15_000 }).toBe('24');

    // A setting that does not fit the model: the run fails before its first step, and says what to do.
    await go('Method', 'Choose a method and the settings');
    await page.getByTestId('field-lora_target').getByRole('textbox').fill('attn_proj');
    await expect.poll(() => page.getByTestId('settings-form').getAttribute('data-valid')).toBe('yes');
    await go('Train', 'Train');
    await expect.poll(() => page.getByTestId('train-start').isEnabled(), { timeout: 15_000 }).toBe(true);
    await page.getByTestId('train-start').click();
    await waitForAttr('[data-testid="train-run"]', 'data-status', ['failed', 'completed'], 30_000);
    const error = page.getByTestId('train-error');
    expect(await error.getAttribute('data-code')).toBe('bad-settings');
    expect(await error.innerText()).toMatch(/The job settings cannot be used\.[\s\S]*lora_target: "attn_proj" is not a linear layer of this LlamaForCausalLM[\s\S]*Fix the settings named above on the Method screen/);
    await shoot('train-error');

    // A short LoRA job that checkpoints every 3 steps.
    await go('Method', 'Choose a method and the settings');
    await page.getByTestId('field-lora_target').getByRole('textbox').fill('all');
    const settings: [string, string][] = [
      ['max_steps', '12'],
      ['per_device_train_batch_size', '2'],
      ['gradient_accumulation_steps', '1'],
      ['save_steps', '3'],
      ['cutoff_len', '64'],
      ['learning_rate', '1e-2'],
      ['val_size', '4'],
      ['logging_steps', '3'],
    ];
    for (const [key, value] of settings) await page.getByTestId(`field-${key}`).getByRole('textbox').fill(value);
    // The validation loss every logging_steps (eval_steps' default), on 4 held-out records.
    await page.getByTestId('field-eval_strategy').getByRole('combobox').selectOption('steps');
    await expect.poll(() => page.getByTestId('settings-form').getAttribute('data-valid')).toBe('yes');

    await go('Train', 'Train');
    const start = page.getByTestId('train-start');
    await expect.poll(() => start.isEnabled(), { timeout: 15_000 }).toBe(true);
    await shoot('train-ready');
    const t0 = Date.now();
    await start.click();
    // Mid-way: a checkpoint is saved and training has gone past it.
    await page.waitForFunction(
      () => {
        const el = document.querySelector('[data-testid="train-run"]');
        return Number(el?.getAttribute('data-checkpoint') || 0) >= 3 && Number(el?.getAttribute('data-step') || 0) >= 4;
      },
      undefined,
      { timeout: 90_000 },
    );
    // Pause holds the run between steps (the screenshots show it still); Resume lets it go on.
    await page.getByTestId('train-pause').click();
    await waitForAttr('[data-testid="train-run"]', 'data-status', ['paused'], 10_000);
    // A validation pass already in flight when Pause was pressed finishes first; then the phase says Paused.
    await expect.poll(() => page.getByTestId('train-phase').innerText(), { timeout: 30_000 }).toMatch(/Paused/);
    await shoot('train-running');
    await shoot('train-running', { dark: true });
    const held = await page.getByTestId('train-run').getAttribute('data-step');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await page.getByTestId('train-run').getAttribute('data-step')).toBe(held);
    expect(Number(held)).toBeLessThan(12);
    await page.getByTestId('train-resume').click();
    await waitForAttr('[data-testid="train-run"]', 'data-status', ['training'], 10_000);

    // Reload mid-run on another screen: the worker (and the run) goes; the checkpoint stays, and the offer to
    // continue shows on whatever screen the page opens.
    await go('Start', 'Fine-tune a language model in your browser');
    await page.reload();
    await page.getByRole('heading', { level: 2, name: 'Fine-tune a language model in your browser' }).waitFor({ timeout: 15_000 });
    const offer = page.getByTestId('resume-offer');
    await offer.waitFor({ timeout: 15_000 });
    const checkpoint = Number(await offer.getAttribute('data-checkpoint'));
    expect(checkpoint).toBeGreaterThanOrEqual(3);
    expect(checkpoint % 3).toBe(0);
    expect(checkpoint).toBeLessThan(12);
    await shoot('train-resume');
    await offer.getByRole('button', { name: `Continue from step ${checkpoint}` }).click();
    // Continuing opens the Train screen, where the continued run shows.
    await page.getByRole('heading', { level: 2, name: 'Train' }).waitFor({ timeout: 10_000 });
    await waitForAttr('[data-testid="train-run"]', 'data-status', ['completed', 'failed'], 120_000);
    timings.fixtureRun = (Date.now() - t0) / 1000;
    const run = page.getByTestId('train-run');
    if ((await run.getAttribute('data-status')) === 'failed') failWith(`the continued run failed: ${await page.getByTestId('train-error').innerText()}`);
    expect(Number(await run.getAttribute('data-resumed-from'))).toBe(checkpoint);
    // Steps 1..checkpoint from the checkpoint, then checkpoint+1..12 from the continued run: no gap, no repeat.
    expect((await run.getAttribute('data-steps'))!.split(',').map(Number)).toEqual(range(1, 12));
    expect(await page.getByTestId('train-done').innerText()).toMatch(/Saved on this device/);
    // Validation after steps 3, 6, 9 and 12 (those before the checkpoint came back with it).
    expect(await run.getAttribute('data-evals')).toBe('4');
    await shoot('train');
    await shoot('train', { dark: true });
  });

  it('(c) Chat compares base and tuned; the adapter export downloads and reads back; the report and an import work', async () => {
    // Chat: the fixture run's adapter is picked.
    await page.getByRole('button', { name: 'Chat with it' }).click();
    await page.getByRole('heading', { level: 2, name: 'Chat with the base and the tuned model' }).waitFor();
    const compare = page.getByTestId('compare-chat');
    await expect.poll(() => compare.getByTestId('compare-picked').innerText().catch(() => ''), { timeout: 10_000 }).toContain(FIXTURE_REPO);
    await compare.getByLabel('Prompt').fill('What is LoRA?');
    await compare.getByTestId('compare-ask').click();
    await waitForAttr('[data-testid="answer-tuned"]', 'data-status', ['done', 'error'], 60_000);
    expect(await page.getByTestId('answer-base').getAttribute('data-status')).toBe('done');
    expect(await page.getByTestId('answer-tuned').getAttribute('data-status')).toBe('done');
    // The adapter changed the answer, so one can be marked as the better one.
    expect(await page.getByTestId('answer-tuned-text').innerText()).not.toBe(await page.getByTestId('answer-base-text').innerText());
    {
      await page.getByTestId('prefer-tuned').click();
      await expect.poll(() => page.getByTestId('preferences').getAttribute('data-count')).toBe('1');
      const [prefDownload] = await Promise.all([page.waitForEvent('download'), page.getByTestId('preferences-download').click()]);
      const pairs = JSON.parse(readFileSync((await prefDownload.path())!, 'utf8')) as { prompt: string; chosen: string; rejected: string }[];
      expect(pairs).toHaveLength(1);
      expect(pairs[0]!.prompt).toBe('What is LoRA?');
      expect(pairs[0]!.chosen).toBe(await page.getByTestId('answer-tuned-text').innerText());
      expect(Object.keys(pairs[0]!).sort()).toEqual(['chosen', 'prompt', 'rejected']);
    }
    await shoot('chat');
    await shoot('chat', { dark: true });

    // Export: the PEFT adapter as one zip.
    await go('Export', 'Export');
    await expect.poll(() => page.getByTestId('export-picked').getAttribute('data-kind').catch(() => ''), { timeout: 10_000 }).toBe('adapter');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-adapter-zip').click()]);
    expect(download.suggestedFilename()).toMatch(/^tiny-llama-lora-\d{4}-\d{2}-\d{2}-adapter\.zip$/);
    const zipPath = join(tmpdir(), `graft-export-${process.pid}.zip`);
    await download.saveAs(zipPath);
    const zipBytes = new Uint8Array(readFileSync(zipPath));
    const entries = unzipSync(zipBytes);
    const names = Object.keys(entries).map((n) => n.split('/').pop());
    expect(names.sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const weightsEntry = Object.keys(entries).find((n) => n.endsWith('adapter_model.safetensors'))!;
    const configEntry = Object.keys(entries).find((n) => n.endsWith('adapter_config.json'))!;
    const config = JSON.parse(new TextDecoder().decode(entries[configEntry])) as { r: number; lora_alpha: number; peft_type: string; base_model_name_or_path: string };
    expect(config).toMatchObject({ r: 8, lora_alpha: 16, peft_type: 'LORA', base_model_name_or_path: FIXTURE_REPO });
    const st = new SafetensorsFile(entries[weightsEntry]!, 'adapter_model.safetensors');
    const H = FIXTURE_CONFIG.hidden_size!;
    const I = FIXTURE_CONFIG.intermediate_size!;
    const D = FIXTURE_CONFIG.head_dim!;
    const kv = FIXTURE_CONFIG.num_key_value_heads! * D;
    const q = FIXTURE_CONFIG.num_attention_heads! * D;
    const modules: [string, number, number][] = [
      ['self_attn.q_proj', H, q],
      ['self_attn.k_proj', H, kv],
      ['self_attn.v_proj', H, kv],
      ['self_attn.o_proj', q, H],
      ['mlp.gate_proj', H, I],
      ['mlp.up_proj', H, I],
      ['mlp.down_proj', I, H],
    ];
    const expected = new Map<string, number[]>();
    for (let l = 0; l < FIXTURE_CONFIG.num_hidden_layers!; l++) {
      for (const [m, inF, outF] of modules) {
        expected.set(`base_model.model.model.layers.${l}.${m}.lora_A.weight`, [8, inF]);
        expected.set(`base_model.model.model.layers.${l}.${m}.lora_B.weight`, [outF, 8]);
      }
    }
    expect([...st.names].sort()).toEqual([...expected.keys()].sort());
    for (const [name, shape] of expected) expect(st.info(name).shape, name).toEqual(shape);
    // Trained: lora_B moved away from its zero start.
    expect(st.float32('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight').some((v) => v !== 0)).toBe(true);

    // The result's name is the run's, editable here; the files exported after are named after the new one.
    await page.getByTestId('export-name').fill('Graft answers');
    await page.getByTestId('export-rename').getByRole('button', { name: 'Rename' }).click();
    await expect.poll(() => page.getByTestId('export-name-note').innerText().catch(() => ''), { timeout: 10_000 }).toBe('Renamed to Graft answers.');
    expect(await page.getByTestId('export-pick').locator('option:checked').innerText()).toMatch(/^Graft answers — LoRA adapter on /);

    // The training report: metrics of every step and the chart as a PNG.
    const [reportDownload] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-report').click()]);
    expect(reportDownload.suggestedFilename()).toBe('Graft-answers-report.zip');
    const report = unzipSync(new Uint8Array(readFileSync((await reportDownload.path())!)));
    const metricsEntry = Object.keys(report).find((n) => n.endsWith('metrics.json'))!;
    const metrics = JSON.parse(new TextDecoder().decode(report[metricsEntry])) as { log_history: { step: number }[] };
    expect(metrics.log_history.map((m) => m.step)).toEqual(range(1, 12));
    const png = Object.keys(report).find((n) => n.endsWith('loss.png'));
    expect(png).toBeDefined();
    expect([...report[png!]!.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    writeFileSync(join(RESULTS, 'journey-train-report-loss.png'), report[png!]!);
    // The merged model: a Hugging Face folder whose adapted weights moved (W + scaling·B·A), the rest as they were.
    const [mergedDownload] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-merged').click()]);
    const merged = unzipSync(new Uint8Array(readFileSync((await mergedDownload.path())!)));
    const mergedNames = Object.keys(merged).map((n) => n.split('/').pop()).sort();
    expect(mergedNames).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const mergedWeights = new SafetensorsFile(merged[Object.keys(merged).find((n) => n.endsWith('model.safetensors'))!]!, 'model.safetensors');
    const baseWeights = new SafetensorsFile(fixtureModelFiles()['model.safetensors']!, 'model.safetensors');
    expect([...mergedWeights.names].sort()).toEqual([...baseWeights.names].sort());
    const differs = (name: string) => mergedWeights.float32(name).some((v, i) => v !== baseWeights.float32(name)[i]);
    expect(differs('model.layers.0.self_attn.q_proj.weight')).toBe(true);
    expect(differs('model.embed_tokens.weight')).toBe(false);
    // The LLaMA-Factory job: train.yaml, dataset_info.json and the records.
    const [jobDownload] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-job').click()]);
    const job = unzipSync(new Uint8Array(readFileSync((await jobDownload.path())!)));
    const jobFiles = Object.keys(job).map((n) => n.split('/').pop()).sort();
    expect(jobFiles).toEqual(['dataset_info.json', 'graft_alpaca.json', 'train.yaml']);
    const yaml = new TextDecoder().decode(job[Object.keys(job).find((n) => n.endsWith('train.yaml'))!]);
    expect(yaml).toContain(`model_name_or_path: ${FIXTURE_REPO}`);
    expect(yaml).toContain('finetuning_type: lora');
    expect(yaml).toContain('max_steps: 12');
    await shoot('export');
    await shoot('export', { dark: true });

    // The exported zip imports again, checked against the base model.
    await page.getByLabel('Adapter files').setInputFiles(zipPath);
    await page.getByLabel('Name (optional)').fill('re-imported');
    await page.getByTestId('import-adapter').getByRole('button', { name: 'Import' }).click();
    await expect.poll(() => page.getByTestId('imported').innerText().catch(() => ''), { timeout: 15_000 }).toMatch(/Imported re-imported: LoRA adapter, r 8, alpha 16, 14 modules/);
    rmSync(zipPath, { force: true });
  });

  it('(c) the kept preference pair trains the adapter further with DPO', async () => {
    await go('Chat', 'Chat with the base and the tuned model');
    const form = page.getByTestId('dpo-form');
    await expect.poll(() => page.getByTestId('preferences').getAttribute('data-count'), { timeout: 10_000 }).toBe('1');
    // The picked result is the re-imported adapter; DPO continues it.
    await expect.poll(() => page.getByTestId('compare-picked').innerText().catch(() => '')).toContain('LoRA adapter');
    await form.getByTestId('dpo-train').click();
    await page.getByRole('heading', { level: 2, name: 'Train' }).waitFor();
    await waitForAttr('[data-testid="train-run"]', 'data-status', ['completed', 'failed'], 90_000);
    if ((await page.getByTestId('train-run').getAttribute('data-status')) === 'failed') failWith(`DPO failed: ${await page.getByTestId('train-error').innerText()}`);
    // One pair, batch 1, 3 epochs.
    expect((await page.getByTestId('train-run').getAttribute('data-steps'))!.split(',').map(Number)).toEqual([1, 2, 3]);
    expect(await page.getByTestId('train-stats').innerText()).toMatch(/Reward accuracy/);
    expect(await page.getByTestId('train-done').innerText()).toMatch(/\+ DPO/);
    await shoot('train-dpo');
  });

  it('(c) an imported adapter keeps training (adapter_name_or_path) from the Export screen', async () => {
    await go('Export', 'Export');
    const pick = page.getByTestId('export-pick');
    const option = pick.locator('option', { hasText: /^re-imported — LoRA adapter/ });
    await pick.selectOption((await option.getAttribute('value'))!);
    await page.getByTestId('export-results').getByRole('button', { name: 'Keep training it' }).click();
    await page.getByRole('heading', { level: 2, name: 'Train' }).waitFor();
    expect(await page.getByTestId('continue-adapter').innerText({ timeout: 10_000 })).toMatch(/re-imported/);
    await expect.poll(() => page.getByTestId('train-start').isEnabled(), { timeout: 15_000 }).toBe(true);
    await page.getByTestId('train-start').click();
    await waitForAttr('[data-testid="train-run"]', 'data-status', ['completed', 'failed'], 90_000);
    if ((await page.getByTestId('train-run').getAttribute('data-status')) === 'failed') failWith(`continuing the adapter failed: ${await page.getByTestId('train-error').innerText()}`);
    expect(await page.getByTestId('train-done').innerText()).toMatch(/LoRA adapter, r 8, alpha 16/);
  });

  it('(d) no request left 127.0.0.1 or localhost during the session', () => {
    expect(requests.length).toBeGreaterThan(10);
    const off = requests.filter((u) => {
      if (u.startsWith('blob:') || u.startsWith('data:')) return false;
      const host = new URL(u).hostname;
      return host !== '127.0.0.1' && host !== 'localhost';
    });
    expect(off).toEqual([]);
  });
});
