// Preference data: the formats read (pairs, alpaca and ShareGPT/OpenAI ranking records), every skipped record
// named by line or index with its reason, scores and reject reasons kept, pairs whose score prefers the
// rejected answer flagged, and the encoding of each answer as an SFT example (prompt masked, cut to cutoff_len).
import { describe, expect, it } from 'vitest';
import { encodeConversation, inferSeqlen } from '../../src/data/encode';
import {
  encodePreferencePair,
  normalisePreferenceRecord,
  parsePreferenceText,
  preparePreferenceData,
  type PreferenceRecord,
} from '../../src/data/preference';
import { fixtureTemplate, fixtureTokenizer, readData } from './fixture';

const line = (v: unknown) => JSON.stringify(v);
const pair = (over: Record<string, unknown> = {}) => ({ prompt: 'Is the sky blue?', chosen: 'Yes, on a clear day.', rejected: 'No, it is green.', ...over });

describe('reading preference datasets', () => {
  it('dpo.json: 6 pairs with their scores and reject reasons, nothing skipped or flagged', () => {
    const d = parsePreferenceText(readData('dpo.json'), 'dpo.json');
    expect(d.problems).toEqual([]);
    expect(d.warnings).toEqual([]);
    expect(d.format).toBe('pairs');
    expect(d.container).toBe('json');
    expect(d.records).toHaveLength(6);
    expect(d.records[0]).toEqual({
      prompt: [{ role: 'user', content: '请写一篇关于气候变化的文章。' }],
      chosen: '气候变化是人类面临的最紧迫问题之一。科学研究表明,温室气体排放正在使地球变暖。',
      rejected: '气候变化是媒体夸大的骗局,无需在意。',
      score: { chosen: 5, rejected: 1 },
      rejectReason: '否定科学共识',
      source: { index: 0 },
    });
    expect(d.records[1]!.score).toBeUndefined();
    expect(d.records[2]!.rejectReason).toBe('dangerous advice');
    expect(d.records[3]!.score).toEqual({ chosen: 5, rejected: 0 });
  });

  it('JSON Lines: each unusable record is skipped with its line and reason; a score that prefers the rejected answer is kept and flagged', () => {
    const text = [
      line(pair()),
      line({ prompt: 'p', chosen: 'a' }),
      line(pair({ rejected: '  Yes, on a clear day. ' })),
      line(pair({ prompt: '   ' })),
      '{"prompt": "broken", ',
      line(pair({ score: { chosen: 1, rejected: 3 }, reject_reason: 'swapped?' })),
      line(pair({ score: 'high' })),
      line({ instruction: 'an SFT record', output: 'x' }),
      '',
      line(pair({ chosen: '' })),
      line(pair({ score: { chosen: 2, rejected: 2 } })),
      line(pair({ reject_reason: 7 })),
      line(pair({ system: 'Be brief.' })),
    ].join('\n');
    const d = parsePreferenceText(text, 'pairs.jsonl');
    expect(d.container).toBe('jsonl');
    const reasons = Object.fromEntries(d.problems.map((p) => [p.line, p.reason]));
    expect(Object.keys(reasons).map(Number)).toEqual([2, 3, 4, 5, 7, 8, 10, 12]);
    expect(reasons[2]).toMatch(/"rejected" is missing/);
    expect(reasons[3]).toMatch(/chosen and rejected are the same answer/);
    expect(reasons[4]).toMatch(/the prompt is empty/);
    expect(reasons[5]).toMatch(/not valid JSON/);
    expect(reasons[7]).toMatch(/"score" must be an object/);
    expect(reasons[8]).toMatch(/not a preference pair/);
    expect(reasons[10]).toMatch(/"chosen" is empty/);
    expect(reasons[12]).toMatch(/"reject_reason" must be a string/);
    expect(d.records.map((r) => r.source!.line)).toEqual([1, 6, 11, 13]);
    expect(d.records[1]).toMatchObject({ score: { chosen: 1, rejected: 3 }, rejectReason: 'swapped?' });
    expect(d.records[3]!.system).toBe('Be brief.');
    expect(d.warnings.map((w) => w.line)).toEqual([6, 11]);
    expect(d.warnings[0]!.reason).toMatch(/rates the chosen answer 1 and the rejected one 3/);
  });

  it('a JSON array names skipped records by index; bytes that are not UTF-8 are named by line', () => {
    const d = parsePreferenceText(`[\n${[line(pair()), line({ prompt: 'p', rejected: 'r' }), line(pair())].join(',\n')}\n]`, 'pairs.json');
    expect(d.problems).toEqual([{ index: 1, reason: '"chosen" is missing: a preference pair needs a chosen answer' }]);
    expect(d.records.map((r) => r.source)).toEqual([{ index: 0 }, { index: 2 }]);
    const enc = new TextEncoder();
    const bytes = new Uint8Array([...enc.encode(`${line(pair())}\n{"prompt": "`), 0xff, ...enc.encode('", "chosen": "a", "rejected": "b"}\n')]);
    const b = parsePreferenceText(bytes, 'bytes.jsonl');
    expect(b.records).toHaveLength(1);
    expect(b.problems).toEqual([{ line: 2, reason: expect.stringMatching(/not valid UTF-8/) as unknown as string }]);
    expect(parsePreferenceText('', 'empty.json').problems[0]!.reason).toMatch(/empty/);
  });

  it("LLaMA-Factory's ranking format (ShareGPT conversations or OpenAI messages + chosen/rejected messages) and alpaca ranking columns", () => {
    const sharegpt = normalisePreferenceRecord({
      conversations: [
        { from: 'system', value: 'You are terse.' },
        { from: 'human', value: 'Hi' },
        { from: 'gpt', value: 'Hello.' },
        { from: 'human', value: 'Capital of France?' },
      ],
      chosen: { from: 'gpt', value: 'Paris.' },
      rejected: { from: 'gpt', value: 'Lyon.' },
    });
    expect(sharegpt).toEqual({
      ok: true,
      format: 'ranking',
      record: {
        system: 'You are terse.',
        prompt: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello.' },
          { role: 'user', content: 'Capital of France?' },
        ],
        chosen: 'Paris.',
        rejected: 'Lyon.',
      },
    });
    const openai = normalisePreferenceRecord({ messages: [{ role: 'user', content: 'Q' }], chosen: { role: 'assistant', content: 'A' }, rejected: 'B' });
    expect(openai).toMatchObject({ ok: true, format: 'ranking', record: { prompt: [{ role: 'user', content: 'Q' }], chosen: 'A', rejected: 'B' } });
    const alpaca = normalisePreferenceRecord({ instruction: 'Translate', input: 'chat', chosen: 'cat', rejected: 'dog', system: 'S' });
    expect(alpaca).toEqual({ ok: true, format: 'alpaca', record: { system: 'S', prompt: [{ role: 'user', content: 'Translate\nchat' }], chosen: 'cat', rejected: 'dog' } });

    const endsWithAnswer = normalisePreferenceRecord({ conversations: [{ from: 'human', value: 'Q' }, { from: 'gpt', value: 'A' }], chosen: { from: 'gpt', value: 'x' }, rejected: { from: 'gpt', value: 'y' } });
    expect(endsWithAnswer).toMatchObject({ ok: false, reason: expect.stringMatching(/must end with the user's turn/) as unknown as string });
    const fromUser = normalisePreferenceRecord({ conversations: [{ from: 'human', value: 'Q' }], chosen: { from: 'human', value: 'x' }, rejected: 'y' });
    expect(fromUser).toMatchObject({ ok: false, reason: expect.stringMatching(/"chosen" is a message from "human"/) as unknown as string });
    const emptyPrompt = normalisePreferenceRecord({ conversations: [], chosen: 'x', rejected: 'y' });
    expect(emptyPrompt).toMatchObject({ ok: false, reason: expect.stringMatching(/the prompt is empty/) as unknown as string });
    const mixed = parsePreferenceText([line(pair()), line({ instruction: 'I', chosen: 'a', rejected: 'b' })].join('\n'), 'mixed.jsonl');
    expect(mixed.format).toBe('mixed');
  });
});

describe('encoding preference pairs', () => {
  const tokenizer = fixtureTokenizer();
  const template = fixtureTemplate();

  it("each answer is encoded as LLaMA-Factory's pairwise processor does: prompt masked, prompt and the longer answer share cutoff_len", () => {
    const [record] = parsePreferenceText(readData('dpo.json'), 'dpo.json').records;
    const e = encodePreferencePair(record!, tokenizer, template, { cutoffLen: 64 });
    const promptIds = tokenizer.encode(template.render([{ role: 'user', content: record!.prompt[0]!.content }], { addGenerationPrompt: true }));
    const answers = (['chosen', 'rejected'] as const).map((w) => tokenizer.encode(template.render([{ role: 'user', content: record!.prompt[0]!.content }, { role: 'assistant', content: record![w] }])).slice(promptIds.length));
    expect([promptIds.length, answers[0]!.length, answers[1]!.length]).toEqual([33, 80, 33]);
    // infer_seqlen(33, max(80, 33), 64) = (19, 45): int(64 · 80/113) = 45 answer tokens, 19 of the prompt
    expect(inferSeqlen(33, 80, 64)).toEqual([19, 45]);
    (['chosen', 'rejected'] as const).forEach((which, k) => {
      const x = e[which];
      const kept = answers[k]!.slice(0, 45);
      expect(x.inputIds).toEqual([...promptIds.slice(0, 19), ...kept]);
      expect(x.labels).toEqual([...new Array(19).fill(-100), ...kept]);
      expect(x.truncated).toBe(true); // the prompt is cut for both
      expect(x.fullLength).toBe(33 + answers[k]!.length);
    });
    expect(e.score).toEqual({ chosen: 5, rejected: 1 });
    expect(e.rejectReason).toBe('否定科学共识');
    // Without truncation, the same tokens as the SFT encoder on the conversation.
    const whole = encodePreferencePair(record!, tokenizer, template, { cutoffLen: 256 });
    const sft = encodeConversation({ messages: [...record!.prompt, { role: 'assistant', content: record!.chosen }] }, tokenizer, template, { cutoffLen: 256 });
    expect(whole.chosen.inputIds).toEqual(sft.inputIds);
    expect(whole.chosen.labels).toEqual(sft.labels);
  });

  it('a multi-turn prompt: earlier answers are part of the prompt, masked (LLaMA-Factory trains on the final answers only)', () => {
    const r: PreferenceRecord = {
      prompt: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello there' },
        { role: 'user', content: 'Name a colour' },
      ],
      chosen: 'Blue',
      rejected: 'No',
    };
    const e = encodePreferencePair(r, tokenizer, template, { cutoffLen: 256 });
    const spans = (ids: number[], labels: number[]) => tokenizer.decode(ids.filter((_, t) => labels[t] !== -100));
    expect(spans(e.chosen.inputIds, e.chosen.labels)).toBe('Blue<|im_end|>\n');
    expect(spans(e.rejected.inputIds, e.rejected.labels)).toBe('No<|im_end|>\n');
  });

  it('a system prompt is rendered; a pair whose prompt fills cutoff_len is reported and left out; val_size splits with the seed', () => {
    const records: PreferenceRecord[] = parsePreferenceText(readData('dpo.json'), 'dpo.json').records;
    const sys = encodePreferencePair({ ...records[1]!, system: 'Be brief.' }, tokenizer, template, { cutoffLen: 256 });
    const plain = encodePreferencePair(records[1]!, tokenizer, template, { cutoffLen: 256 });
    expect(sys.chosen.inputIds.length).toBeGreaterThan(plain.chosen.inputIds.length);
    expect(tokenizer.decode(sys.chosen.inputIds)).toContain('Be brief.');

    const data = preparePreferenceData(records, tokenizer, template, { cutoffLen: 34, shuffle: false });
    // cutoff 1: int(1 · answer/(prompt + answer)) = 0 answer tokens for every pair
    const tight = preparePreferenceData(records, tokenizer, template, { cutoffLen: 1, shuffle: false });
    expect(tight.problems.map((p) => p.index)).toContain(0);
    expect(tight.problems[0]!.reason).toMatch(/record 0: the prompt alone fills cutoff_len \(1 tokens\)/);
    expect(tight.train.length + tight.problems.length).toBe(6);
    expect(data.train.map((p) => p.source!.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(data.stats.pairs).toBe(6);
    expect(data.stats.truncatedPairs).toBe(6);

    const split = preparePreferenceData(records, tokenizer, template, { cutoffLen: 64, valSize: 2, seed: 7 });
    expect(split.val).toHaveLength(2);
    expect(split.train).toHaveLength(4);
    const again = preparePreferenceData(records, tokenizer, template, { cutoffLen: 64, valSize: 2, seed: 7 });
    expect(again.val.map((p) => p.source!.index)).toEqual(split.val.map((p) => p.source!.index));
    expect(again.train.map((p) => p.source!.index)).toEqual(split.train.map((p) => p.source!.index));
  });
});
