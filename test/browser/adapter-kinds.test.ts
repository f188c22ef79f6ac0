// Bottleneck adapters (finetuning_type adapter) and prompt tuning (finetuning_type prompt) in the web app, in
// headless Chromium with WebGPU (SwiftShader without a GPU), on the built-in demo model and its Q&A file:
//   - each method is chosen on the Method screen with its own settings and trains a few steps on the Train
//     screen; the result is kept as an adapter of its kind;
//   - Chat compares the base with either adapter: the two adapters answer differently, both differ from the base,
//     and switching back to the first gives its answer again, word for word (the base's stays the same);
//   - Export downloads each adapter's folder as a zip; in Node, LoadedModel.loadAdapter on the downloaded folder
//     gives the page's greedy answer word for word; the LLaMA-Factory job and the merged model are refused with
//     a sentence; the prompt-tuning zip imports back on the Export screen as a prompt-tuning adapter (which does
//     not train further), and "Keep training it" on the bottleneck adapter sets up a run that continues it.
// Screenshots go to test-results/adapter-kinds-*.png. Never skips.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/model/load';
import { useApp } from '../helpers/app-page';
import { REPO_ROOT, type LaunchedBrowser, type StaticServer } from '../helpers/browser';
import { testContext } from '../helpers/gpu';

const DEMO_DIR = join(REPO_ROOT, 'public/demo/model');
const DEMO = JSON.parse(readFileSync(join(REPO_ROOT, 'public/demo/demo_qa.json'), 'utf8')) as { instruction: string; output: string }[];
const QUESTION = DEMO[1]!.instruction;

let server: StaticServer;
let browser: LaunchedBrowser;
let page: Page;
const { failWith, waitForAttr, shoot, go, trainedOrFail, demoModelWithData } = useApp('adapter-kinds', (s) => ({ page, browser, server } = s));
/** The page's answers to QUESTION: the base's, and each adapter's (by kind). */
const answers: { base?: string; bottleneck?: string; prompt?: string } = {};
/** The downloaded folders, by kind. */
const folders: { bottleneck?: Map<string, Uint8Array>; prompt?: Map<string, Uint8Array> } = {};
let promptZip = '';

/** Sets the Method screen's fields (selects and text boxes) and waits for a valid job. */
async function method(values: [string, string][]): Promise<void> {
  await go('Method', 'Choose a method and the settings');
  for (const [key, value] of values) {
    const field = page.getByTestId(`field-${key}`);
    if ((await field.getByRole('combobox').count()) > 0) await field.getByRole('combobox').selectOption(value);
    else await field.getByRole('textbox').fill(value);
  }
  await expect.poll(() => page.getByTestId('settings-form').getAttribute('data-valid'), { timeout: 10_000 }).toBe('yes');
}

async function train(what: string): Promise<void> {
  await go('Train', 'Train');
  await expect.poll(() => page.getByTestId('train-start').isEnabled(), { timeout: 15_000 }).toBe(true);
  await page.getByTestId('train-start').click();
  await page.getByTestId('train-run').waitFor({ timeout: 20_000 });
  await trainedOrFail(what, 180_000);
  expect((await page.getByTestId('train-run').getAttribute('data-steps'))!.split(',').map(Number)).toEqual([1, 2, 3, 4, 5, 6]);
}

/** Picks the result whose option says `kind` on the Chat screen and asks QUESTION; the base's and the tuned answer. */
async function ask(kind: string): Promise<{ base: string; tuned: string }> {
  const compare = page.getByTestId('compare-chat');
  const pick = compare.getByTestId('compare-pick');
  await pick.selectOption((await pick.locator('option', { hasText: `— ${kind} on` }).getAttribute('value'))!);
  await compare.getByLabel('Prompt').fill(QUESTION);
  await compare.getByTestId('compare-ask').click();
  await waitForAttr('[data-testid="answer-tuned"]', 'data-status', ['done', 'error'], 60_000);
  if ((await page.getByTestId('answer-tuned').getAttribute('data-status')) === 'error') failWith(`the ${kind} answered with an error: ${await page.getByTestId('answer-tuned').innerText()}`);
  expect(await page.getByTestId('answer-base').getAttribute('data-status')).toBe('done');
  return { base: await page.getByTestId('answer-base-text').innerText(), tuned: await page.getByTestId('answer-tuned-text').innerText() };
}

