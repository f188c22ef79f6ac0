// Prompt tuning in the model core: with virtual-token embeddings set, the GPU logits of the real positions equal
// the float64 reference of PEFT's forward (cat(prompt, embeddings), positions 0 .. n + T − 1, mask 1 on the
// virtual tokens) for RoPE (Llama) and learned positions (GPT-2), padded batches included; the prompt gradient
// equals finite differences of that reference; switching the prompt off gives the base logits bit for bit;
// cached generation prepends the virtual tokens at prefill; too-long batches are refused; in an AdapterSet the
// prompt adapter switches with a LoRA adapter (set or per call) and back to exactly the same logits.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { adapterParameters } from '../../src/model/adapters';
import { AdapterSet } from '../../src/model/adapter-set';
import type { LoraAdapter } from '../../src/model/lora';
import { PROMPT_EMBEDDINGS, randomPromptInit, textInitIds, uploadPromptAdapter, type PromptAdapter } from '../../src/model/prompt-tuning';
import { referenceLogits, refWeights } from '../model-ref/transformer';
import { CausalLM, releaseBatch, uploadBatch } from '../../src/model/transformer';
import { expectClose } from '../harness/checkOp';
import { expectFiniteDifferences } from '../helpers/finite-diff';
import { testContext } from '../helpers/gpu';
import { makeRandomModel, RANDOM_MODELS, randomIds, type RandomModel } from '../helpers/random-model';
import { Rng } from '../helpers/rng';

function promptOf(ctx: GpuContext, values: Float64Array, n: number, H: number): PromptAdapter {
  return uploadPromptAdapter(ctx, 'test prompt', Float32Array.from(values), n, H);
}

async function logitsOf(ctx: GpuContext, model: CausalLM, ids: number[][], mask?: number[][]): Promise<Float32Array> {
  const batch = uploadBatch(ctx, ids, mask);
  const acts = model.forward(batch, { saveForBackward: false });
  const out = await ctx.readF32(acts.logits);
  acts.release();
  releaseBatch(batch);
  return out;
}

