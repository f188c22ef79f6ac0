// Reward models (stage rm) in the web app, in headless Chromium with WebGPU (SwiftShader without a GPU), on the
// built-in demo model:
//   - the demo trains; on the Chat screen three answers of the trained model are marked better than the base
//     model's, and "Train a reward model" trains one on those pairs (from the demo's fine-tuned model);
//   - Chat samples answers and ranks them with it: the list is in descending order of the rewards it shows, and
//     each reward equals the one Node computes (Dawn, src/model/reward-head.ts, as `graft score` does) with the
//     reward model the Export screen downloads — a LlamaForSequenceClassification folder, num_labels 1, with
//     score.weight [1, H] and no lm_head; its LLaMA-Factory job is stage rm on the pairs (a ranking dataset);
//   - stage rm is chosen on the Method screen and trains on a file of preference pairs opened on the Data screen
//     (the preference-pair sample the Data screen offers).
// Screenshots go to test-results/reward-model-*.png. Never skips.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { encodeConversation } from '../../src/data/encode';
import { loadRewardModel } from '../../src/model/reward-head';
import { SafetensorsFile } from '../../src/model/safetensors';
import { useApp } from '../helpers/app-page';
import { expectWebGpuAdapter, REPO_ROOT, type LaunchedBrowser, type StaticServer } from '../helpers/browser';
import { testContext } from '../helpers/gpu';

const DEMO = JSON.parse(readFileSync(join(REPO_ROOT, 'public/demo/demo_qa.json'), 'utf8')) as { instruction: string; output: string }[];
const DEMO_CONFIG = JSON.parse(readFileSync(join(REPO_ROOT, 'public/demo/model/config.json'), 'utf8')) as { hidden_size: number };

let server: StaticServer;
let browser: LaunchedBrowser;
let page: Page;
const { failWith, waitForAttr, shoot, go, trainedOrFail } = useApp('reward-model', (s) => ({ page, browser, server } = s));
/** What the page ranked: the prompt, and the answers with their rewards, best first. */
let ranked: { prompt: string; items: { text: string; reward: number }[] } | undefined;