/** Downloads the picked adapter's zip on the Export screen; its files by name. */
async function exportZip(kind: 'bottleneck' | 'prompt', optionText: string): Promise<{ files: Map<string, Uint8Array>; path: string; name: string }> {
  await go('Export', 'Export');
  const pick = page.getByTestId('export-pick');
  await expect.poll(() => pick.locator('option', { hasText: optionText }).count(), { timeout: 10_000 }).toBeGreaterThan(0);
  await pick.selectOption((await pick.locator('option', { hasText: optionText }).first().getAttribute('value'))!);
  await expect.poll(() => page.getByTestId('export-picked').getAttribute('data-adapter-kind')).toBe(kind);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-adapter-zip').click()]);
  const path = (await download.path())!;
  const zip = unzipSync(new Uint8Array(readFileSync(path)));
  return { files: new Map(Object.entries(zip).map(([p, bytes]) => [p.split('/').pop()!, bytes])), path, name: download.suggestedFilename() };
}

/** Node's greedy answer to QUESTION with the demo model and a downloaded adapter folder (as the Chat screen asks). */
async function nodeAnswer(folder: Map<string, Uint8Array>): Promise<string> {
  const ctx = await testContext();
  const lm = await loadModel(ctx, { name: 'demo', readFile: async (p) => (p.includes('/') ? undefined : (() => { try { return new Uint8Array(readFileSync(join(DEMO_DIR, p))); } catch { return undefined; } })()) });
  try {
    const name = await lm.loadAdapter({ name: 'downloaded adapter', readFile: async (p) => folder.get(p) }, 'downloaded');
    return (await lm.generate(lm.chatPromptIds(QUESTION), { maxNewTokens: 64, greedy: true, adapter: name })).text;
  } finally {
    lm.dispose();
  }
}

