// Data as people bring it, in the app's Data screen (headless Chromium; the worker reads the files):
//   the primer's four examples verbatim (test/fixtures/data/primer: "//" comments, a trailing comma), by pick,
//   paste and drop: each loads with the note that says what was tolerated and the right record count, a preference
//   pair shows prompt / chosen / rejected and a multi-task record its task; a really broken file names its line,
//   column and cause; a {question, answer} file is offered a column mapping, reads through it, and the mapping is
//   still there after a reload.
// Screenshots go to test-results/data-formats-*.png. Never skips.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app-page';
import { expectWebGpuAdapter, REPO_ROOT, type LaunchedBrowser, type StaticServer } from '../helpers/browser';

const primer = (name: string) => readFileSync(join(REPO_ROOT, 'test/fixtures/data/primer', name), 'utf8');

let server: StaticServer;
let browser: LaunchedBrowser;
let page: Page;
const { failWith, shoot, go } = useApp('data-formats', (s) => ({ page, browser, server } = s));

const summary = () => page.getByTestId('dataset-summary');

/** Waits until the Data screen shows the dataset `name` with `valid` usable records. */
async function loaded(name: string, valid: number): Promise<void> {
  try {
    await expect.poll(() => page.locator('#summary-heading').innerText().catch(() => ''), { timeout: 20_000 }).toBe(name);
    await expect.poll(() => summary().getAttribute('data-valid'), { timeout: 10_000 }).toBe(String(valid));
  } catch (e) {
    failWith(`${name} did not load with ${valid} records: ${String(e)}\nThe screen says: ${await page.locator('main').innerText().catch(() => '?')}`);
  }
}

async function pick(name: string, text: string): Promise<void> {
  await page.getByLabel('Choose a dataset file').setInputFiles({ name, mimeType: 'application/json', buffer: Buffer.from(text) });
}

async function drop(name: string, text: string): Promise<void> {
  const dataTransfer = await page.evaluateHandle(
    ({ name, text }) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], name, { type: 'application/json' }));
      return dt;
    },
    { name, text },
  );
  await page.dispatchEvent('.dropzone', 'drop', { dataTransfer });
}

const notes = () => page.getByTestId('dataset-note').allInnerTexts();

