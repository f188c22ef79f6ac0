import { describe, expect, it } from 'vitest';
import { Tokenizer, TokenizerError } from '../../src/model/tokenizer';
import { fixtureTemplate, fixtureTokenizer, generationConfig, readData, reference, tokenizerConfig, tokenizerJson } from '../data/fixture';

/** Every text of the fixture datasets (Chinese and English), for round trips and merge-format checks. */
function corpus(): string[] {
  const texts: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') texts.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  for (const f of ['sft_alpaca.json', 'sft_sharegpt.json', 'dpo.json', 'multitask.json']) walk(JSON.parse(readData(f)));
  return texts.filter((t) => t.length > 0);
}

describe('Tokenizer on the tiny-llama fixture', () => {
  const tok = fixtureTokenizer();
  const ref = reference();

  it('tokenizes the greedy prompt text to the reference prompt ids, with no special tokens added', () => {
    expect(tok.encode(ref.greedy.prompt_text)).toEqual(ref.greedy.prompt_ids);
    expect(tok.encode(ref.greedy.prompt_text, { addSpecialTokens: false })).toEqual(ref.greedy.prompt_ids);
  });

  it('renders one user message with the generation prompt to the reference prompt text', () => {
    expect(fixtureTemplate().render([{ role: 'user', content: 'What is LoRA?' }], { addGenerationPrompt: true })).toBe(ref.greedy.prompt_text);
  });

  it('reads the special tokens: bos, eos (tokenizer_config + generation_config), pad', () => {
    expect(tok.bosToken).toBe('<|im_start|>');
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosToken).toBe('<|im_end|>');
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.padTokenId).toBe(2);
    expect(tok.vocabSize).toBe(512);
    expect(tok.isSpecial(0) && tok.isSpecial(1) && tok.isSpecial(2)).toBe(true);
    expect(tok.isSpecial(300)).toBe(false);
  });

  it('takes a list of eos ids from generation_config and falls back to eos for padding', () => {
    const cfg = tokenizerConfig();
    delete cfg.pad_token;
    const t = new Tokenizer({ tokenizerJson: tokenizerJson(), tokenizerConfig: cfg, generationConfig: { ...generationConfig(), eos_token_id: [0, 2] } });
    expect(t.eosTokenIds).toEqual([2, 0]);
    expect(t.isEos(0)).toBe(true);
    expect(t.padTokenId).toBe(2);
    // AddedToken-object form of special tokens (older tokenizer_config files), no generation_config
    const t2 = new Tokenizer({ tokenizerJson: tokenizerJson(), tokenizerConfig: { ...cfg, eos_token: { __type: 'AddedToken', content: '<|endoftext|>' } } });
    expect(t2.eosTokenIds).toEqual([0]);
    expect(t2.padTokenId).toBe(0);
    // no eos anywhere: no pad either
    const t3 = new Tokenizer({ tokenizerJson: tokenizerJson(), tokenizerConfig: {} });
    expect(t3.eosTokenIds).toEqual([]);
    expect(t3.padTokenId).toBeNull();
    expect(t3.bosTokenId).toBeNull();
  });

  it('round-trips every fixture text through encode and decode, Chinese included', () => {
    const texts = corpus();
    expect(texts.some((t) => /[\u4e00-\u9fff]/.test(t))).toBe(true);
    for (const t of texts) expect(tok.decode(tok.encode(t))).toBe(t);
  });

  it('drops special tokens on request, and decodes empty and out-of-vocabulary ids to nothing', () => {
    const ids = tok.encode(ref.greedy.prompt_text);
    expect(tok.decode(ids)).toBe(ref.greedy.prompt_text);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('user\nWhat is LoRA?\nassistant\n');
    expect(tok.decode([])).toBe('');
    expect(tok.decode([...tok.encode('Hi'), 9999, -1])).toBe('Hi');
  });

  it('loads both merge formats of tokenizer.json ("a b" and ["a", "b"]) with identical ids', () => {
    const tj = tokenizerJson();
    const merges = tj.model.merges;
    expect(typeof merges[0]).toBe('string');
    const pairs = structuredClone(tj);
    pairs.model.merges = (merges as string[]).map((m) => m.split(' '));
    const strings = structuredClone(pairs);
    strings.model.merges = (pairs.model.merges as string[][]).map((p) => p.join(' '));
    const fromPairs = new Tokenizer({ tokenizerJson: pairs, tokenizerConfig: tokenizerConfig() });
    const fromStrings = new Tokenizer({ tokenizerJson: strings, tokenizerConfig: tokenizerConfig() });
    for (const t of [...corpus(), ref.greedy.prompt_text]) {
      const ids = tok.encode(t);
      expect(fromPairs.encode(t)).toEqual(ids);
      expect(fromStrings.encode(t)).toEqual(ids);
    }
  });

  it('accepts tokenizer.json as text or bytes', () => {
    const text = JSON.stringify(tokenizerJson());
    const a = new Tokenizer({ tokenizerJson: text, tokenizerConfig: tokenizerConfig() });
    const b = new Tokenizer({ tokenizerJson: new TextEncoder().encode(text), tokenizerConfig: JSON.stringify(tokenizerConfig()) });
    expect(a.encode('法律顾问')).toEqual(tok.encode('法律顾问'));
    expect(b.encode('法律顾问')).toEqual(tok.encode('法律顾问'));
  });

  it('streams text without splitting multi-byte characters', () => {
    const text = '根据《劳动合同法》第47条, café ✓ 😀 done';
    const ids = tok.encode(text);
    const dec = tok.streamDecoder();
    const pieces: string[] = [];
    for (let n = 1; n <= ids.length; n++) pieces.push(dec.next(ids.slice(0, n)));
    pieces.push(dec.finish(ids));
    expect(pieces.join('')).toBe(text);
    for (const p of pieces) expect(p).not.toContain('\uFFFD');
    // at least one step held back a partial character (a CJK character spans several byte-level tokens here)
    expect(pieces.slice(0, -1).some((p) => p === '')).toBe(true);
  });

  it('streams with special tokens skipped', () => {
    const ids = tok.encode('<|im_start|>assistant\n量子力学<|im_end|>');
    const dec = tok.streamDecoder({ skipSpecialTokens: true });
    let s = '';
    for (let n = 1; n <= ids.length; n++) s += dec.next(ids.slice(0, n));
    s += dec.finish(ids);
    expect(s).toBe('assistant\n量子力学');
  });

  it('releases a broken byte sequence rather than holding it forever', () => {
    // ids of the first byte of a 3-byte character, repeated: never valid UTF-8
    const first = tok.encode('根')[0]!;
    expect(tok.decode([first])).toContain('\uFFFD');
    const dec = tok.streamDecoder();
    const ids: number[] = [];
    let out = '';
    for (let i = 0; i < 20; i++) {
      ids.push(first);
      out += dec.next(ids);
    }
    expect(out.length).toBeGreaterThan(0);
  });
});

