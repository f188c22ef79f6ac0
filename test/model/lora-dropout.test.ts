// LoRA dropout (PEFT's lora_dropout, ForwardOptions.loraDropout): y = x·Wᵀ + scale·(dropout(x)·Aᵀ)·Bᵀ.
// The GPU model's logits and gradients with p = 0.1 equal the float64 reference model with the same Philox
// masks (dropoutMaskRef), on the tiny Llama with the fixtures' init_adapter and on random Llama (GQA) and
// GPT-2 (fused c_attn, Conv1D) models, where LoRA and base-weight gradients are checked against finite
// differences of the reference (the masks depend only on seed and counters, so they stay fixed); p = 0 is the
// plain path bit for bit, with no extra dispatches; the same seed and offset repeat a forward exactly, another
// offset or seed does not.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { parseConfig, type ModelConfig } from '../../src/model/config';
import { loraParamName, parseLoraParamName, type LoraAdapter } from '../../src/model/lora';
import { referenceLogits, refWeights, type RefLora, type RefWeights } from '../model-ref/transformer';
import { SafetensorsFile } from '../../src/model/safetensors';
import { matmulVariant } from '../../src/engine/ops/matmul';
import { CausalLM, releaseBatch, uploadBatch, type Gradients, type LoraDropout } from '../../src/model/transformer';
import { expectClose } from '../harness/checkOp';
import { expectFiniteDifferences } from '../helpers/finite-diff';
import { testContext } from '../helpers/gpu';
import { loraFromFile, randomLora, releaseLora } from '../helpers/lora';
import { makeRandomModel, RANDOM_MODELS, randomIds } from '../helpers/random-model';
import { Rng } from '../helpers/rng';

const dir = new URL('../fixtures/tiny-llama/', import.meta.url);
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, dir)));
const reference = JSON.parse(readFileSync(new URL('reference/reference.json', dir), 'utf8')) as {
  sft_batch: { input_ids: number[][]; attention_mask: number[][] };
  lora: { r: number; lora_alpha: number };
};

const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/**
 * Checks `count` entries of each named gradient against central differences of
 * loss = Σ referenceLogits·G, perturbing the reference's own copy of the parameter (`param(name)`).
 */
async function checkFiniteDifferences(
  ctx: GpuContext,
  grads: Gradients,
  names: string[],
  param: (name: string) => Float64Array,
  loss: () => number,
  rng: Rng,
  count: number,
): Promise<void> {
  for (const name of names) {
    const got = await ctx.readF32(grads.tensor(name)!);
    const p = param(name);
    expect(got.length).toBe(p.length);
    const scale = Math.max(...got.map(Math.abs));
    expect(scale, name).toBeGreaterThan(0);
    // Half the entries anywhere, half among the large ones (an embedding's unused rows have none).
    const large = [...got.keys()].filter((i) => Math.abs(got[i]!) >= 0.1 * scale);
    const indices = Array.from({ length: count }, (_, k) => (k % 2 === 0 ? rng.int(0, p.length) : large[rng.int(0, large.length)]!));
    expectFiniteDifferences(name, got, p, loss, indices);
  }
}

/** The reference's float64 copy of a LoRA tensor (PEFT name) or base weight (Hugging Face name). */
function refParam(refLora: RefLora, w: RefWeights): (name: string) => Float64Array {
  return (name) => {
    const parsed = parseLoraParamName(name);
    if (!parsed) return w(name);
    const m = refLora.modules.get(parsed.module)!;
    return parsed.which === 'A' ? m.a : m.b;
  };
}

