import { describe, expect, it } from 'vitest';
import {
  IGNORE_INDEX,
  collate,
  countTargets,
  encodeConversation,
  encodeDataset,
  EncodeError,
  encodeTurns,
  inferSeqlen,
  makeBatches,
  packExamples,
  prepareSftData,
} from '../../src/data/encode';
import { parseDatasetText } from '../../src/data/parse';
import type { Conversation } from '../../src/data/types';
import { ChatTemplate } from '../../src/model/chat-template';
import { fixtureTemplate, fixtureTokenizer, readData, reference } from './fixture';

const tok = fixtureTokenizer();
const tpl = fixtureTemplate();
const alpaca = parseDatasetText(readData('sft_alpaca.json'), 'sft_alpaca.json').records;

/** The labelled spans of an example as text, one string per run of consecutive targets. */
function targetSpans(ids: number[], labels: number[]): string[] {
  const spans: string[] = [];
  let run: number[] = [];
  labels.forEach((l, i) => {
    if (l !== IGNORE_INDEX) {
      expect(l).toBe(ids[i]);
      run.push(l);
    } else if (run.length) {
      spans.push(tok.decode(run));
      run = [];
    }
  });
  if (run.length) spans.push(tok.decode(run));
  return spans;
}

describe('SFT encoding reproduces the reference batch', () => {
  it('sft_alpaca.json[0:4], cutoff 64, right-padded: input_ids, labels and attention_mask exactly', () => {
    const ref = reference().sft_batch;
    expect(Number(ref.cutoff_len)).toBe(64);
    const { examples, problems, stats } = encodeDataset(alpaca.slice(0, 4), tok, tpl, { cutoffLen: 64 });
    expect(problems).toEqual([]);
    const batch = collate(examples, { padTokenId: tok.padTokenId! });
    expect(batch.inputIds).toEqual(ref.input_ids);
    expect(batch.labels).toEqual(ref.labels);
    expect(batch.attentionMask).toEqual(ref.attention_mask);
    // statistics of the same four examples
    const mask = ref.attention_mask.flat();
    expect(stats).toEqual({
      examples: 4,
      tokens: mask.filter((m) => m === 1).length,
      targetTokens: ref.labels.flat().filter((l) => l !== IGNORE_INDEX).length,
      truncatedExamples: examples.filter((e) => e.fullLength > 64).length,
      examplesWithoutTargets: 0, // LLaMA-Factory's rule keeps part of every answer (cutting the end dropped the first's)
      longest: Math.max(...examples.map((e) => e.fullLength)),
    });
    expect(stats.truncatedExamples).toBeGreaterThan(0);
  });

  it('labels the answer and its end-of-turn tokens, masks the rendered prompt', () => {
    const e = encodeConversation(alpaca[4]!, tok, tpl, { cutoffLen: 256 });
    expect(targetSpans(e.inputIds, e.labels)).toEqual(['The capital of France is Paris.<|im_end|>\n']);
    const prompt = tpl.render([{ role: 'user', content: 'What is the capital of France?' }], { addGenerationPrompt: true });
    expect(e.labels.slice(0, tok.encode(prompt).length).every((l) => l === IGNORE_INDEX)).toBe(true);
    expect(e.truncated).toBe(false);
  });

  it('pads to a fixed length when asked', () => {
    const { examples } = encodeDataset(alpaca.slice(0, 4), tok, tpl, { cutoffLen: 64 });
    expect(examples).toHaveLength(4);
    const b = collate(examples, { padTokenId: 2, padTo: 80 });
    expect(b.inputIds.every((r) => r.length === 80)).toBe(true);
    expect(b.labels[3]!.slice(-16)).toEqual(new Array(16).fill(IGNORE_INDEX));
    expect(b.attentionMask[3]!.slice(-16)).toEqual(new Array(16).fill(0));
    expect(() => collate(examples, { padTokenId: 2, padTo: 10 })).toThrow(/shorter than the longest/);
  });
});

