// Bottleneck adapters in the model core: a zero up-projection leaves the logits bit-identical to the base
// model; with random weights the logits equal the float64 reference, and every adapter tensor's gradient
// equals the reference's finite differences (Houlsby and Pfeiffer, ReLU, SiLU and GELU, Llama-style and GPT-2
// models); the base gets no gradient buffer; a per-call adapter equals setAdapter's, in the full forward and in
// generation's KV-cache path; ill-fitting adapters are
// refused with what is wrong.
import { describe, expect, it } from 'vitest';
import { bottleneckParamName, type BottleneckAdapter, type BottleneckNonLinearity, type BottleneckPlacement } from '../../src/model/bottleneck';
import { releaseModelAdapter } from '../../src/model/adapters';
import { CausalLM, releaseBatch, uploadBatch } from '../../src/model/transformer';
import { expectClose } from '../harness/checkOp';
import { argMaxAbs, expectFiniteDifferences } from '../helpers/finite-diff';
import { testContext } from '../helpers/gpu';
import { paddedForward, randomLM } from '../helpers/random-lm';
import { makeRandomModel, RANDOM_MODELS, randomIds } from '../helpers/random-model';
import { randomBottleneck } from '../helpers/bottleneck';
import { Rng } from '../helpers/rng';

const bitsEqual = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

describe('bottleneck adapters: zero up-projection is the base model exactly', () => {
  for (const spec of ['llamaGqaUntied', 'gpt2Bare'] as const) {
    for (const placement of ['houlsby', 'pfeiffer'] as const) {
      it(`${spec}, ${placement}: logits bit-identical to the base`, async () => {
        const ctx = await testContext();
        const m = makeRandomModel(RANDOM_MODELS[spec]!);
        const model = CausalLM.create(ctx, m.cfg, m.weights);
        const rng = new Rng(3);
        const ids = randomIds(rng, 2, 5, m.cfg.vocabSize);
        const batch = uploadBatch(ctx, ids, [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]);
        const base = model.forward(batch, { saveForBackward: false });
        const want = await ctx.readF32(base.logits);
        base.release();
        const { adapter } = randomBottleneck(ctx, m.cfg, placement, 'relu', 4, rng, { zeroUp: true, scale: 1 });
        const acts = model.forward(batch, { adapter });
        const got = await ctx.readF32(acts.logits);
        expect(bitsEqual(got, want)).toBe(true);
        acts.release();
        // A nonzero up-projection does change them (so the comparison above could fail).
        const { adapter: live } = randomBottleneck(ctx, m.cfg, placement, 'relu', 4, rng);
        const other = model.forward(batch, { adapter: live, saveForBackward: false });
        const moved = await ctx.readF32(other.logits);
        expect(Math.max(...moved.map((v, i) => Math.abs(v - want[i]!)))).toBeGreaterThan(1e-3);
        other.release();
        releaseModelAdapter(adapter);
        releaseModelAdapter(live);
        releaseBatch(batch);
        model.dispose();
      });
    }
  }
});

interface GradCase {
  spec: string;
  placement: BottleneckPlacement;
  act: BottleneckNonLinearity;
  rf: number;
}

const CASES: GradCase[] = [
  { spec: 'llamaGqaUntied', placement: 'houlsby', act: 'relu', rf: 4 },
  { spec: 'qwen3', placement: 'pfeiffer', act: 'silu', rf: 5 },
  { spec: 'gpt2Bare', placement: 'houlsby', act: 'gelu', rf: 2 },
];

describe('bottleneck adapters match the float64 reference and its finite differences', () => {
  for (const c of CASES) {
    it(`${c.spec}, ${c.placement}, ${c.act}, reduction_factor ${c.rf}: logits and every adapter gradient`, async () => {
      const lm = await randomLM(RANDOM_MODELS[c.spec]!, 41);
      const { ctx, m, model, rng } = lm;
      const { adapter, ref } = randomBottleneck(ctx, m.cfg, c.placement, c.act, c.rf, rng);
      model.setAdapter(adapter);
      const { batch, acts, logitsRef } = paddedForward(lm, { bottleneck: ref });
      expectClose('logits with the adapter', await ctx.readF32(acts.logits), logitsRef(), { atol: 1e-5, rtol: 1e-4 });

      const N = 12;
      const V = m.cfg.vocabSize;
      const G = rng.tensor(N * V, 1, 0);
      const grads = model.createGradients('adapter');
      // Only the adapter trains: no buffer for any base weight.
      expect(grads.names.every((n) => n.startsWith('layers.'))).toBe(true);
      expect(grads.size).toBe(4 * adapter.modules.size);
      const dLogits = ctx.upload([N, V], Float32Array.from(G));
      model.backward(acts, dLogits, grads);
      const loss = (): number => logitsRef().reduce((s, v, i) => s + v * G[i]!, 0);
      for (const [key, r] of ref.modules) {
        for (const [proj, what, arr] of [
          ['down', 'weight', r.down],
          ['down', 'bias', r.downBias],
          ['up', 'weight', r.up],
          ['up', 'bias', r.upBias],
        ] as const) {
          const name = bottleneckParamName(key, proj, what);
          const got = await ctx.readF32(grads.tensor(name)!);
          expect(Math.max(...got.map(Math.abs)), name).toBeGreaterThan(0);
          expectFiniteDifferences(name, got, arr, loss, [argMaxAbs(got), rng.int(0, arr.length), rng.int(0, arr.length)]);
        }
      }
      acts.release();
      dLogits.release();
      releaseBatch(batch);
      grads.release();
      model.setAdapter(null);
      releaseModelAdapter(adapter);
      model.dispose();
    });
  }
});

