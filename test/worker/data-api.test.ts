// The worker's dataset rows behind the Data screen (src/worker/data-api.ts), in Node: rows and problems as the
// data layer reports them, edits validated again, removal, what the trainer gets, the settings check.
// (IndexedDB is absent here, so nothing is stored; the browser test covers the reload.)
import { describe, expect, it } from 'vitest';
import { parseDatasetText } from '../../src/data/parse';
import { dataApi } from '../../src/worker/data-api';
import { whereOf } from '../../src/worker/dataset-rows';
import { DatasetService } from '../../src/worker/datasets';
import type { RowFields } from '../../src/worker/protocol';

const BROKEN = [
  '{"instruction": "What is Graft?", "input": "", "output": "A fine-tuning app."}',
  '{"instruction": "Broken line", "output": ',
  '{"instruction": "Say hi", "input": "", "output": "Hi!"}',
  '{"instruction": "No answer field here", "input": ""}',
  '{"instruction": "Empty answer", "input": "", "output": ""}',
  '',
  '{"instruction": "Count to two", "input": "", "output": "One, two."}',
].join('\n');

async function rowsOf(s: DatasetService, id: string) {
  return (await s.rows(id, { offset: 0, limit: 100 })).rows;
}

describe('DatasetService', () => {
  it('keeps every record as a row, with the problems the data layer reports, by line', async () => {
    const s = new DatasetService(false);
    const sum = await s.openBytes(BROKEN, 'broken.jsonl');
    expect(sum).toMatchObject({ name: 'broken.jsonl', container: 'jsonl', format: 'alpaca', rows: 6, valid: 3, problemCount: 3, edited: 0 });
    const parsed = parseDatasetText(BROKEN, 'broken.jsonl');
    expect(sum.problems.map((p) => [p.line, p.reason])).toEqual(parsed.problems.map((p) => [p.line, p.reason]));
    expect(sum.problems.map((p) => p.where)).toEqual(['line 2', 'line 4', 'line 5']);
    const rows = await rowsOf(s, sum.id);
    expect(rows.map((r) => r.where)).toEqual(['line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'line 7']);
    expect(rows[1]).toMatchObject({ fields: { kind: 'json', json: '{"instruction": "Broken line", "output": ' } });
    expect(rows[3]).toMatchObject({ fields: { kind: 'alpaca', instruction: 'No answer field here', output: '' } });
    expect(rows[0]).toMatchObject({ prompt: 'What is Graft?', answer: 'A fine-tuning app.', turns: 2 });
    // Only the problem rows.
    const page = await s.rows(sum.id, { offset: 0, limit: 10, only: 'problems' });
    expect(page.total).toBe(3);
    expect(page.rows.map((r) => r.row)).toEqual([1, 3, 4]);
  });

  it('validates an edited row again, and gives the trainer the valid records with the edits', async () => {
    const s = new DatasetService(false);
    const { id } = await s.openBytes(BROKEN, 'broken.jsonl');
    const fix: RowFields = { kind: 'alpaca', instruction: 'No answer field here', input: '', output: 'Here.', system: '', history: 0 };
    let u = await s.update(id, 3, fix);
    expect(u.row).toMatchObject({ edited: true, answer: 'Here.' });
    expect(u.row.problem).toBeUndefined();
    expect(u.summary).toMatchObject({ valid: 4, problemCount: 2, edited: 1 });
    // A broken JSON line fixed as JSON.
    u = await s.update(id, 1, { kind: 'json', json: '{"instruction": "Fixed", "output": "Yes."}' });
    expect(u.summary).toMatchObject({ valid: 5, problemCount: 1 });
    // Still broken JSON: the reason says so.
    u = await s.update(id, 1, { kind: 'json', json: '{"instruction": ' });
    expect(u.row.problem).toMatch(/^not valid JSON/);
    // Removing a row takes it out of the counts and of training.
    u = await s.update(id, 4, { kind: 'removed' });
    expect(u.summary).toMatchObject({ rows: 5, valid: 4, problemCount: 1 });
    const { records } = await s.conversations(id);
    expect(records.map((r) => r.messages[1]!.content)).toEqual(['A fine-tuning app.', 'Hi!', 'Here.', 'One, two.']);
    expect(records[2]!.source).toEqual({ line: 4 });
    // The edited file: every row that is not removed, as JSON Lines.
    const jsonl = await s.jsonl(id);
    expect(jsonl.split('\n').filter(Boolean)).toHaveLength(5);
    expect(jsonl).toContain('"output":"Here."');
    // A removed row can come back with its fields.
    u = await s.update(id, 4, { kind: 'alpaca', instruction: 'Empty answer', input: '', output: 'Now one.', system: '', history: 0 });
    expect(u.summary).toMatchObject({ rows: 6, valid: 5 });
  });

  it('reads JSON lists by item, keeps chat formats editable by turn, and reports whole-file problems without rows', async () => {
    const s = new DatasetService(false);
    const list = JSON.stringify([
      { conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello' }], system: 'Be brief.' },
      { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: [{ type: 'text', text: 'Hey' }] }] },
      { messages: [{ role: 'user', content: 'Only a question' }] },
    ]);
    const sum = await s.openBytes(list, 'chats.json');
    expect(sum).toMatchObject({ container: 'json', format: 'mixed', formatCounts: { sharegpt: 1, openai: 1 }, valid: 2, problemCount: 1 });
    expect(sum.problems[0]).toMatchObject({ where: 'item 3', index: 2, row: 2 });
    const rows = await rowsOf(s, sum.id);
    expect(rows[0]!.fields).toEqual({ kind: 'chat', format: 'sharegpt', system: 'Be brief.', turns: [{ role: 'human', content: 'Hi' }, { role: 'gpt', content: 'Hello' }] });
    expect(rows[1]!.fields).toMatchObject({ kind: 'chat', format: 'openai', turns: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hey' }] });
    // Add the missing answer to the OpenAI record through its turns.
    const u = await s.update(sum.id, 2, { kind: 'chat', format: 'openai', system: '', turns: [{ role: 'user', content: 'Only a question' }, { role: 'assistant', content: 'An answer.' }] });
    expect(u.summary).toMatchObject({ valid: 3, problemCount: 0 });

    const pretty = await s.openBytes('{\n  "instruction": "x",\n  "output": "y"\n}\n', 'one.jsonl');
    expect(pretty).toMatchObject({ rows: 0, valid: 0, problemCount: 1 });
    expect(pretty.problems[0]!.row).toBeUndefined();
    expect(pretty.problems[0]!.reason).toMatch(/single JSON object/);
    const broken = await s.openBytes('[{"instruction": "a", "output": "b"} {"x": 1}]', 'bad.json');
    expect(broken).toMatchObject({ rows: 0, problemCount: 1 });
    expect(broken.problems[0]!.where).toBe('line 1');
  });

  it('names places for people', () => {
    expect(whereOf({ line: 7 })).toBe('line 7');
    expect(whereOf({ line: 7, index: 5 })).toBe('line 7');
    expect(whereOf({ index: 0 })).toBe('item 1');
    expect(whereOf({})).toBe('a record');
  });
});

describe('checkSettings', () => {
  it('returns problems by key instead of throwing, and the job YAML when valid', async () => {
    const bad = await dataApi.checkSettings({ model_name_or_path: 'm/x', dataset: 'd.json', learning_rate: 'fast', lora_rank: '0' });
    expect(bad.ok).toBe(false);
    expect(bad.yaml).toBe('');
    expect(bad.problems.map((p) => p.key).sort()).toEqual(['learning_rate', 'lora_rank']);
    const missing = await dataApi.checkSettings({ learning_rate: '1e-4' });
    expect(missing.problems.map((p) => p.key).sort()).toEqual(['dataset', 'model_name_or_path']);
    const good = await dataApi.checkSettings({ model_name_or_path: 'm/x', dataset: 'd.json', cutoff_len: '256', val_size: '0.1' });
    expect(good.ok).toBe(true);
    expect(good.yaml).toContain('cutoff_len: 256');
    expect(good.warnings.join(' ')).toMatch(/val_size/);
  });
});