describe('multi-turn conversations', () => {
  const twoTurns: Conversation = {
    system: 'Be brief.',
    messages: [
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: 'Four.' },
      { role: 'user', content: '和 3+3 呢?' },
      { role: 'assistant', content: '六。' },
    ],
    source: { line: 7 },
  };

  it('labels every assistant answer and masks every prompt', () => {
    const e = encodeConversation(twoTurns, tok, tpl, { cutoffLen: 512 });
    const full = tpl.render([{ role: 'system', content: 'Be brief.' }, ...twoTurns.messages]);
    expect(e.inputIds).toEqual(tok.encode(full));
    expect(targetSpans(e.inputIds, e.labels)).toEqual(['Four.<|im_end|>\n', '六。<|im_end|>\n']);
    // the masked tokens are exactly the system prompt, both user turns and both assistant headers
    const masked = e.inputIds.filter((_, i) => e.labels[i] === IGNORE_INDEX);
    expect(tok.decode(masked)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n' +
        '<|im_start|>user\n和 3+3 呢?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('mask_history trains on the last answer only; train_on_prompt on everything', () => {
    const last = encodeConversation(twoTurns, tok, tpl, { cutoffLen: 512, maskHistory: true });
    expect(targetSpans(last.inputIds, last.labels)).toEqual(['六。<|im_end|>\n']);
    const all = encodeConversation(twoTurns, tok, tpl, { cutoffLen: 512, trainOnPrompt: true });
    expect(all.labels).toEqual(all.inputIds);
  });

  it('normalises and encodes the ShareGPT fixture (its first record has two turns)', () => {
    const records = parseDatasetText(readData('sft_sharegpt.json'), 'sft_sharegpt.json').records;
    const { examples, problems } = encodeDataset(records, tok, tpl, { cutoffLen: 256 });
    expect(problems).toEqual([]);
    expect(targetSpans(examples[0]!.inputIds, examples[0]!.labels)).toEqual([
      'I am a small assistant fine-tuned in the browser.<|im_end|>\n',
      'I can answer short questions and follow simple instructions.<|im_end|>\n',
    ]);
    expect(tok.decode(examples[2]!.inputIds)).toBe(
      '<|im_start|>system\nYou answer in one word.<|im_end|>\n<|im_start|>user\nColour of the sky on a clear day?<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>\n',
    );
  });
});

