// The generation loop: stopping (eos, length, abort), the KV cache's size and release, streaming text that
// never splits a character, repetition penalty over prompt + output, and seeded sampling — first over a scripted
// bigram model on the CPU (so each rule is checked in isolation), then on the fixture model on the GPU.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateWith, type CachedForwardModel, type GenerateOptions } from '../../src/model/generate';
import { loadModel, type LoadedModel } from '../../src/model/load';
import { ModelError, memorySource } from '../../src/model/source';
import { Tokenizer } from '../../src/model/tokenizer';
import { testContext } from '../helpers/gpu';

const dir = new URL('../fixtures/tiny-llama/', import.meta.url);
const read = (p: string) => readFileSync(new URL(p, dir));
const tokenizer = new Tokenizer({
  tokenizerJson: read('tokenizer.json').toString('utf8'),
  tokenizerConfig: JSON.parse(read('tokenizer_config.json').toString('utf8')),
  generationConfig: JSON.parse(read('generation_config.json').toString('utf8')),
});
const V = 512;
const EOS = 2;

/** A CPU model whose logits depend on the last token only: a table next[id] → the favoured next id. */
type Cache = { max: number; length: number; released: boolean };
class Scripted implements CachedForwardModel<Cache> {
  caches: Cache[] = [];
  calls: number[][] = [];
  constructor(
    private readonly next: (last: number, position: number) => number | Float32Array,
    private readonly failAt = -1,
  ) {}
  createKvCache(max: number): Cache {
    const c = { max, length: 0, released: false };
    this.caches.push(c);
    return c;
  }
  async forwardCached(ids: number[], cache: Cache): Promise<Float32Array> {
    this.calls.push([...ids]);
    if (this.calls.length === this.failAt) throw new Error('device lost');
    cache.length += ids.length;
    if (cache.length > cache.max) throw new Error('cache overflow');
    const n = this.next(ids[ids.length - 1]!, cache.length - 1);
    if (n instanceof Float32Array) return n;
    const logits = new Float32Array(V);
    logits[n] = 10;
    return logits;
  }
}

function run(model: Scripted, prompt: number[], opts: GenerateOptions, onToken?: (id: number, d: string) => void) {
  return generateWith(
    { model, tokenizer, maxPositions: 64, disposeCache: (c) => (c.released = true) },
    prompt,
    opts,
    onToken,
  );
}