for (const key of ['llamaGqaUntied', 'gpt2Bare'] as const) {
  describe(`prompt tuning on ${key}`, () => {
    const m: RandomModel = makeRandomModel(RANDOM_MODELS[key]!);
    const H = m.cfg.hiddenSize;
    const V = m.cfg.vocabSize;
    /** The model with n random virtual tokens P set as its adapter; rng has drawn P. */
    const withPrompt = async (seed: number, n: number) => {
      const ctx = await testContext();
      const model = CausalLM.create(ctx, m.cfg, m.weights);
      const rng = new Rng(seed);
      const P = rng.tensor(n * H, 0.5, 0);
      const prompt = promptOf(ctx, P, n, H);
      model.setAdapter(prompt);
      return { ctx, model, rng, P, prompt };
    };

    it('logits equal the float64 reference of PEFT’s forward, and the prompt gradient its finite differences', async () => {
      const n = 3;
      const { ctx, model, rng, P, prompt } = await withPrompt(5, n);
      const ids = randomIds(rng, 2, 5, V);
      const mask = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]];
      const batch = uploadBatch(ctx, ids, mask);
      const acts = model.forward(batch);
      const w = refWeights(m.weights);
      const ref = () => referenceLogits(m.cfg, w, ids, { attentionMask: mask, prompt: P });
      const want = ref();
      const got = await ctx.readF32(acts.logits);
      expect(got.length).toBe(2 * 5 * V); // the real positions only
      expectClose(`${key} logits after ${n} virtual tokens`, got, want, { atol: 1e-5, rtol: 1e-4 });
      // The prompt changes the answer: the base model's logits are far from these.
      const base = referenceLogits(m.cfg, w, ids, { attentionMask: mask });
      expect(Math.max(...want.map((v, i) => Math.abs(v - base[i]!)))).toBeGreaterThan(1e-2);

      // loss = Σ logits · G: dLogits = G.
      const G = rng.tensor(2 * 5 * V, 1, 0);
      const grads = model.createGradients((name) => name === PROMPT_EMBEDDINGS);
      expect(grads.names).toEqual([PROMPT_EMBEDDINGS]);
      const dLogits = ctx.upload([10, V], Float32Array.from(G));
      model.backward(acts, dLogits, grads);
      const dP = await ctx.readF32(grads.tensor(PROMPT_EMBEDDINGS)!);
      const loss = (): number => ref().reduce((s, v, i) => s + v * G[i]!, 0);
      expect(Math.max(...dP.map(Math.abs))).toBeGreaterThan(1e-3);
      // Every virtual token's row gets a gradient (each is attended to by both sequences).
      for (let j = 0; j < n; j++) expect(Math.max(...dP.subarray(j * H, (j + 1) * H).map(Math.abs))).toBeGreaterThan(1e-4);
      expectFiniteDifferences(PROMPT_EMBEDDINGS, dP, P, loss, Array.from({ length: 8 }, () => rng.int(0, n * H)));
      dLogits.release();
      acts.release();
      releaseBatch(batch);
      grads.release();
      model.setAdapter(null);
      prompt.embeddings.release();
      model.dispose();
    });

    it('setAdapter(null) gives the base logits bit for bit; the base weights are untouched', async () => {
      const ctx = await testContext();
      const model = CausalLM.create(ctx, m.cfg, m.weights);
      const rng = new Rng(6);
      const ids = randomIds(rng, 2, 4, V);
      const before = await logitsOf(ctx, model, ids);
      const prompt = promptOf(ctx, rng.tensor(2 * H, 1, 0), 2, H);
      model.setAdapter(prompt);
      const withPrompt = await logitsOf(ctx, model, ids);
      expect(withPrompt.some((v, i) => v !== before[i])).toBe(true);
      model.setAdapter(null);
      expect(await logitsOf(ctx, model, ids)).toEqual(before);
      prompt.embeddings.release();
      model.dispose();
    });

    it('cached generation prepends the virtual tokens at prefill and continues after them', async () => {
      const n = 4;
      const { model, rng, P, prompt } = await withPrompt(7, n);
      const ids = randomIds(rng, 1, 6, V)[0]!;
      const want = referenceLogits(m.cfg, refWeights(m.weights), [ids], { prompt: P });
      const cache = model.createKvCache(6);
      expect(cache.maxTokens).toBe(6 + n);
      const first = await model.forwardCached(ids.slice(0, 4), cache);
      expect(cache.length).toBe(n + 4);
      const next = await model.forwardCached([ids[4]!], cache);
      const last = await model.forwardCached([ids[5]!], cache);
      expectClose('prefill', first, want.subarray(3 * V, 4 * V), { atol: 1e-5, rtol: 1e-4 });
      expectClose('decode 1', next, want.subarray(4 * V, 5 * V), { atol: 1e-5, rtol: 1e-4 });
      expectClose('decode 2', last, want.subarray(5 * V, 6 * V), { atol: 1e-5, rtol: 1e-4 });
      await expect(model.forwardCached([ids[0]!], cache)).rejects.toThrow(/exceed the cache's 10/);
      cache.release();
      model.setAdapter(null);
      prompt.embeddings.release();
      model.dispose();
    });
  });
}