describe("the Data screen reads data as people type it", () => {
  it("loads the primer's four examples verbatim by pick, paste and drop, with the note, by the reader of their kind", async () => {
    await page.goto(server.url);
    await expectWebGpuAdapter(page, browser, failWith);
    await go('Data', 'Bring a dataset');

    // sft.json, picked: its "// 可选指令模板" comment is tolerated with one note.
    await pick('sft.json', primer('sft.json'));
    await loaded('sft.json', 2);
    expect(await summary().getAttribute('data-kind')).toBe('sft');
    expect(await summary().getAttribute('data-problems')).toBe('0');
    expect(await notes()).toEqual([expect.stringMatching(/^sft\.json is not strict JSON: it has 1 comment \(first at line 3\), which were ignored/)]);
    expect(await page.getByTestId('dataset-counts').innerText()).toMatch(/^2 records to train on$/);
    expect(await page.getByTestId('dataset-kind').innerText()).toMatch(/supervised fine-tuning/);

    // instruction.json, pasted.
    await page.getByLabel('Or paste records').fill(primer('instruction.json'));
    await page.getByRole('button', { name: 'Read the pasted records' }).click();
    await loaded('pasted.jsonl', 2);
    expect(await notes()).toEqual([expect.stringMatching(/not strict JSON: it has 1 comment \(first at line 4\)/)]);

    // multitask.json, dropped: a trailing comma; each record shows its task.
    await drop('multitask.json', primer('multitask.json'));
    await loaded('multitask.json', 2);
    expect(await notes()).toEqual([expect.stringMatching(/not strict JSON: it has 1 trailing comma \(first at line 5\)/)]);
    expect(await page.getByTestId('dataset-tasks').innerText()).toBe('情感分析 (1), 文本摘要 (1)');
    const rows = page.getByTestId('record-row');
    await expect.poll(() => rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-task')))).toEqual(['情感分析', '文本摘要']);
    expect(await page.getByTestId('record-task').allInnerTexts()).toEqual(['task: 情感分析', 'task: 文本摘要']);
    expect(await rows.first().innerText()).toContain('这款手机的电池寿命太短了');

    // rlhf.json, picked: a preference pair, shown as prompt / chosen / rejected.
    await pick('rlhf.json', primer('rlhf.json'));
    await loaded('rlhf.json', 1);
    expect(await summary().getAttribute('data-kind')).toBe('preference');
    expect(await page.getByTestId('dataset-kind').innerText()).toMatch(/preference pairs \(prompt, chosen, rejected\)/);
    expect(await page.getByTestId('dataset-counts').innerText()).toMatch(/^1 preference pair to train on$/);
    expect(await notes()).toEqual([expect.stringMatching(/not strict JSON: it has 2 comments \(first at line 6\)/)]);
    await expect.poll(() => rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')))).toEqual(['preference']);
    expect(await rows.first().innerText()).toContain('请写一篇关于气候变化的文章。');
    expect(await page.getByTestId('record-chosen').innerText()).toMatch(/^chosen\s+气候变化是人类面临的最紧迫问题之一/);
    expect(await page.getByTestId('record-rejected').innerText()).toMatch(/^rejected\s+气候变化是媒体夸大的骗局/);
    await shoot('preference');
  });

  it('names the line, column and cause of a real syntax error', async () => {
    const broken = ['[', '  {', "    'instruction': \"Say hi\",", '    "output": "Hi!"', '  }', ']', ''].join('\n');
    await pick('broken.json', broken);
    await loaded('broken.json', 0);
    const problem = page.getByTestId('problem');
    await expect.poll(() => problem.count()).toBe(1);
    expect(await problem.getAttribute('data-line')).toBe('3');
    expect(await problem.innerText()).toMatch(/^line 3: broken\.json is not valid JSON, so no record could be read: line 3, column 5: strings and property names must be in double quotes/);
  });

  it('offers a column mapping for {question, answer}, reads the records through it, and remembers it after a reload', async () => {
    const qa = [
      '{"question": "What is Graft?", "answer": "A fine-tuning app in the browser."}',
      '{"question": "Say hi", "answer": "Hi!"}',
    ].join('\n');
    await pick('qa.jsonl', qa);
    await loaded('qa.jsonl', 0);
    expect(await summary().getAttribute('data-problems')).toBe('2');
    const mapping = page.getByTestId('column-mapping');
    await mapping.waitFor({ timeout: 10_000 });
    // The first guess: question → prompt, answer → response.
    expect(await page.getByLabel('Column for question').inputValue()).toBe('prompt');
    expect(await page.getByLabel('Column for answer').inputValue()).toBe('response');
    await page.getByRole('button', { name: 'Apply the mapping' }).click();
    await expect.poll(() => mapping.getAttribute('data-mapped'), { timeout: 10_000 }).toBe('yes');
    await loaded('qa.jsonl', 2);
    expect(await summary().getAttribute('data-problems')).toBe('0');
    expect(await page.getByTestId('mapping-applied').innerText()).toMatch(/question → prompt, answer → response/);
    const rows = page.getByTestId('record-row');
    await expect.poll(() => rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-valid')))).toEqual(['yes', 'yes']);
    expect(await rows.first().innerText()).toMatch(/What is Graft\?[\s\S]*A fine-tuning app in the browser\./);
    await shoot('mapping');

    await page.reload();
    await page.getByRole('heading', { level: 2, name: 'Bring a dataset' }).waitFor({ timeout: 15_000 });
    await loaded('qa.jsonl', 2);
    expect(await page.getByTestId('column-mapping').getAttribute('data-mapped')).toBe('yes');
    expect(await page.getByTestId('mapping-applied').innerText()).toMatch(/question → prompt, answer → response/);
  });
});