describe('the generation loop (scripted CPU model)', () => {
  // "Hello" spelled token by token, then eos.
  const hello = tokenizer.encode('Hello world');
  const script = (last: number, pos: number) => {
    void pos;
    const i = hello.indexOf(last);
    return i === -1 ? hello[0]! : i + 1 < hello.length ? hello[i + 1]! : EOS;
  };

  it('prefills the prompt once, then feeds one token at a time, stopping at eos (included in newIds)', async () => {
    const m = new Scripted(script);
    const r = await run(m, [1, 316, 201], { maxNewTokens: 20, greedy: true });
    expect(r.newIds).toEqual([...hello, EOS]);
    expect(r.stopReason).toBe('eos');
    expect(r.text).toBe('Hello world'); // the special eos token is skipped in the text
    expect(m.calls).toEqual([[1, 316, 201], ...hello.map((id) => [id])]);
    expect(m.caches).toEqual([{ max: 3 + 20, length: 3 + hello.length, released: true }]);
    const withSpecial = await run(new Scripted(script), [1], { maxNewTokens: 20, greedy: true, skipSpecialTokens: false });
    expect(withSpecial.text).toBe('Hello world<|im_end|>');
  });

  it('stops at maxNewTokens, ignores eos when asked, and does nothing for 0 tokens', async () => {
    const r = await run(new Scripted(script), [1], { maxNewTokens: 2, greedy: true });
    expect(r).toMatchObject({ newIds: hello.slice(0, 2), stopReason: 'length' });
    const past = await run(new Scripted(script), [1], { maxNewTokens: hello.length + 3, greedy: true, stopAtEos: false });
    expect(past.newIds).toEqual([...hello, EOS, hello[0]!, hello[1]!]);
    expect(past.stopReason).toBe('length');
    const m = new Scripted(script);
    expect(await run(m, [1], { maxNewTokens: 0 })).toEqual({ promptIds: [1], newIds: [], text: '', stopReason: 'length' });
    expect(m.caches).toEqual([]);
  });

  it('stops on abort at the next token boundary, without another forward pass', async () => {
    const ac = new AbortController();
    const m = new Scripted(() => 300);
    const got: number[] = [];
    const r = await run(m, [1], { maxNewTokens: 50, greedy: true, signal: ac.signal }, (id) => {
      got.push(id);
      if (got.length === 3) ac.abort();
    });
    expect(r.stopReason).toBe('aborted');
    expect(r.newIds).toEqual([300, 300, 300]);
    expect(m.calls.length).toBe(3);
    expect(m.caches[0]!.released).toBe(true);
    const before = new AbortController();
    before.abort();
    expect(await run(new Scripted(() => 300), [1], { maxNewTokens: 5, signal: before.signal })).toMatchObject({ newIds: [], stopReason: 'aborted' });
  });

  it('streams multi-byte characters whole: no delta holds a broken character, and the deltas join to the text', async () => {
    const text = '气候变化 is 紧迫 🌍!';
    const ids = tokenizer.encode(text);
    expect(ids.length).toBeGreaterThan([...text].length); // characters span several tokens
    let k = 0;
    const deltas: string[] = [];
    const r = await run(new Scripted(() => ids[k++] ?? EOS), [1], { maxNewTokens: 60, greedy: true }, (_, d) => deltas.push(d));
    expect(r.text).toBe(text);
    expect(deltas.join('')).toBe(text);
    expect(deltas.some((d) => d.includes('\uFFFD'))).toBe(false);
    expect(deltas.filter((d) => d === '').length).toBeGreaterThan(0); // held back mid-character
    // Cut off inside a character by maxNewTokens: the last delta carries the remainder, still joined.
    const cut = tokenizer.encode('气');
    k = 0;
    const d2: string[] = [];
    const r2 = await run(new Scripted(() => cut[k++]!), [1], { maxNewTokens: cut.length - 1, greedy: true }, (_, d) => d2.push(d));
    expect(d2.join('')).toBe(r2.text);
    expect(r2.text).toBe(tokenizer.decode(r2.newIds));
  });

  it('applies the repetition penalty over prompt and generated ids', async () => {
    const logits = new Float32Array(V);
    logits[5] = 2;
    logits[6] = 1.5;
    logits[7] = 0.9;
    const m = () => new Scripted(() => logits);
    expect((await run(m(), [1], { maxNewTokens: 3, greedy: true })).newIds).toEqual([5, 5, 5]);
    // 5 in the prompt → 1.0 < 1.5: 6; then 6 → 0.75: 5 is 1.0, 7 is 0.9 → 5... both seen: 1.0, 0.75, 0.9 → 5.
    expect((await run(m(), [5], { maxNewTokens: 3, greedy: true, repetitionPenalty: 2 })).newIds).toEqual([6, 5, 5]);
  });

  it('seeded sampling is reproducible and follows the seed', async () => {
    const flat = new Float32Array(V); // uniform over 512 ids
    const go = (seed: number) => run(new Scripted(() => flat), [1], { maxNewTokens: 12, seed, topK: 0, stopAtEos: false });
    const a = await go(7);
    expect((await go(7)).newIds).toEqual(a.newIds);
    expect((await go(8)).newIds).not.toEqual(a.newIds);
    expect(new Set(a.newIds).size).toBeGreaterThan(6);
  });

  it('refuses bad requests before any work, and releases the cache when the model fails', async () => {
    const m = new Scripted(script);
    const refuse = async (p: number[], o: Partial<GenerateOptions>, code: string, re: RegExp) => {
      const e = await run(m, p, { maxNewTokens: 4, ...o }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(ModelError);
      expect((e as ModelError).code).toBe(code);
      expect((e as Error).message).toMatch(re);
    };
    await refuse([1, 2, 3], { maxNewTokens: 62 }, 'context-length', /The prompt \(3 tokens\) plus 62 new tokens is 65 positions, more than the 64/);
    await refuse([], {}, 'bad-options', /prompt is empty/);
    await refuse([1], { maxNewTokens: -1 }, 'bad-options', /maxNewTokens/);
    await refuse([1.5], {}, 'bad-options', /1\.5, which is not a token id/);
    await refuse([1], { topP: 2 }, 'bad-options', /topP/);
    expect(m.calls).toEqual([]);
    const failing = new Scripted(script, 2);
    await expect(run(failing, [1], { maxNewTokens: 5, greedy: true })).rejects.toThrow('device lost');
    expect(failing.caches[0]!.released).toBe(true);
  });
});

describe('generation on the fixture model (GPU)', () => {
  let m: LoadedModel;
  beforeAll(async () => {
    const files: Record<string, Uint8Array> = {};
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) files[f] = new Uint8Array(read(f));
    m = await loadModel(await testContext(), memorySource('tiny-llama', files));
  });

  it('seeded sampling gives the same tokens for the same seed, and other tokens for another', async () => {
    const prompt = m.chatPromptIds('Tell me a story.');
    const opts = { maxNewTokens: 10, temperature: 1.5, topK: 0, stopAtEos: false };
    const a = await m.generate(prompt, { ...opts, seed: 42 });
    const b = await m.generate(prompt, { ...opts, seed: 42 });
    const c = await m.generate(prompt, { ...opts, seed: 43 });
    expect(a.newIds).toEqual(b.newIds);
    expect(a.text).toBe(b.text);
    expect(c.newIds).not.toEqual(a.newIds);
    expect(a.newIds.every((id) => id >= 0 && id < 512)).toBe(true);
    // Greedy wins over a seed.
    const g1 = await m.generate(prompt, { maxNewTokens: 5, greedy: true, seed: 1 });
    const g2 = await m.generate(prompt, { maxNewTokens: 5, greedy: true, seed: 2 });
    expect(g1.newIds).toEqual(g2.newIds);
  });

  it('abort stops a running generation; the model stays usable', async () => {
    const ac = new AbortController();
    let n = 0;
    const r = await m.generate(m.chatPromptIds('Hi'), { maxNewTokens: 100, greedy: true, stopAtEos: false, signal: ac.signal }, () => {
      if (++n === 4) ac.abort();
    });
    expect(r.stopReason).toBe('aborted');
    expect(r.newIds.length).toBe(4);
    const again = await m.generate(m.chatPromptIds('Hi'), { maxNewTokens: 4, greedy: true, stopAtEos: false });
    expect(again.newIds).toEqual(r.newIds);
  });

  it('dispose frees the model; later calls are refused clearly', async () => {
    m.dispose();
    await expect(m.generate([1], { maxNewTokens: 1 })).rejects.toThrow(/unloaded/);
    await expect(m.loadAdapter(memorySource('a', {}))).rejects.toThrow(/unloaded/);
  });
});