describe('prompt tuning refusals and initialisation', () => {
  it('refuses batches and caches that do not fit with the virtual tokens, and embeddings that do not fit the model', async () => {
    const ctx = await testContext();
    const m = makeRandomModel(RANDOM_MODELS.gpt2Bare!);
    const H = m.cfg.hiddenSize;
    const model = CausalLM.create(ctx, m.cfg, m.weights, { maxPositions: 16 });
    const prompt = uploadPromptAdapter(ctx, 'p', new Float32Array(10 * H), 10, H);
    model.setAdapter(prompt);
    expect(model.maxSequenceLength).toBe(6);
    const batch = uploadBatch(ctx, [[1, 2, 3, 4, 5, 6, 7]]);
    expect(() => model.forward(batch)).toThrow(/sequence length 7 after the prompt adapter's 10 virtual tokens spans 17 positions, more than this model instance holds \(16\)/);
    expect(() => model.createKvCache(7)).toThrow(/A KV cache of 7 tokens after the prompt adapter's 10 virtual tokens spans 17 positions/);
    model.setAdapter(null);
    expect(model.maxSequenceLength).toBe(16);
    // Per call too: the prompt given to this forward only.
    expect(() => model.forward(batch, { adapter: prompt })).toThrow(/after the prompt adapter's 10 virtual tokens/);
    releaseBatch(batch);

    const wrong = uploadPromptAdapter(ctx, 'wrong', new Float32Array(3 * (H + 1)), 3, H + 1);
    expect(() => model.setAdapter(wrong)).toThrow(/prompt_embeddings is f32 \[3, \d+\]; expected f32 \[num_virtual_tokens, \d+\]/);
    const huge = uploadPromptAdapter(ctx, 'huge', new Float32Array(16 * H), 16, H);
    expect(() => model.setAdapter(huge)).toThrow(/16 virtual tokens leave no position/);
    expect(model.adapter).toBeNull();
    for (const t of [prompt.embeddings, wrong.embeddings, huge.embeddings]) t.release();
    model.dispose();
  });

  it('in an AdapterSet beside a LoRA adapter: switching to the prompt adapter and back restores the logits exactly', async () => {
    const ctx = await testContext();
    const m = makeRandomModel(RANDOM_MODELS.llamaGqaUntied!);
    const H = m.cfg.hiddenSize;
    const model = CausalLM.create(ctx, m.cfg, m.weights);
    const rng = new Rng(9);
    const r = 2;
    const lora: LoraAdapter = { kind: 'lora', name: 'lora', r, alpha: 4, useRslora: false, modules: new Map() };
    for (const { module, inFeatures, outFeatures } of model.linearModules().slice(0, 3)) {
      lora.modules.set(module, {
        a: ctx.upload([r, inFeatures], Float32Array.from(rng.tensor(r * inFeatures, 0.3, 0)), 'f32', { persistent: true }),
        b: ctx.upload([outFeatures, r], Float32Array.from(rng.tensor(outFeatures * r, 0.3, 0)), 'f32', { persistent: true }),
      });
    }
    const set = new AdapterSet(model);
    set.load('lora', lora);
    set.load('prompt', uploadPromptAdapter(ctx, 'prompt', Float32Array.from(rng.tensor(3 * H, 1, 0)), 3, H));
    expect(adapterParameters(set.get('prompt')!).map(([name, t]) => [name, t.shape])).toEqual([[PROMPT_EMBEDDINGS, [3, H]]]);
    const ids = randomIds(rng, 2, 5, m.cfg.vocabSize);
    const base = await logitsOf(ctx, model, ids);
    model.setAdapter(set.resolve('lora'));
    const withLora = await logitsOf(ctx, model, ids);
    model.setAdapter(set.resolve('prompt'));
    const withPrompt = await logitsOf(ctx, model, ids);
    model.setAdapter(set.resolve('lora'));
    expect(await logitsOf(ctx, model, ids)).toEqual(withLora);
    // The prompt for one call while LoRA stays set, then the LoRA logits again.
    const batch = uploadBatch(ctx, ids);
    const acts = model.forward(batch, { adapter: set.resolve('prompt'), saveForBackward: false });
    expect(await ctx.readF32(acts.logits)).toEqual(withPrompt);
    acts.release();
    releaseBatch(batch);
    expect(await logitsOf(ctx, model, ids)).toEqual(withLora);
    model.setAdapter(null);
    expect(await logitsOf(ctx, model, ids)).toEqual(base);
    for (const x of [withLora, withPrompt]) expect(x.some((v, i) => v !== base[i])).toBe(true);
    set.clear();
    model.dispose();
  });

  it('TEXT init repeats then cuts the ids as PEFT does; RANDOM init is N(0, 1) and seeded', () => {
    expect(textInitIds([5, 6, 7], 8)).toEqual([5, 6, 7, 5, 6, 7, 5, 6]);
    expect(textInitIds([5, 6, 7, 8, 9], 2)).toEqual([5, 6]);
    expect(() => textInitIds([], 4)).toThrow(/no tokens/);
    const r = randomPromptInit(100, 41, 3);
    const mean = r.reduce((s, v) => s + v, 0) / r.length;
    const variance = r.reduce((s, v) => s + (v - mean) ** 2, 0) / r.length;
    expect(Math.abs(mean)).toBeLessThan(0.05); // 4100 draws: the standard error of the mean is 0.016
    expect(Math.abs(variance - 1)).toBeLessThan(0.07);
    expect(randomPromptInit(100, 41, 3)).toEqual(r);
    expect(randomPromptInit(100, 41, 4)).not.toEqual(r);
  });
});