describe('bottleneck adapters: per call, and refusals', () => {
  it('forward({ adapter }) equals setAdapter; forward({ adapter: null }) is the base with an adapter set', async () => {
    const { ctx, m, model, rng } = await randomLM(RANDOM_MODELS.qwen2!, 5);
    const { adapter } = randomBottleneck(ctx, m.cfg, 'houlsby', 'silu', 8, rng);
    const batch = uploadBatch(ctx, randomIds(rng, 1, 7, m.cfg.vocabSize));
    const read = async (opts: Parameters<CausalLM['forward']>[1]) => {
      const a = model.forward(batch, { ...opts, saveForBackward: false });
      const out = await ctx.readF32(a.logits);
      a.release();
      return out;
    };
    const base = await read({});
    const perCall = await read({ adapter });
    model.setAdapter(adapter);
    const set = await read({});
    const off = await read({ adapter: null });
    expect(bitsEqual(perCall, set)).toBe(true);
    expect(bitsEqual(off, base)).toBe(true);
    expect(bitsEqual(set, base)).toBe(false);
    model.setAdapter(null);
    releaseModelAdapter(adapter);
    releaseBatch(batch);
    model.dispose();
  });

  it('generation\'s KV-cache path with a per-call adapter gives the last logits of the full forward', async () => {
    const { ctx, m, model, rng } = await randomLM(RANDOM_MODELS.gpt2Prefixed!, 8);
    const { adapter } = randomBottleneck(ctx, m.cfg, 'houlsby', 'gelu', 4, rng);
    const ids = randomIds(rng, 1, 7, m.cfg.vocabSize)[0]!;
    const batch = uploadBatch(ctx, [ids]);
    const acts = model.forward(batch, { adapter, saveForBackward: false });
    const all = await ctx.readF32(acts.logits);
    acts.release();
    const V = m.cfg.vocabSize;
    const cache = model.createKvCache(8);
    const first = await model.forwardCached(ids.slice(0, 4), cache, adapter);
    const last = await model.forwardCached(ids.slice(4), cache, adapter);
    expectClose('cached logits at position 3', first, all.slice(3 * V, 4 * V), { atol: 1e-5, rtol: 1e-4 });
    expectClose('cached logits at position 6', last, all.slice(6 * V, 7 * V), { atol: 1e-5, rtol: 1e-4 });
    expect(model.adapter).toBeNull();
    // Without the adapter the same cache path gives other numbers (the adapter was applied above).
    const baseCache = model.createKvCache(8);
    const base = await model.forwardCached(ids, baseCache);
    expect(Math.max(...base.map((v, i) => Math.abs(v - last[i]!)))).toBeGreaterThan(1e-3);
    cache.release();
    baseCache.release();
    releaseModelAdapter(adapter);
    releaseBatch(batch);
    model.dispose();
  });

  it('refuses an adapter for another hidden size, layer count or placement, naming the tensor', async () => {
    const { ctx, m, model, rng } = await randomLM(RANDOM_MODELS.llamaGqaUntied!, 6);
    const wrongH = randomBottleneck(ctx, { numLayers: m.cfg.numLayers, hiddenSize: 2 * m.cfg.hiddenSize }, 'pfeiffer', 'relu', 4, rng).adapter;
    expect(() => model.setAdapter(wrongH)).toThrow(/made for hidden size 72 \(bottleneck 18 × reduction_factor 4\); this model's hidden size is 36/);
    const moreLayers = randomBottleneck(ctx, { numLayers: m.cfg.numLayers + 1, hiddenSize: m.cfg.hiddenSize }, 'pfeiffer', 'relu', 4, rng).adapter;
    expect(() => model.setAdapter(moreLayers)).toThrow(/has layers\.2\.mlp_adapter, which a pfeiffer adapter on a model of 2 layers does not have/);
    const houlsby = randomBottleneck(ctx, m.cfg, 'houlsby', 'relu', 4, rng).adapter;
    const asPfeiffer: BottleneckAdapter = { ...houlsby, placement: 'pfeiffer' };
    expect(() => model.setAdapter(asPfeiffer)).toThrow(/attn_adapter, which a pfeiffer adapter/);
    const mis = randomBottleneck(ctx, m.cfg, 'pfeiffer', 'relu', 4, rng).adapter;
    const upT = mis.modules.get('layers.1.mlp_adapter')!.upWeight;
    mis.modules.get('layers.1.mlp_adapter')!.upWeight = mis.modules.get('layers.1.mlp_adapter')!.downWeight;
    expect(() => model.setAdapter(mis)).toThrow(/layers\.1\.mlp_adapter\.up\.weight is \[9, 36\]; this model needs \[36, 9\]/);
    mis.modules.get('layers.1.mlp_adapter')!.upWeight = upT;
    const batch = uploadBatch(ctx, [[1, 2, 3]]);
    expect(() => model.forward(batch, { adapter: wrongH })).toThrow(/this model's hidden size is 36/);
    expect(model.adapter).toBeNull();
    for (const a of [wrongH, moreLayers, houlsby, mis]) releaseModelAdapter(a);
    releaseBatch(batch);
    model.dispose();
  });
});
