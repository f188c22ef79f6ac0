import { describe, expect, it } from 'vitest';
import { parseDatasetText } from '../../src/data/parse';
import { firstInvalidUtf8 } from '../../src/data/parse';
import { readData } from './fixture';

const enc = new TextEncoder();
const line = (v: unknown) => JSON.stringify(v);

describe('fixture datasets', () => {
  it('reads sft_alpaca.json: 16 alpaca records, input joined to the instruction with a newline', () => {
    const d = parseDatasetText(readData('sft_alpaca.json'), 'sft_alpaca.json');
    expect(d.problems).toEqual([]);
    expect(d.format).toBe('alpaca');
    expect(d.container).toBe('json');
    expect(d.records).toHaveLength(16);
    expect(d.records[0]).toEqual({
      messages: [
        { role: 'user', content: '作为法律顾问,请回答以下问题:\n如果我在公司被解雇,我有权获得多少赔偿?' },
        { role: 'assistant', content: '根据《劳动合同法》第47条,经济补偿按劳动者在本单位工作的年限,每满一年支付一个月工资。' },
      ],
      source: { index: 0 },
    });
    // empty input: the instruction alone
    expect(d.records[1]!.messages[0]).toEqual({ role: 'user', content: '用简单的语言解释量子力学。' });
  });

  it('reads sft_sharegpt.json: ShareGPT and OpenAI records normalised to the same shape', () => {
    const d = parseDatasetText(readData('sft_sharegpt.json'), 'sft_sharegpt.json');
    expect(d.problems).toEqual([]);
    expect(d.format).toBe('mixed');
    expect(d.formatCounts).toEqual({ sharegpt: 2, openai: 2 });
    expect(d.records.map(({ source: _s, ...c }) => c)).toEqual([
      {
        messages: [
          { role: 'user', content: 'Hi, who are you?' },
          { role: 'assistant', content: 'I am a small assistant fine-tuned in the browser.' },
          { role: 'user', content: 'What can you do?' },
          { role: 'assistant', content: 'I can answer short questions and follow simple instructions.' },
        ],
      },
      {
        system: 'You are a concise legal assistant.',
        messages: [
          { role: 'user', content: '签订购房合同后,开发商违约怎么办?' },
          { role: 'assistant', content: '您可以依据《民法典》要求开发商继续履行、赔偿损失或解除合同。' },
        ],
      },
      {
        system: 'You answer in one word.',
        messages: [
          { role: 'user', content: 'Colour of the sky on a clear day?' },
          { role: 'assistant', content: 'Blue.' },
        ],
      },
      {
        messages: [
          { role: 'user', content: 'Count from one to three.' },
          { role: 'assistant', content: 'One, two, three.' },
        ],
      },
    ]);
  });

  it('reports a stated format that records do not match', () => {
    const d = parseDatasetText(readData('sft_sharegpt.json'), 'sft_sharegpt.json', { format: 'sharegpt' });
    expect(d.records).toHaveLength(2);
    expect(d.problems).toEqual([
      { index: 2, reason: 'this is a openai record, but the dataset was declared sharegpt' },
      { index: 3, reason: 'this is a openai record, but the dataset was declared sharegpt' },
    ]);
  });
});

/** A JSON Lines file in which every kind of bad record occurs once, between good ones. */
const good = { instruction: 'Say hi', input: '', output: 'Hi' };
const badLines: [string, RegExp | null][] = [
  [line(good), null], // 1
  ['{"instruction": "x", "output": ', /not valid JSON/], // 2 malformed JSON
  [line({ instruction: 'x' }), /"output" is missing/], // 3 missing field
  ['', null], // 4 blank: skipped silently
  [line({ conversations: [{ from: 'bot', value: 'x' }, { from: 'gpt', value: 'y' }] }), /turn 1 is from "bot"/], // 5 wrong role
  [line({ instruction: 'x', output: '   ' }), /"output" is empty/], // 6 empty answer
  [line({ messages: [{ role: 'tool', content: 'x' }] }), /role "tool"/], // 7 wrong role (OpenAI)
  [line({ conversations: [{ from: 'human', value: 'a' }, { from: 'gpt', value: 'b' }] }), null], // 8
  [line({ conversations: [{ from: 'human', value: 'a' }, { from: 'gpt', value: 'b' }, { from: 'human', value: 'c' }] }), /ends with a user turn/], // 9
  [line([1, 2]), /must be a JSON object, not a list/], // 10
  [line({ foo: 1 }), /unknown record \(fields "foo"\)/], // 11
  [line({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: '' }] }), /answer 1 \(turn 2\) is empty/], // 12
  [line({ messages: [{ role: 'user', content: 'q' }, { role: 'user', content: 'q2' }] }), /turn 2 is from the user/], // 13
  [line({ instruction: 'x', output: 5 }), /"output" must be a string, not a number/], // 14
  [line({ messages: [{ role: 'system', content: 's' }, { role: 'user', content: [{ type: 'text', text: 'q' }] }, { role: 'assistant', content: 'a' }] }), null], // 15
  [line({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }, { role: 'assistant', content: 'a' }] }), /part 1 is not text \(type "image_url"\)/], // 16
  [line({ instruction: 'x', output: 'y', history: [['a']] }), /"history" item 0/], // 17
];