describe('LoRA dropout on the tiny Llama with the fixtures\' init_adapter', () => {
  let ctx: GpuContext;
  let cfg: ModelConfig;
  let model: CausalLM;
  let adapter: LoraAdapter;
  let refLora: RefLora;
  let w: RefWeights;
  // Two rows of the SFT batch, one of them padded: enough, and the reference's finite differences stay quick.
  const ids = [0, 3].map((i) => reference.sft_batch.input_ids[i]!);
  const mask = [0, 3].map((i) => reference.sft_batch.attention_mask[i]!);
  // A seed and offset past 2^32, so that both words of the Philox key and counter matter.
  const drop: LoraDropout = { p: 0.1, seed: 2 ** 32 + 1234, offset: 3 * 2 ** 32 + 17 };

  beforeAll(async () => {
    ctx = await testContext();
    cfg = parseConfig(JSON.parse(new TextDecoder().decode(read('config.json'))));
    const weights = new SafetensorsFile(read('model.safetensors'), 'model.safetensors');
    model = CausalLM.create(ctx, cfg, weights);
    ({ adapter, refLora } = loraFromFile(ctx, new SafetensorsFile(read('reference/init_adapter/adapter_model.safetensors'), 'adapter_model.safetensors'), reference.lora.r, reference.lora.lora_alpha));
    w = refWeights(weights);
    model.setAdapter(adapter);
  });

  it('p = 0.1: logits and every lora_A/lora_B gradient equal the float64 reference with the same masks', async () => {
    expect(mask[1]!.includes(0)).toBe(true);
    const N = ids.length * ids[0]!.length;
    const V = cfg.vocabSize;
    const batch = uploadBatch(ctx, ids, mask);
    const acts = model.forward(batch, { loraDropout: drop });
    expect(acts.loraDropout).toEqual(drop);
    const logitsRef = () => referenceLogits(cfg, w, ids, { attentionMask: mask, lora: { ...refLora, dropout: drop } });
    const want = logitsRef();
    const got = await ctx.readF32(acts.logits);
    const rms = Math.sqrt(want.reduce((s, v) => s + v * v, 0) / want.length);
    expectClose('logits with LoRA dropout', got, want, { atol: 1e-4 * rms, rtol: 1e-4 });
    // The dropout changed the logits by far more than the tolerance.
    const plain = referenceLogits(cfg, w, ids, { attentionMask: mask, lora: refLora });
    expect(maxDiff(want, plain)).toBeGreaterThan(100 * 1e-4 * rms);

    const rng = new Rng(31);
    const G = rng.tensor(N * V, 1, 0);
    const grads = model.createGradients('lora');
    model.backward(acts, ctx.upload([N, V], Float32Array.from(G)), grads);
    const loss = (): number => logitsRef().reduce((s, v, i) => s + v * G[i]!, 0);
    const names = ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.1.mlp.down_proj']
      .flatMap((m) => [loraParamName(m, 'A'), loraParamName(m, 'B')]);
    await checkFiniteDifferences(ctx, grads, names, refParam(refLora, w), loss, rng, 2);

    // Every gradient differs from the same batch's without dropout (each module's mask matters).
    const plainActs = model.forward(batch);
    const plainGrads = model.createGradients('lora');
    model.backward(plainActs, ctx.upload([N, V], Float32Array.from(G)), plainGrads);
    for (const [name, [g]] of grads.entries()) {
      const a = await ctx.readF32(g!);
      const b = await ctx.readF32(plainGrads.tensor(name)!);
      expect(maxDiff(a, b), name).toBeGreaterThan(1e-3 * Math.max(...b.map(Math.abs)));
    }
    for (const x of [acts, plainActs, grads, plainGrads]) x.release();
    releaseBatch(batch);
  });

  it('p = 0 is the plain path bit for bit, with the same dispatches', async () => {
    const N = ids.length * ids[0]!.length;
    const V = cfg.vocabSize;
    const batch = uploadBatch(ctx, ids, mask);
    const dLogits = ctx.upload([N, V], Float32Array.from(new Rng(5).tensor(N * V, 1, 0)));
    const run = async (opts: { loraDropout?: LoraDropout }) => {
      const start = ctx.stats.dispatches;
      const acts = model.forward(batch, opts);
      const forwardDispatches = ctx.stats.dispatches - start;
      const grads = model.createGradients('lora');
      model.backward(acts, dLogits, grads);
      const dispatches = ctx.stats.dispatches - start;
      const logits = await ctx.readF32(acts.logits);
      const g = new Map<string, Float32Array>();
      for (const [name, [t]] of grads.entries()) g.set(name, await ctx.readF32(t!));
      acts.release();
      grads.release();
      return { logits, grads: g, forwardDispatches, dispatches };
    };
    const plain = await run({});
    const zero = await run({ loraDropout: { p: 0, seed: 77, offset: 5 } });
    expect(bits(zero.logits)).toEqual(bits(plain.logits));
    expect(zero.grads.size).toBe(plain.grads.size);
    for (const [name, g] of plain.grads) expect(bits(zero.grads.get(name)!), name).toEqual(bits(g));
    expect(zero.dispatches).toBe(plain.dispatches);
    // With p > 0: one dropout per adapted linear in the forward; in the backward, one to regenerate the mask
    // for dA, one for dx's LoRA part, and that part's s·t·A as a dispatch of its own (without dropout it rides
    // in dy·W's epilogue on the fusing kernels; ops/matmul.ts).
    const dropped = await run({ loraDropout: drop });
    const modules = adapter.modules.size;
    const fuses = matmulVariant(ctx) !== 'register';
    expect(dropped.forwardDispatches).toBe(plain.forwardDispatches + modules);
    expect(dropped.dispatches).toBe(plain.dispatches + (fuses ? 4 : 3) * modules);
    dLogits.release();
    releaseBatch(batch);
  });

  it('the same seed and offset repeat a forward exactly; another offset or seed gives other masks', async () => {
    const batch = uploadBatch(ctx, ids, mask);
    const logits = async (d: LoraDropout) => {
      const acts = model.forward(batch, { loraDropout: d, saveForBackward: false });
      const out = await ctx.readF32(acts.logits);
      acts.release();
      return out;
    };
    const first = await logits(drop);
    const again = await logits({ ...drop });
    expect(bits(again)).toEqual(bits(first));
    const N = ids.length * ids[0]!.length;
    // 64·(3 + 1 + 2) + 176 inputs per layer over the adapted q, k, v, o, gate, up, down.
    expect(model.loraDropoutCounters(N)).toBe(N * cfg.numLayers * (6 * cfg.hiddenSize + cfg.intermediateSize));
    for (const other of [
      { ...drop, offset: drop.offset + 1 },
      { ...drop, offset: drop.offset + model.loraDropoutCounters(N) },
      { ...drop, seed: drop.seed + 1 },
    ]) {
      expect(maxDiff(await logits(other), first), JSON.stringify(other)).toBeGreaterThan(1e-3);
    }
    releaseBatch(batch);
  });

  it('refuses a bad probability, seed or offset; without an adapter the option changes nothing', async () => {
    const batch = uploadBatch(ctx, [[1, 2, 3]]);
    expect(() => model.forward(batch, { loraDropout: { p: 1.5, seed: 1, offset: 0 } })).toThrow(/loraDropout.*p = 1\.5/);
    expect(() => model.forward(batch, { loraDropout: { p: 0.1, seed: -1, offset: 0 } })).toThrow(/seed -1/);
    expect(() => model.forward(batch, { loraDropout: { p: 0.1, seed: 1, offset: 2 ** 53 - 100 } })).toThrow(/2\^53/);
    model.setAdapter(null);
    const base = model.forward(batch, { saveForBackward: false });
    const withOption = model.forward(batch, { loraDropout: drop, saveForBackward: false });
    expect(withOption.loraDropout).toBeNull();
    expect(bits(await ctx.readF32(withOption.logits))).toEqual(bits(await ctx.readF32(base.logits)));
    expect(model.loraDropoutCounters(3)).toBe(0);
    base.release();
    withOption.release();
    releaseBatch(batch);
    model.setAdapter(adapter);
  });
});