describe('Tokenizer errors', () => {
  const cfg = tokenizerConfig();
  const expectError = (tokenizerJsonValue: unknown, pattern: RegExp) => {
    expect(() => new Tokenizer({ tokenizerJson: tokenizerJsonValue, tokenizerConfig: cfg })).toThrow(TokenizerError);
    expect(() => new Tokenizer({ tokenizerJson: tokenizerJsonValue, tokenizerConfig: cfg })).toThrow(pattern);
  };

  it('names what is wrong with an unreadable tokenizer.json', () => {
    expectError(undefined, /tokenizer\.json is missing/);
    expectError('{"model": ', /tokenizer\.json is not valid JSON/);
    expectError(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /tokenizer\.json is not UTF-8/);
    expectError('[1, 2]', /must hold a JSON object, but holds an array/);
    expectError({}, /no "model" object/);
    expectError({ model: { type: 'BPE', vocab: {} } }, /no "merges" list/);
    expectError({ model: { type: 'BPE', merges: [] } }, /no "vocab" object/);
    expectError({ model: { type: 'BPE', vocab: { a: 0 }, merges: ['a b', 7] } }, /merge 1 is 7/);
    expectError({ model: { type: 'BPE', vocab: { a: 0 }, merges: ['a b', ['a', 'b']] } }, /mix/);
    expectError({ model: { type: 'Magic', vocab: {} } }, /model type "Magic" is not supported/);
    expectError({ ...tokenizerJson(), added_tokens: [{ id: 'x' }] }, /added token/);
    expectError({ ...tokenizerJson(), pre_tokenizer: { type: 'Nope' } }, /could not be loaded: Unknown PreTokenizer type: Nope/);
    expect(() => new Tokenizer({ tokenizerJson: tokenizerJson(), tokenizerConfig: 'nope' })).toThrow(/tokenizer_config\.json is not valid JSON/);
  });

  it('fills keys other writers leave out (decoder, normalizer, added_tokens)', () => {
    const tj = tokenizerJson();
    delete tj.normalizer;
    delete tj.added_tokens;
    const t = new Tokenizer({ tokenizerJson: tj, tokenizerConfig: {} });
    expect(t.encode('hello world').length).toBeGreaterThan(0);
  });
});