describe('records the rule cannot encode', () => {
  it('names the record when the prompt is not a prefix of the full text', () => {
    // This template closes the user turn differently when an answer follows.
    const odd = new ChatTemplate("{% for m in messages %}{{ m.content }}{% if not loop.last %}|{% endif %}{% endfor %}{% if add_generation_prompt %}>>{% endif %}");
    const c: Conversation = { messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], source: { index: 3 } };
    expect(() => encodeConversation(c, tok, odd, { cutoffLen: 64 })).toThrow(EncodeError);
    expect(() => encodeConversation(c, tok, odd, { cutoffLen: 64 })).toThrow(/^record 3: the tokens of the prompt .* are not a prefix/);
    const d = encodeDataset([c, { ...c, source: { line: 9 } }], tok, odd, { cutoffLen: 64 });
    expect(d.examples).toEqual([]);
    expect(d.problems.map((p) => [p.index, p.line])).toEqual([
      [3, undefined],
      [undefined, 9],
    ]);
    expect(d.problems[1]!.reason).toMatch(/^line 9:/);
  });

  it('names the record when earlier turns render differently in a longer conversation', () => {
    // Like templates that drop earlier reasoning: the last assistant turn is written differently.
    const t = new ChatTemplate("{% for m in messages %}{% if m.role == 'assistant' and loop.last %}[{{ m.content }}]{% else %}{{ m.content }};{% endif %}{% endfor %}{% if add_generation_prompt %}>{% endif %}");
    const c: Conversation = {
      messages: [
        { role: 'user', content: 'q1' },
        { role: 'assistant', content: 'a1' },
        { role: 'user', content: 'q2' },
        { role: 'assistant', content: 'a2' },
      ],
      source: { line: 4 },
    };
    expect(() => encodeConversation(c, tok, t, { cutoffLen: 64 })).toThrow(/line 4: .*(earlier turns differently|not a prefix)/);
  });

  it('keeps or (on request) drops an example whose prompt fills cutoff_len, and counts truncation', () => {
    const long: Conversation = { messages: [{ role: 'user', content: 'word '.repeat(100) }, { role: 'assistant', content: 'ok' }], source: { line: 2 } };
    const answer = encodeConversation(long, tok, tpl, { cutoffLen: 4096 }).labels.filter((l) => l !== IGNORE_INDEX).length;
    expect(answer).toBe(4); // "ok<|im_end|>\n"
    // a short answer is kept whole and the prompt cut (infer_seqlen: 2·4 < 40)
    const kept = encodeDataset([long, alpaca[4]!], tok, tpl, { cutoffLen: 40 });
    expect(kept.stats).toMatchObject({ examples: 2, truncatedExamples: 1, examplesWithoutTargets: 0 });
    expect(kept.examples[0]!.inputIds).toHaveLength(40);
    expect(targetSpans(kept.examples[0]!.inputIds, kept.examples[0]!.labels)).toEqual(['ok<|im_end|>\n']);
    // cutoff 8 ≤ 2·4: the budget is split in proportion, int(8 · 4/(P + 4)) = 0 answer tokens
    const none = encodeDataset([long, alpaca[4]!], tok, tpl, { cutoffLen: 8 });
    expect(none.stats).toMatchObject({ examples: 2, examplesWithoutTargets: 1 });
    expect(none.examples[0]!.labels).toEqual(new Array(8).fill(IGNORE_INDEX));
    const d = encodeDataset([long, alpaca[4]!], tok, tpl, { cutoffLen: 8, dropExamplesWithoutTargets: true });
    expect(d.examples).toHaveLength(1);
    expect(d.problems).toEqual([{ line: 2, reason: expect.stringMatching(/^line 2: the prompt alone fills cutoff_len \(8 tokens\)/) as unknown as string }]);
    // a short prompt is kept whole and the answer loses its end (2·P < cutoff ≤ 2·A)
    const promptLen = tok.encode(tpl.render([alpaca[0]!.messages[0]!], { addGenerationPrompt: true })).length;
    const full = encodeConversation(alpaca[0]!, tok, tpl, { cutoffLen: 4096 }).inputIds.length;
    const cutoff = 2 * promptLen + 1;
    expect(2 * (full - promptLen)).toBeGreaterThanOrEqual(cutoff);
    const cut = encodeDataset([alpaca[0]!], tok, tpl, { cutoffLen: cutoff });
    expect(cut.stats).toMatchObject({ truncatedExamples: 1, targetTokens: cutoff - promptLen, examplesWithoutTargets: 0 });
    expect(cut.examples[0]!.inputIds).toHaveLength(cutoff);
  });

  it("inferSeqlen is LLaMA-Factory's infer_seqlen (cases computed by its Python function)", () => {
    const cases = [[10, 5, 64, 10, 5], [50, 40, 64, 36, 28], [20, 60, 64, 20, 44], [40, 40, 64, 32, 32], [100, 4, 8, 8, 0], [100, 4, 10, 6, 4], [3, 3, 1, 1, 0], [31, 33, 64, 31, 33], [64, 64, 64, 32, 32], [1000, 999, 1024, 513, 511], [7, 100, 10, 1, 9]];
    for (const [s, t, c, ws, wt] of cases) expect(inferSeqlen(s!, t!, c!)).toEqual([ws, wt]);
  });

  it('multi-turn: the budget goes turn by turn; a turn that finds it spent is left out; mask_history keeps the last turns first', () => {
    const c: Conversation = {
      messages: [
        { role: 'user', content: 'first question '.repeat(6) },
        { role: 'assistant', content: 'first answer '.repeat(6) },
        { role: 'user', content: 'second question' },
        { role: 'assistant', content: 'second answer' },
      ],
    };
    const turns = encodeTurns(c, tok, tpl);
    const [s0, t0] = [turns[0]!.source.length, turns[0]!.target.length];
    const [s1, t1] = [turns[1]!.source.length, turns[1]!.target.length];
    const cutoff = s0 + t0 + 3;
    const e = encodeConversation(c, tok, tpl, { cutoffLen: cutoff });
    const [a0, b0] = inferSeqlen(s0, t0, cutoff);
    const [a1, b1] = inferSeqlen(s1, t1, cutoff - a0 - b0);
    expect(e.inputIds).toEqual([...turns[0]!.source.slice(0, a0), ...turns[0]!.target.slice(0, b0), ...turns[1]!.source.slice(0, a1), ...turns[1]!.target.slice(0, b1)]);
    expect(e.truncated).toBe(true);
    // mask_history: the last turn is placed first in the budget and is the only one labelled
    const m = encodeConversation(c, tok, tpl, { cutoffLen: s1 + t1 + 2, maskHistory: true });
    const [m1s, m1t] = inferSeqlen(s1, t1, s1 + t1 + 2);
    const [m0s, m0t] = inferSeqlen(s0, t0, s1 + t1 + 2 - m1s - m1t);
    expect(m.inputIds).toEqual([...turns[0]!.source.slice(0, m0s), ...turns[0]!.target.slice(0, m0t), ...turns[1]!.source.slice(0, m1s), ...turns[1]!.target.slice(0, m1t)]);
    expect(countTargets(m.labels)).toBe(m1t);
  });
});