describe('LoRA dropout on random models matches the float64 reference and its finite differences', () => {
  const cases = [
    {
      spec: RANDOM_MODELS.llamaGqaUntied!,
      base: ['model.embed_tokens.weight', 'model.layers.0.self_attn.k_proj.weight', 'model.layers.1.mlp.down_proj.weight'],
      lora: ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.k_proj', 'model.layers.0.mlp.up_proj', 'model.layers.1.self_attn.o_proj'],
    },
    {
      spec: RANDOM_MODELS.gpt2Bare!,
      base: ['transformer.wte.weight', 'transformer.h.0.attn.c_attn.weight', 'transformer.h.1.mlp.c_fc.weight'],
      lora: ['transformer.h.0.attn.c_attn', 'transformer.h.0.mlp.c_proj', 'transformer.h.1.attn.c_attn', 'transformer.h.1.mlp.c_fc'],
    },
  ];
  for (const { spec, base, lora } of cases) {
    it(`${spec.name}: logits, LoRA and base-weight gradients with p = 0.25`, async () => {
      const ctx = await testContext();
      const m = makeRandomModel(spec);
      const model = CausalLM.create(ctx, m.cfg, m.weights);
      const rng = new Rng(101);
      const { adapter, refLora } = randomLora(ctx, model, rng, 3, 6);
      model.setAdapter(adapter);
      const ids = randomIds(rng, 2, 7, m.cfg.vocabSize);
      const mask = [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]];
      const batch = uploadBatch(ctx, ids, mask);
      const drop: LoraDropout = { p: 0.25, seed: 9, offset: 1000 };
      const acts = model.forward(batch, { loraDropout: drop });
      const w = refWeights(m.weights);
      const logitsRef = () => referenceLogits(m.cfg, w, ids, { attentionMask: mask, lora: { ...refLora, dropout: drop } });
      const want = logitsRef();
      expectClose(`${spec.name} logits with LoRA dropout`, await ctx.readF32(acts.logits), want, { atol: 1e-5, rtol: 1e-4 });
      const plain = referenceLogits(m.cfg, w, ids, { attentionMask: mask, lora: refLora });
      expect(maxDiff(want, plain)).toBeGreaterThan(1e-2);

      const N = 14;
      const V = m.cfg.vocabSize;
      const G = rng.tensor(N * V, 1, 0);
      const loraNames = lora.flatMap((mod) => [loraParamName(mod, 'A'), loraParamName(mod, 'B')]);
      const grads = model.createGradients((name) => base.includes(name) || parseLoraParamName(name) !== undefined);
      model.backward(acts, ctx.upload([N, V], Float32Array.from(G)), grads);
      const loss = (): number => logitsRef().reduce((s, v, i) => s + v * G[i]!, 0);
      await checkFiniteDifferences(ctx, grads, [...loraNames, ...base], refParam(refLora, w), loss, rng, 3);
      acts.release();
      grads.release();
      releaseBatch(batch);
      releaseLora(adapter);
      model.dispose();
    });
  }
});