describe('bottleneck adapters and prompt tuning in the app', () => {
  it('trains the demo model with finetuning_type adapter and with prompt, chosen on the Method screen', async () => {
    await demoModelWithData(join(REPO_ROOT, 'public/demo/demo_qa.json'));

    const common: [string, string][] = [['max_steps', '6'], ['per_device_train_batch_size', '2'], ['gradient_accumulation_steps', '1'], ['cutoff_len', '64'], ['val_size', '0'], ['lr_scheduler_type', 'constant']];
    await method([['finetuning_type', 'adapter'], ['adapter_placement', 'houlsby'], ['reduction_factor', '4'], ['adapter_non_linearity', 'gelu'], ['learning_rate', '1e-2'], ...common]);
    // The LoRA fields are hidden for bottleneck adapters; the job names the adapter's settings.
    expect(await page.getByTestId('field-lora_rank').count()).toBe(0);
    await shoot('method-adapter');
    await train('the bottleneck adapter run');
    expect(await page.getByTestId('train-done').innerText()).toMatch(/bottleneck adapter, houlsby \(after attention and MLP\), reduction factor 4 \(size \d+\), gelu/);

    await method([['finetuning_type', 'prompt'], ['num_virtual_tokens', '4'], ['prompt_tuning_init', 'text'], ['prompt_tuning_init_text', 'Answer the question:'], ['learning_rate', '3e-2'], ...common]);
    expect(await page.getByTestId('field-adapter_placement').count()).toBe(0);
    await train('the prompt-tuning run');
    expect(await page.getByTestId('train-done').innerText()).toMatch(/prompt tuning, 4 virtual tokens \(started from a text\)/);
    await shoot('train-prompt');
  }, 420_000);

  it('switches between the adapters on the Chat screen: each answers its own way, and switching back restores it', async () => {
    await go('Chat', 'Chat with the base and the tuned model');
    const first = await ask('bottleneck adapter');
    const second = await ask('prompt-tuning adapter');
    await shoot('chat');
    const again = await ask('bottleneck adapter');
    expect(second.tuned).not.toBe(first.tuned);
    expect(first.tuned).not.toBe(first.base);
    expect(second.tuned).not.toBe(second.base);
    expect(again.tuned).toBe(first.tuned);
    expect(new Set([first.base, second.base, again.base]).size).toBe(1);
    Object.assign(answers, { base: first.base, bottleneck: first.tuned, prompt: second.tuned });
  }, 240_000);

  it('exports each adapter folder, which Node loads to the page’s answers; refuses the LLaMA-Factory job and the merged model', async () => {
    expect(answers.bottleneck).toBeDefined();
    const b = await exportZip('bottleneck', '— bottleneck adapter on');
    expect(b.name).toMatch(/-bottleneck-adapter\.zip$/);
    expect(JSON.parse(new TextDecoder().decode(b.files.get('adapter_config.json')))).toMatchObject({ adapter_type: 'bottleneck', placement: 'houlsby', reduction_factor: 4, non_linearity: 'gelu' });
    expect(await page.getByTestId('export-job-refused').innerText()).toMatch(/^LLaMA-Factory has no bottleneck adapters/);
    expect(await page.getByTestId('export-job').count()).toBe(0);
    expect(await page.getByTestId('export-merged-refused').innerText()).toMatch(/cannot be merged into the base weights/);
    await shoot('export-bottleneck');
    folders.bottleneck = b.files;

    const p = await exportZip('prompt', '— prompt-tuning adapter on');
    expect(p.name).toMatch(/-prompt-tuning\.zip$/);
    expect(JSON.parse(new TextDecoder().decode(p.files.get('adapter_config.json')))).toMatchObject({ peft_type: 'PROMPT_TUNING', num_virtual_tokens: 4, prompt_tuning_init: 'TEXT', prompt_tuning_init_text: 'Answer the question:' });
    expect(await page.getByTestId('export-job-refused').innerText()).toMatch(/^LLaMA-Factory has no prompt tuning/);
    expect(await page.getByTestId('export-merged-refused').innerText()).toMatch(/virtual tokens/);
    folders.prompt = p.files;
    promptZip = join(tmpdir(), `graft-${Date.now()}-prompt-tuning.zip`);
    writeFileSync(promptZip, readFileSync(p.path));

    expect(await nodeAnswer(folders.bottleneck)).toBe(answers.bottleneck);
    expect(await nodeAnswer(folders.prompt)).toBe(answers.prompt);
  }, 180_000);

  it('imports the prompt-tuning zip back on the Export screen', async () => {
    expect(promptZip).not.toBe('');
    await page.getByLabel('Adapter files').setInputFiles(promptZip);
    await page.getByLabel('Name (optional)').fill('prompt back');
    await page.getByTestId('import-adapter').getByRole('button', { name: 'Import' }).click();
    await expect.poll(() => page.getByTestId('imported').innerText().catch(() => ''), { timeout: 20_000 }).toMatch(/Imported prompt back: prompt tuning, 4 virtual tokens \(started from a text\)/);
    // Only LoRA adapters train further.
    expect(await page.getByTestId('imported').getByRole('button', { name: 'Keep training it' }).count()).toBe(0);
    rmSync(promptZip, { force: true });
    // A bottleneck adapter continues with finetuning_type adapter and its own settings.
    const pick = page.getByTestId('export-pick');
    await pick.selectOption((await pick.locator('option', { hasText: '— bottleneck adapter on' }).first().getAttribute('value'))!);
    await page.getByTestId('export-results').getByRole('button', { name: 'Keep training it' }).click();
    await page.getByRole('heading', { level: 2, name: 'Train' }).waitFor();
    expect(await page.getByTestId('continue-adapter').innerText({ timeout: 10_000 })).toMatch(/bottleneck adapter, houlsby .*with its own placement, reduction factor and non-linearity/);
    expect(await page.getByTestId('train-job').innerText()).toMatch(/adapter \(bottleneck adapters/);
  }, 60_000);
});
