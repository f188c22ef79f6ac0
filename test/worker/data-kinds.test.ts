// The Data screen's rows for data as people bring it (src/worker/dataset-rows.ts, datasets.ts), in Node: the
// primer's four examples as typed (comments, trailing commas) with the reader's note, each record read by the
// reader of its kind (SFT, preference pairs, multi-task), a {question, answer} file read through a column mapping
// that is remembered with the file (fake-indexeddb), and a real syntax error with its line and column.
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DatasetService } from '../../src/worker/datasets';

const primer = (name: string) => readFileSync(new URL(`../fixtures/data/primer/${name}`, import.meta.url), 'utf8');

describe("the primer's examples in the Data screen's rows", () => {
  it('loads each as typed, with the note about comments and trailing commas, by the reader of its kind', async () => {
    const s = new DatasetService(false);
    const sft = await s.openBytes(primer('sft.json'), 'sft.json');
    expect(sft).toMatchObject({ container: 'json', kind: 'sft', format: 'alpaca', rows: 2, valid: 2, problemCount: 0 });
    expect(sft.notes).toHaveLength(1);
    expect(sft.notes[0]).toMatch(/sft\.json is not strict JSON: it has 1 comment \(first at line 3\)/);
    const instruction = await s.openBytes(primer('instruction.json'), 'instruction.json');
    expect(instruction).toMatchObject({ kind: 'sft', valid: 2, problemCount: 0 });
    expect(instruction.notes[0]).toMatch(/1 comment/);
    const multitask = await s.openBytes(primer('multitask.json'), 'multitask.json');
    expect(multitask).toMatchObject({ kind: 'sft', valid: 2, tasks: { 情感分析: 1, 文本摘要: 1 } });
    expect(multitask.notes[0]).toMatch(/1 trailing comma \(first at line 5\)/);
    const rows = (await s.rows(multitask.id, { offset: 0, limit: 10 })).rows;
    expect(rows.map((r) => [r.kind, r.task, r.prompt])).toEqual([
      ['sft', '情感分析', '这款手机的电池寿命太短了,太失望了。'],
      ['sft', '文本摘要', '近日,某科技公司发布了一款新产品...'],
    ]);
    const rlhf = await s.openBytes(primer('rlhf.json'), 'rlhf.json');
    expect(rlhf).toMatchObject({ kind: 'preference', kindCounts: { preference: 1 }, format: null, valid: 1, problemCount: 0 });
    expect(rlhf.notes[0]).toMatch(/2 comments/);
    const pair = (await s.rows(rlhf.id, { offset: 0, limit: 10 })).rows[0]!;
    expect(pair).toMatchObject({ kind: 'preference', prompt: '请写一篇关于气候变化的文章。', chosen: expect.stringMatching(/^气候变化是人类/), rejected: '气候变化是媒体夸大的骗局,无需在意。' });
    // Preference pairs are not SFT conversations: the SFT trainer gets none of them.
    expect((await s.conversations(rlhf.id)).records).toEqual([]);
  });

  it('names the line, column and cause of a real syntax error', async () => {
    const s = new DatasetService(false);
    const broken = await s.openBytes('[\n  {\n    \'instruction\': "x",\n    "output": "y"\n  }\n]\n', 'broken.json');
    expect(broken).toMatchObject({ rows: 0, valid: 0, problemCount: 1 });
    expect(broken.problems[0]).toMatchObject({ where: 'line 3', line: 3 });
    expect(broken.problems[0]!.reason).toMatch(/line 3, column 5: strings and property names must be in double quotes/);
  });

  it('tells pre-training text and KTO records from unknown ones', async () => {
    const s = new DatasetService(false);
    const text = await s.openBytes('{"text": "Some plain text."}\n', 'pt.jsonl');
    expect(text).toMatchObject({ kind: 'text', valid: 0, unknownFields: [] });
    expect(text.problems[0]!.reason).toMatch(/pre-training text/);
    const kto = await s.openBytes('{"instruction": "Hi", "output": "Hello", "kto_tag": true}\n', 'kto.jsonl');
    expect(kto).toMatchObject({ kind: 'kto', valid: 0 });
  });
});

describe('column mapping', () => {
  const QA = [
    '{"question": "What is Graft?", "answer": "A fine-tuning app."}',
    '{"question": "Say hi", "answer": "Hi!"}',
    '{"question": "Empty answer", "answer": ""}',
  ].join('\n');

  it('offers the unknown fields, reads the records through the mapping, and remembers it for the file', async () => {
    const s = new DatasetService();
    const opened = await s.openBytes(QA, 'qa.jsonl');
    expect(opened).toMatchObject({ kind: null, valid: 0, problemCount: 3, unknownFields: ['question', 'answer'], mapping: null });
    const mapping = { formatting: 'alpaca' as const, columns: { prompt: 'question', response: 'answer' } };
    const mapped = await s.setMapping(opened.id, mapping);
    expect(mapped).toMatchObject({ kind: 'sft', format: 'alpaca', valid: 2, problemCount: 1, unknownFields: [], mapping });
    expect(mapped.problems[0]!.reason).toMatch(/"output" is empty/);
    expect((await s.conversations(opened.id)).records[0]!.messages).toEqual([
      { role: 'user', content: 'What is Graft?' },
      { role: 'assistant', content: 'A fine-tuning app.' },
    ]);
    // An edit is read through the mapping too.
    const u = await s.update(opened.id, 2, { kind: 'json', json: '{"question": "Empty answer", "answer": "Now one."}' });
    expect(u.summary).toMatchObject({ valid: 3, problemCount: 0 });

    // A reloaded worker: the mapping and the edit come back with the dataset.
    const back = await new DatasetService().restore(opened.id);
    expect(back).toMatchObject({ valid: 3, mapping });
    // The same file opened again gets its mapping; another file does not.
    const again = await new DatasetService().openBytes(QA, 'qa.jsonl');
    expect(again).toMatchObject({ valid: 2, mapping });
    const other = await new DatasetService().openBytes(QA + '\n', 'qa.jsonl');
    expect(other).toMatchObject({ valid: 0, mapping: null });

    // A ranking mapping makes preference pairs; a column LLaMA-Factory does not have is refused, naming it.
    const pairs = await s.openBytes('{"q": "Which?", "good": "This.", "bad": "That."}\n', 'pairs.jsonl');
    const ranked = await s.setMapping(pairs.id, { formatting: 'alpaca', ranking: true, columns: { prompt: 'q', chosen: 'good', rejected: 'bad' } });
    expect(ranked).toMatchObject({ kind: 'preference', valid: 1 });
    await expect(s.setMapping(pairs.id, { formatting: 'alpaca', columns: { answer: 'x' } as never })).rejects.toThrow(/"columns" has "answer"/);
    // Dropping the mapping reads the records as they are again.
    expect(await s.setMapping(opened.id, null)).toMatchObject({ valid: 0, mapping: null });
  });
});