function expectReport(d: ReturnType<typeof parseDatasetText>, expected: [number, RegExp][]) {
  expect(d.problems.map((p) => p.line)).toEqual(expected.map(([l]) => l));
  d.problems.forEach((p, i) => expect(p.reason).toMatch(expected[i]![1]));
}

describe('malformed records are reported with their line and skipped', () => {
  const text = badLines.map(([l]) => l).join('\n') + '\n';
  const expected = badLines.flatMap(([, re], i): [number, RegExp][] => (re ? [[i + 1, re]] : []));

  it('JSON Lines text', () => {
    const d = parseDatasetText(text, 'data.jsonl');
    expect(d.container).toBe('jsonl');
    expectReport(d, expected);
    expect(d.records.map((r) => r.source)).toEqual([{ line: 1 }, { line: 8 }, { line: 15 }]);
    expect(d.records[2]).toEqual({ system: 's', messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], source: { line: 15 } });
    expect(d.format).toBe('mixed');
  });

  it('JSON Lines bytes with invalid UTF-8, a BOM, CRLF line ends and a 10 MB line', () => {
    const parts: Uint8Array[] = [new Uint8Array([0xef, 0xbb, 0xbf])];
    const lines = badLines.map(([l]) => enc.encode(l));
    const invalid = Uint8Array.from([...enc.encode('{"instruction": "caf'), 0xe9, ...enc.encode('", "output": "x"}')]); // Latin-1 é
    const huge = enc.encode(line({ instruction: 'long', output: 'x'.repeat(10 * 1024 * 1024) }));
    for (const l of [...lines, invalid, huge, enc.encode(line(good))]) parts.push(l, enc.encode('\r\n'));
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) bytes.set(p, (o += p.length) - p.length);

    const d = parseDatasetText(bytes, 'data.jsonl');
    expectReport(d, [...expected, [18, /not valid UTF-8 text \(byte 21 of the line\)/], [19, /10\.5 MB long, more than the 2\.1 MB/]]);
    expect(d.records.map((r) => r.source!.line)).toEqual([1, 8, 15, 20]);
    expect(d.records[0]!.messages[1]!.content).toBe('Hi');
  });

  it('a 10 MB line given as text', () => {
    const t = [line(good), line({ instruction: 'long', output: '量'.repeat(4 * 1024 * 1024) }), line(good)].join('\n');
    const d = parseDatasetText(t, 'big.jsonl');
    expect(d.problems).toHaveLength(1);
    expect(d.problems[0]!.line).toBe(2);
    expect(d.problems[0]!.reason).toMatch(/12\.6 MB long/);
    expect(d.records).toHaveLength(2);
    // the limit is an option
    expect(parseDatasetText(t, 'big.jsonl', { maxRecordBytes: 20e6 }).records).toHaveLength(3);
  });
});