describe('reward models in the app', () => {
  it('trains a reward model on the Chat screen’s preference pairs and ranks sampled answers with it', async () => {
    await page.goto(server.url);
    await expectWebGpuAdapter(page, browser, failWith);
    await page.getByTestId('demo-button').click();
    await expect.poll(() => page.getByTestId('demo-train').isEnabled(), { timeout: 30_000 }).toBe(true);
    await page.getByTestId('demo-train').click();
    await trainedOrFail('the demo');

    // Three pairs: the trained model's answer over the base model's.
    await go('Chat', 'Chat with the base and the tuned model');
    const compare = page.getByTestId('compare-chat');
    await expect.poll(() => compare.getByTestId('compare-picked').innerText().catch(() => ''), { timeout: 10_000 }).toContain('graft/demo-tiny-llama');
    // Before any reward model: the ranking section says how to get one.
    expect(await page.getByTestId('rank-answers').innerText()).toMatch(/No reward model on this device yet/);
    for (const q of DEMO.slice(0, 3)) {
      await compare.getByLabel('Prompt').fill(q.instruction);
      await compare.getByTestId('compare-ask').click();
      await waitForAttr('[data-testid="answer-tuned"]', 'data-status', ['done', 'error'], 60_000);
      expect(await page.getByTestId('answer-tuned-text').innerText()).toBe(q.output);
      await page.getByTestId('prefer-tuned').click();
    }
    await expect.poll(() => page.getByTestId('preferences').getAttribute('data-count')).toBe('3');

    // The reward model: the demo's fine-tuned model with a score head, every weight training.
    const dpo = page.getByTestId('dpo-form');
    await dpo.getByLabel('Learning rate').fill('3e-3');
    await dpo.getByLabel('Epochs').fill('10');
    await page.getByTestId('rm-train').click();
    await page.getByRole('heading', { level: 2, name: 'Train' }).waitFor();
    await trainedOrFail('the reward model run');
    const run = page.getByTestId('train-run');
    // 3 pairs in batches of 2 → 2 steps an epoch, 10 epochs.
    expect((await run.getAttribute('data-steps'))!.split(',').map(Number)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(await page.getByTestId('train-stats').innerText()).toMatch(/Reward accuracy\s*100%/);
    expect(await page.getByTestId('train-done').innerText()).toMatch(/reward model \(sequence classification, every weight trained\)/);
    await shoot('train');

    // Rank sampled answers with it.
    await page.getByRole('button', { name: 'Rank answers with it' }).click();
    await page.getByRole('heading', { level: 2, name: 'Chat with the base and the tuned model' }).waitFor();
    const rank = page.getByTestId('rank-answers');
    await expect.poll(() => rank.getByTestId('rank-model').locator('option').count(), { timeout: 10_000 }).toBe(1);
    // The reward model is not offered for comparing (it writes no answers).
    expect(await compare.getByTestId('compare-pick').locator('option', { hasText: 'reward model' }).count()).toBe(0);
    await compare.getByLabel('Prompt').fill(DEMO[0]!.instruction);
    // A high temperature, so that the demo model (which has learned its answers by heart) writes different ones.
    await compare.locator('details.sampling summary').click();
    await compare.getByLabel('Greedy').uncheck();
    await compare.getByLabel('Temperature').fill('2');
    await compare.getByLabel('Seed').fill('1');
    await rank.getByTestId('rank-count').fill('4');
    await rank.getByTestId('rank-run').click();
    await waitForAttr('[data-testid="rank-answers"]', 'data-status', ['done', 'error'], 120_000);
    if ((await rank.getAttribute('data-status')) === 'error') failWith(`ranking failed: ${await rank.innerText()}`);
    const items = rank.getByTestId('rank-item');
    expect(await items.count()).toBe(4);
    const got: { text: string; reward: number; seed: number }[] = [];
    for (let i = 0; i < 4; i++) {
      const item = items.nth(i);
      got.push({ text: await item.locator('.answer-text').innerText(), reward: Number(await item.getAttribute('data-reward')), seed: Number(await item.getAttribute('data-seed')) });
    }
    // Best first; one answer per seed 1..4; each reward shown to 4 places.
    for (let i = 1; i < 4; i++) expect(got[i - 1]!.reward).toBeGreaterThanOrEqual(got[i]!.reward);
    expect(got.map((g) => g.seed).sort()).toEqual([1, 2, 3, 4]);
    expect(new Set(got.map((g) => g.text)).size).toBeGreaterThan(1);
    for (const [i, g] of got.entries()) expect(await items.nth(i).locator('.reward').innerText()).toBe(g.reward.toFixed(4));
    ranked = { prompt: DEMO[0]!.instruction, items: got };
    await shoot('rank');
    await shoot('rank', { dark: true });
  });

  it('exports the reward model as a sequence-classification folder whose scores in Node equal the page’s', async () => {
    expect(ranked).toBeDefined();
    await go('Export', 'Export');
    await expect.poll(() => page.getByTestId('export-picked').innerText().catch(() => ''), { timeout: 10_000 }).toMatch(/reward model/);
    expect(await page.getByTestId('export-merged').count()).toBe(0);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-reward').click()]);
    expect(download.suggestedFilename()).toMatch(/-reward-model\.zip$/);
    const zip = unzipSync(new Uint8Array(readFileSync((await download.path())!)));
    const files = new Map(Object.entries(zip).map(([path, bytes]) => [path.split('/').pop()!, bytes]));
    expect([...files.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const config = JSON.parse(new TextDecoder().decode(files.get('config.json'))) as { architectures: string[]; num_labels: number; pad_token_id: number };
    expect(config.architectures).toEqual(['LlamaForSequenceClassification']);
    expect(config.num_labels).toBe(1);
    expect(Number.isInteger(config.pad_token_id)).toBe(true);
    const st = new SafetensorsFile(files.get('model.safetensors')!, 'model.safetensors');
    expect(st.info('score.weight').shape).toEqual([1, DEMO_CONFIG.hidden_size]);
    expect(st.names).not.toContain('lm_head.weight');
    await shoot('export');
    // The LLaMA-Factory job of the run: stage rm, the Chat screen's three pairs as a ShareGPT ranking dataset.
    const [jobDownload] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-job').click()]);
    const job = new Map(Object.entries(unzipSync(new Uint8Array(readFileSync((await jobDownload.path())!)))).map(([path, bytes]) => [path.split('/').pop()!, new TextDecoder().decode(bytes)]));
    expect(job.get('train.yaml')).toMatch(/^stage: rm$/m);
    const info = JSON.parse(job.get('dataset_info.json')!) as Record<string, { file_name: string; ranking: boolean }>;
    const entry = Object.values(info)[0]!;
    expect(entry.ranking).toBe(true);
    const rows = JSON.parse(job.get(entry.file_name)!) as { chosen: { value: string }; rejected: { value: string } }[];
    expect(rows.map((r) => r.chosen.value)).toEqual(DEMO.slice(0, 3).map((d) => d.output));

    // Node scores the page's answers with the downloaded folder.
    const ctx = await testContext();
    const rm = await loadRewardModel(ctx, { name: 'downloaded reward model', readFile: async (p) => files.get(p) });
    try {
      const seqs = ranked!.items.map(
        (it) => encodeConversation({ messages: [{ role: 'user', content: ranked!.prompt }, { role: 'assistant', content: it.text }] }, rm.lm.tokenizer, rm.lm.template, { cutoffLen: rm.lm.maxPositions }).inputIds,
      );
      const ref = await rm.head.score(rm.lm.model, seqs, rm.padTokenId);
      for (const [i, it] of ranked!.items.entries()) expect(Math.abs(it.reward - ref[i]!), `answer ${i}: page ${it.reward}, Node ${ref[i]}`).toBeLessThanOrEqual(1e-4 + 1e-4 * Math.abs(ref[i]!));
    } finally {
      rm.dispose();
    }
  });

  it('chooses stage rm on the Method screen and trains on the Data screen’s preference pairs', async () => {
    await go('Model', 'Choose a model');
    await page.getByRole('button', { name: 'Choose graft/demo-tiny-llama' }).click();
    await go('Data', 'Bring a dataset');
    // The preference-pair sample the Data screen offers for download, opened as a dataset file.
    await page.getByLabel('Choose a dataset file').setInputFiles(join(REPO_ROOT, 'public/samples/dpo.json'));
    await page.getByTestId('dataset-summary').waitFor({ timeout: 15_000 });
    await shoot('data');
    await go('Method', 'Choose a method and the settings');
    await page.getByTestId('field-stage').getByRole('combobox').selectOption('rm');
    await page.getByTestId('field-finetuning_type').getByRole('combobox').selectOption('full');
    for (const [key, value] of [['max_steps', '4'], ['per_device_train_batch_size', '2'], ['gradient_accumulation_steps', '1'], ['cutoff_len', '128'], ['val_size', '0']] as const) {
      await page.getByTestId(`field-${key}`).getByRole('textbox').fill(value);
    }
    await expect.poll(() => page.getByTestId('settings-form').getAttribute('data-valid')).toBe('yes');
    await go('Train', 'Train');
    expect(await page.getByTestId('train-job').innerText()).toMatch(/a reward model \(preference pairs\) with full/);
    await expect.poll(() => page.getByTestId('train-start').isEnabled(), { timeout: 15_000 }).toBe(true);
    await page.getByTestId('train-start').click();
    await trainedOrFail('the reward model run on the Data screen’s pairs');
    expect((await page.getByTestId('train-run').getAttribute('data-steps'))!.split(',').map(Number)).toEqual([1, 2, 3, 4]);
    expect(await page.getByTestId('train-run').innerText()).toMatch(/training preference pairs/);
    expect(await page.getByTestId('train-done').innerText()).toMatch(/reward model \(sequence classification/);
    await shoot('train-data');
  });
});
