import { describe, expect, it } from 'vitest';
import { readJsonRecords } from '../../src/data/json-file';
import { parseDatasetText } from '../../src/data/parse';
import { parsePreferenceText } from '../../src/data/preference';
import { readData } from './fixture';

const enc = new TextEncoder();

describe("the primer's four data examples, typed with their comments", () => {
  it('SFT: loads with one note about the comment; the record without an instruction keeps its input as the prompt', () => {
    const d = parseDatasetText(enc.encode(readData('primer/sft.json')), 'sft.json');
    expect(d.problems).toEqual([]);
    expect(d.records.map((r) => r.messages[0]!.content)).toEqual(['作为法律顾问,请回答以下问题:\n如果我在公司被解雇,我有权获得多少赔偿?', '签订购房合同后,开发商违约怎么办?']);
    expect(d.notes).toEqual([expect.stringMatching(/^sft\.json is not strict JSON: it has 1 comment \(first at line 3\), which were ignored/)]);
  });

  it('instruction tuning: a comment right after a comma', () => {
    const d = parseDatasetText(readData('primer/instruction.json'), 'instruction.json');
    expect(d.problems).toEqual([]);
    expect(d.records).toHaveLength(2);
    expect(d.notes![0]).toMatch(/1 comment \(first at line 4\)/);
  });

  it('RLHF: read by the preference reader, score and reject_reason kept', () => {
    const d = parsePreferenceText(readData('primer/rlhf.json'), 'rlhf.json');
    expect(d.problems).toEqual([]);
    expect(d.records).toHaveLength(1);
    expect(d.records[0]).toMatchObject({ chosen: '气候变化是人类面临的最紧迫问题之一。科学研究表明...', score: { chosen: 5, rejected: 1 }, rejectReason: '否定科学共识' });
    expect(d.notes![0]).toMatch(/2 comments \(first at line 6\)/);
  });

  it('multi-task: the trailing comma is tolerated and named', () => {
    const d = parseDatasetText(readData('primer/multitask.json'), 'multitask.json');
    expect(d.problems).toEqual([]);
    expect(d.records.map((r) => r.task)).toEqual(['情感分析', '文本摘要']);
    expect(d.notes![0]).toMatch(/^multitask\.json is not strict JSON: it has 1 trailing comma \(first at line 5\)/);
  });
});

describe('syntax errors name the line, the column and the cause', () => {
  const cases: [string, string, number, RegExp][] = [
    ['single quotes', "[\n  {'instruction': 'a', 'output': 'b'}\n]", 2, /line 2, column 4: strings and property names must be in double quotes/],
    ['a missing comma', '[\n  {"instruction": "a"\n   "output": "b"}\n]', 3, /line 3, column 4: a comma is expected between two items/],
    ['an unclosed comment', '[\n  {"instruction": "a", "output": "b"} /* oops\n]', 2, /a \/\* comment is not closed/],
    ['a missing ]', '[\n  {\n    "instruction": "a",\n    "output": "b"\n  }\n', 6, /a closing \] is missing/],
  ];
  for (const [what, text, line, cause] of cases) {
    it(what, () => {
      const d = parseDatasetText(text, 'bad.json');
      expect(d.records).toEqual([]);
      expect(d.problems).toHaveLength(1);
      expect(d.problems[0]!.line).toBe(line);
      expect(d.problems[0]!.reason).toMatch(/^bad\.json is not valid JSON, so no record could be read: /);
      expect(d.problems[0]!.reason).toMatch(cause);
    });
  }
});

describe('JSON or JSON Lines is decided before any line limit', () => {
  it('20,000 alpaca records as one 5 MB line (json.dump) load', () => {
    const records = Array.from({ length: 20_000 }, (_, i) => ({ instruction: `Question ${i} ${'x'.repeat(200)}`, input: '', output: `Answer ${i}` }));
    const bytes = enc.encode(JSON.stringify(records, null, 0).replaceAll('","', '", "'));
    expect(bytes.length).toBeGreaterThan(4 * 1024 * 1024);
    const d = parseDatasetText(bytes, 'big.json');
    expect(d.problems).toEqual([]);
    expect(d.container).toBe('json');
    expect(d.records).toHaveLength(20_000);
    expect(d.records[19_999]!.messages[1]!.content).toBe('Answer 19999');
  });

  it('a comment before the [ still means one JSON list', () => {
    const r = readJsonRecords('// exported 2024\n[{"instruction": "a", "output": "b"}]', 'c.json');
    expect(r.container).toBe('json');
    expect(r.items).toHaveLength(1);
  });

  it('a JSON Lines record longer than maxRecordBytes is still refused on its line', () => {
    const t = `{"instruction": "a", "output": "b"}\n{"instruction": "${'y'.repeat(300)}", "output": "b"}\n`;
    const r = readJsonRecords(t, 'x.jsonl', { maxRecordBytes: 100 });
    expect(r.items).toHaveLength(1);
    expect(r.problems).toEqual([{ line: 2, reason: expect.stringMatching(/more than the 0\.0 MB a JSON Lines record may have/) as unknown as string }]);
  });
});