describe('packing, batches and splits', () => {
  const { examples } = encodeDataset(alpaca, tok, tpl, { cutoffLen: 128 });

  it('packs examples into sequences of at most cutoff_len, keeping every token and label', () => {
    const packed = packExamples(examples, 128);
    expect(packed.length).toBeLessThan(examples.length);
    expect(packed.every((p) => p.inputIds.length <= 128 && p.labels.length === p.inputIds.length)).toBe(true);
    expect(packed.reduce((n, p) => n + p.packed!, 0)).toBe(examples.length);
    const sorted = (a: number[]) => a.slice().sort((x, y) => x - y);
    expect(sorted(packed.flatMap((p) => p.inputIds))).toEqual(sorted(examples.flatMap((e) => e.inputIds)));
    expect(packed.reduce((n, p) => n + countTargets(p.labels), 0)).toBe(examples.reduce((n, e) => n + countTargets(e.labels), 0));
    // greedy knapsack: each sequence takes the longest example that still fits, so the first holds the longest
    const longest = Math.max(...examples.map((e) => e.inputIds.length));
    expect(packed[0]!.inputIds.length).toBeGreaterThanOrEqual(longest);
    expect(packExamples(examples, 128)).toEqual(packed);
  });

  it('makes consecutive padded batches', () => {
    const batches = makeBatches(examples, 5, { padTokenId: 2 });
    expect(batches.map((b) => b.inputIds.length)).toEqual([5, 5, 5, 1]);
    expect(makeBatches(examples, 5, { padTokenId: 2, dropLast: true })).toHaveLength(3);
    for (const b of batches) {
      const T = Math.max(...b.attentionMask.map((r) => r.reduce((s, m) => s + m, 0)));
      expect(b.inputIds.every((r) => r.length === T)).toBe(true);
    }
  });

  it('splits val_size with the seed and shuffles deterministically', () => {
    const a = prepareSftData(alpaca, tok, tpl, { cutoffLen: 128, valSize: 0.25, seed: 7 });
    const b = prepareSftData(alpaca, tok, tpl, { cutoffLen: 128, valSize: 0.25, seed: 7 });
    expect(a.val).toHaveLength(4); // ceil(0.25 · 16)
    expect(a.train).toHaveLength(12);
    expect(a.train).toEqual(b.train);
    expect(a.val).toEqual(b.val);
    const keys = (xs: { source?: { index?: number } }[]) => xs.map((x) => x.source!.index!);
    expect(new Set([...keys(a.train), ...keys(a.val)]).size).toBe(16);
    const c = prepareSftData(alpaca, tok, tpl, { cutoffLen: 128, valSize: 0.25, seed: 8 });
    expect(keys(c.val)).not.toEqual(keys(a.val));
    expect(a.stats.examples).toBe(12);
    expect(a.valStats.examples).toBe(4);
    // no split, no shuffle: file order
    expect(keys(prepareSftData(alpaca, tok, tpl, { cutoffLen: 128, shuffle: false }).train)).toEqual([...Array(16).keys()]);
    const packed = prepareSftData(alpaca, tok, tpl, { cutoffLen: 128, packing: true, seed: 7 });
    expect(packed.train.reduce((n, p) => n + p.packed!, 0)).toBe(16);
    expect(packed.stats.examples).toBe(16);
  });
});

describe('records with a task (multi-task training)', () => {
  it('keep their task through encoding and the split; packing them is refused with what to do', () => {
    const tasked = alpaca.map((r, i) => ({ ...r, task: i % 3 === 0 ? 'x' : 'y' }));
    const d = prepareSftData(tasked, tok, tpl, { cutoffLen: 128, valSize: 4, seed: 7 });
    expect(d.val).toHaveLength(4);
    for (const e of [...d.train, ...d.val]) expect(e.task, `record ${e.source!.index}`).toBe(e.source!.index! % 3 === 0 ? 'x' : 'y');
    expect(() => prepareSftData(tasked, tok, tpl, { cutoffLen: 128, packing: true })).toThrow(/multi-task training \(records with a "task"\) needs packing: false/);
  });
});