describe('JSON arrays', () => {
  it('reports bad records by their 0-based index', () => {
    const d = parseDatasetText(JSON.stringify([good, { instruction: 1, output: 'x' }, good, 'str', { output: 'y' }], null, 2), 'a.json');
    expect(d.container).toBe('json');
    expect(d.problems).toEqual([
      { index: 1, reason: '"instruction" must be a string, not a number' },
      { index: 3, reason: 'a record must be a JSON object, not a string' },
      { index: 4, reason: '"instruction" is missing' },
    ]);
    expect(d.records.map((r) => r.source)).toEqual([{ index: 0 }, { index: 2 }]);
  });

  it('recovers the good records of a one-record-per-line array with a broken line', () => {
    const t = ['[', `${line(good)},`, '{"instruction": "x", "output": "y",,},', `${line(good)},`, `${line({ instruction: 'q', output: 'a' })}`, ']'].join('\n');
    const d = parseDatasetText(t, 'a.json');
    expect(d.problems).toHaveLength(1);
    expect(d.problems[0]).toMatchObject({ line: 3, index: 1 });
    expect(d.problems[0]!.reason).toMatch(/not valid JSON/);
    expect(d.records.map((r) => r.source)).toEqual([
      { line: 2, index: 0 },
      { line: 4, index: 2 },
      { line: 5, index: 3 },
    ]);
  });

  it('recovers from invalid UTF-8 bytes in an array file', () => {
    const bytes = Uint8Array.from([...enc.encode(`[${line(good)},\n{"instruction": "`), 0xff, ...enc.encode(`", "output": "x"},\n${line(good)}]\n`)]);
    const d = parseDatasetText(bytes, 'a.json');
    expect(d.problems).toEqual([{ line: 2, index: 1, reason: expect.stringMatching(/not valid UTF-8/) as unknown as string }]);
    expect(d.records).toHaveLength(2);
  });

  it('names the line of a syntax error in a pretty-printed array', () => {
    const t = JSON.stringify([good, good], null, 2).replace('"Hi"\n  },', '"Hi"\n  };');
    const d = parseDatasetText(t, 'pretty.json');
    expect(d.records).toEqual([]);
    expect(d.problems).toHaveLength(1);
    expect(d.problems[0]!.line).toBe(6);
    expect(d.problems[0]!.reason).toMatch(/^pretty\.json is not valid JSON, so no record could be read/);
  });

  it('an empty file, a pretty-printed object and alpaca history/system', () => {
    expect(parseDatasetText(' \n', 'e.jsonl').problems).toEqual([{ reason: 'e.jsonl is empty' }]);
    expect(parseDatasetText(JSON.stringify(good, null, 2), 'o.jsonl').problems[0]!.reason).toMatch(/single JSON object spread over several lines/);
    const d = parseDatasetText(line({ system: 'S', instruction: 'q2', input: 'ctx', output: 'a2', history: [['q1', 'a1']] }), 'h.jsonl');
    expect(d.records[0]).toEqual({
      system: 'S',
      messages: [
        { role: 'user', content: 'q1' },
        { role: 'assistant', content: 'a1' },
        { role: 'user', content: 'q2\nctx' },
        { role: 'assistant', content: 'a2' },
      ],
      source: { line: 1 },
    });
  });

  it('ShareGPT: an in-conversation system turn wins over the top-level one; later system turns are refused', () => {
    const d = parseDatasetText(
      [
        line({ system: 'top', conversations: [{ from: 'system', value: 'inner' }, { from: 'user', value: 'q' }, { from: 'assistant', value: 'a' }] }),
        line({ conversations: [{ from: 'human', value: 'q' }, { from: 'system', value: 's' }] }),
      ].join('\n'),
      's.jsonl',
    );
    expect(d.records[0]!.system).toBe('inner');
    expect(d.problems[0]).toMatchObject({ line: 2, reason: expect.stringMatching(/system prompt is only allowed first/) as unknown as string });
  });
});

describe('firstInvalidUtf8', () => {
  it('finds the first byte that breaks UTF-8', () => {
    expect(firstInvalidUtf8(enc.encode('aé量😀'))).toBe(-1);
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0xc3]))).toBe(1); // truncated
    expect(firstInvalidUtf8(Uint8Array.from([0xc0, 0x80]))).toBe(0); // overlong
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0xed, 0xa0, 0x80]))).toBe(1); // surrogate
    expect(firstInvalidUtf8(Uint8Array.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0); // > U+10FFFF
  });
});

describe('the task field (multi-task training)', () => {
  it('reads the multi-task fixture ({task, input, output}: the input alone is the prompt)', () => {
    const d = parseDatasetText(readData('multitask.json'), 'multitask.json');
    expect(d.problems).toEqual([]);
    expect(d.records.map((r) => r.task)).toEqual(['情感分析', '情感分析', 'sentiment', 'sentiment', '文本摘要', 'summary', 'translation', 'translation']);
    expect(d.records[2]!.messages).toEqual([
      { role: 'user', content: 'The food was cold and the waiter was rude.' },
      { role: 'assistant', content: 'negative' },
    ]);
  });

  it('is kept on records of every format; a task that is not a non-empty string is a problem on its line', () => {
    const text = [
      line({ instruction: 'a', output: 'b', task: ' qa ' }),
      line({ conversations: [{ from: 'human', value: 'x' }, { from: 'gpt', value: 'y' }], task: 'chat' }),
      line({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }], task: 'chat' }),
      line({ instruction: 'a', output: 'b' }),
      line({ instruction: 'a', output: 'b', task: 3 }),
      line({ instruction: 'a', output: 'b', task: '' }),
    ].join('\n');
    const d = parseDatasetText(text, 't.jsonl');
    expect(d.records.map((r) => r.task)).toEqual(['qa', 'chat', 'chat', undefined]);
    expect(d.problems).toEqual([
      { line: 5, reason: '"task" must name the record\'s task (a non-empty string), not a number' },
      { line: 6, reason: '"task" must name the record\'s task (a non-empty string), not an empty one' },
    ]);
  });
});
