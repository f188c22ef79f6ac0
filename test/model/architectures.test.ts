// Every supported architecture on the GPU against the float64 CPU reference models (test/model-ref/), on small
// random models with odd sizes (test/helpers/random-model.ts); gradients against finite differences of the
// reference; vocabulary tensors split over several bindings; config.json parsing and weight errors.
import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import type { Tensor } from '../../src/engine/tensor';
import { ropeInvFreq } from '../../src/engine/ops/rope';
import { parseConfig } from '../../src/model/config';
import { ModelWeightsError, type WeightSource } from '../../src/model/params';
import { referenceLogits, refWeights } from '../model-ref/transformer';
import { CausalLM, uploadBatch, releaseBatch, type Gradients } from '../../src/model/transformer';
import { SafetensorsFile, writeSafetensors } from '../../src/model/safetensors';
import { expectClose } from '../harness/checkOp';
import { refusal } from '../helpers/config';
import { argMaxAbs, expectFiniteDifferences } from '../helpers/finite-diff';
import { testContext } from '../helpers/gpu';
import { bigVocabSpec, makeRandomModel, RANDOM_MODELS, randomIds, type RandomModel } from '../helpers/random-model';
import { Rng } from '../helpers/rng';

function rms(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s / a.length);
}

/** Relative 1e-4 of each logit, with a floor of 1e-4 of the logits' RMS for values near zero. */
function expectLogits(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  expectClose(what, got, want, { atol: 1e-4 * rms(want), rtol: 1e-4 });
}

/** The right-padded mask of a batch whose second row has `pad` padding tokens at the end. */
function rightPadMask(B: number, T: number, pad: number): number[][] {
  return Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b === 1 && t >= T - pad ? 0 : 1)));
}

async function readParts(ctx: GpuContext, parts: readonly Tensor[] | undefined): Promise<Float32Array> {
  if (!parts) throw new Error('no gradient');
  const arrays = await Promise.all(parts.map((p) => ctx.readF32(p)));
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

describe('config.json parsing', () => {
  const base = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    vocab_size: 100,
  };

  it('reads rope_theta and llama3 scaling from the top level or from rope_parameters alike', () => {
    const scaling = { factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const old = parseConfig({ ...base, rope_theta: 500000, rope_scaling: { rope_type: 'llama3', ...scaling } });
    const v5 = parseConfig({ ...base, rope_parameters: { rope_type: 'llama3', rope_theta: 500000, ...scaling } });
    const legacyType = parseConfig({ ...base, rope_theta: 500000, rope_scaling: { type: 'llama3', ...scaling } });
    for (const c of [old, v5, legacyType]) {
      expect(c.ropeTheta).toBe(500000);
      expect(c.ropeScaling).toEqual({ type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    }
    const plain = parseConfig({ ...base, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } });
    expect(plain.ropeTheta).toBe(1e6);
    expect(plain.ropeScaling).toBeUndefined();
    expect(parseConfig(base).ropeTheta).toBe(10000);
  });

  it('llama3 scaling keeps high frequencies, divides low ones by the factor and blends between (Llama 3.2 1B numbers)', () => {
    const c = parseConfig({
      ...base,
      hidden_size: 2048,
      num_attention_heads: 32,
      rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    });
    expect(c.headDim).toBe(64);
    const scaled = ropeInvFreq(c.headDim, c.ropeTheta, c.ropeScaling);
    const plain = ropeInvFreq(c.headDim, c.ropeTheta);
    let kept = 0;
    let divided = 0;
    let blended = 0;
    plain.forEach((f, i) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < 8192 / 4) {
        expect(scaled[i]).toBe(f);
        kept++;
      } else if (wavelen > 8192) {
        expect(scaled[i]).toBeCloseTo(f / 32, 15);
        divided++;
      } else {
        expect(scaled[i]! < f && scaled[i]! > f / 32).toBe(true);
        blended++;
      }
    });
    expect([kept > 0, divided > 0, blended > 0]).toEqual([true, true, true]);
  });

  it('reads torch_dtype or dtype, token ids, and each architecture’s flags', () => {
    expect(parseConfig({ ...base, torch_dtype: 'bfloat16' }).dtype).toBe('bfloat16');
    expect(parseConfig({ ...base, dtype: 'float16', torch_dtype: 'float32' }).dtype).toBe('float16');
    const ids = parseConfig({ ...base, bos_token_id: 1, eos_token_id: [2, 7] });
    expect([ids.bosTokenId, ids.eosTokenIds]).toEqual([1, [2, 7]]);
    expect(parseConfig({ ...base, eos_token_id: 2 }).eosTokenIds).toEqual([2]);

    const llama = parseConfig(base);
    expect([llama.numKvHeads, llama.headDim, llama.tieWordEmbeddings, llama.qkvBias, llama.norm]).toEqual([4, 16, false, false, 'rmsnorm']);
    const qwen2 = parseConfig(RANDOM_MODELS.qwen2!.config);
    expect([qwen2.architecture, qwen2.qkvBias, qwen2.oBias, qwen2.qkNorm, qwen2.tieWordEmbeddings]).toEqual(['Qwen2ForCausalLM', true, false, false, true]);
    const qwen3 = parseConfig(RANDOM_MODELS.qwen3!.config);
    expect([qwen3.headDim, qwen3.qkNorm, qwen3.qkvBias, qwen3.ropeTheta]).toEqual([12, true, false, 1e6]);
    const gpt2 = parseConfig(RANDOM_MODELS.gpt2Prefixed!.config);
    expect([gpt2.intermediateSize, gpt2.norm, gpt2.mlp, gpt2.positions, gpt2.tieWordEmbeddings, gpt2.maxPositions]).toEqual([
      96, 'layernorm', 'gelu_tanh', 'learned', true, 32,
    ]);
    expect(parseConfig({ architectures: ['GPT2LMHeadModel'], n_embd: 8, n_head: 2, n_layer: 1, vocab_size: 10 }).maxPositions).toBe(1024);
    // model_type alone is enough.
    expect(parseConfig({ ...base, architectures: undefined, model_type: 'qwen3', head_dim: 8 }).architecture).toBe('Qwen3ForCausalLM');
  });

  it('refuses what it cannot run, naming the architecture or setting', () => {
    const refuse = (cfg: unknown, pattern: RegExp) => expect(refusal(cfg)).toMatch(pattern);
    refuse({ ...base, architectures: ['MistralForCausalLM'] }, /MistralForCausalLM is not supported.*LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma3ForCausalLM, GPT2LMHeadModel/);
    refuse({ ...base, architectures: ['Qwen2MoeForCausalLM'] }, /Qwen2MoeForCausalLM.*mixture-of-experts/);
    refuse({ ...base, num_local_experts: 8 }, /num_local_experts.*mixture-of-experts/);
    refuse({ ...RANDOM_MODELS.qwen2!.config, use_sliding_window: true }, /[Ss]liding-window.*4096/);
    refuse({ ...base, layer_types: ['full_attention', 'sliding_attention'] }, /sliding_attention/);
    refuse({ ...base, hidden_act: 'gelu' }, /hidden_act "gelu"/);
    refuse({ ...RANDOM_MODELS.gpt2Bare!.config, activation_function: 'relu' }, /activation_function "relu"/);
    refuse({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } }, /"yarn"/);
    refuse({ ...base, num_key_value_heads: 3 }, /not a multiple/);
    refuse({ ...base, hidden_size: undefined }, /"hidden_size"/);
    refuse([], /not a JSON object/);
  });
});

describe('GPU logits equal the float64 reference model', () => {
  let ctx: GpuContext;
  beforeAll(async () => {
    ctx = await testContext();
  });

  for (const spec of Object.values(RANDOM_MODELS)) {
    it(`${spec.name}`, async () => {
      const m = makeRandomModel(spec);
      const model = CausalLM.create(ctx, m.cfg, m.weights);
      const rng = new Rng(spec.seed);
      const B = 2;
      const T = 7;
      const ids = randomIds(rng, B, T, m.cfg.vocabSize);
      const mask = rightPadMask(B, T, 3);
      const batch = uploadBatch(ctx, ids, mask);
      const acts = model.forward(batch);
      const got = await ctx.readF32(acts.logits);
      const want = referenceLogits(m.cfg, refWeights(m.weights), ids, { attentionMask: mask });
      expectLogits(`${spec.name} logits`, got, want);
      // The same without keeping anything for a backward.
      const lean = model.forward(batch, { saveForBackward: false });
      expectClose(`${spec.name} logits without saved activations`, await ctx.readF32(lean.logits), got, { atol: 0, rtol: 0 });
      expect(() => model.backward(lean, lean.logits, model.createGradients(() => false))).toThrow(/saveForBackward: false/);
      lean.release();
      acts.release();
      releaseBatch(batch);
      model.dispose();
    });
  }
});

/**
 * GPU gradients of L = Σ logits·G (G fixed and random) against central differences of the float64
 * reference, at a few elements of the named parameters.
 */
async function checkGradients(ctx: GpuContext, m: RandomModel, names: string[]): Promise<void> {
  const model = CausalLM.create(ctx, m.cfg, m.weights);
  const rng = new Rng(m.spec.seed + 100);
  const B = 2;
  const T = 5;
  const ids = randomIds(rng, B, T, m.cfg.vocabSize);
  const mask = rightPadMask(B, T, 2);
  const N = B * T;
  const V = m.cfg.vocabSize;
  const G = rng.tensor(N * V, 1, 0);
  const batch = uploadBatch(ctx, ids, mask);
  const acts = model.forward(batch);
  const grads: Gradients = model.createGradients((n) => names.includes(n));
  expect(grads.names.sort()).toEqual([...names].sort());
  const dLogits = ctx.upload([N, V], Float32Array.from(G));
  model.backward(acts, dLogits, grads);

  const w = refWeights(m.weights);
  const loss = (): number => {
    const logits = referenceLogits(m.cfg, w, ids, { attentionMask: mask });
    let s = 0;
    for (let i = 0; i < logits.length; i++) s += logits[i]! * G[i]!;
    return s;
  };
  for (const name of names) {
    const got = await readParts(ctx, grads.get(name));
    const param = w(name);
    const big = argMaxAbs(got);
    expect(Math.abs(got[big]!), `gradient of ${name} is zero`).toBeGreaterThan(0);
    const samples = new Set([big]);
    while (samples.size < 4) samples.add(rng.int(0, param.length));
    expectFiniteDifferences(`d${name}`, got, param, loss, [...samples]);
  }
  acts.release();
  releaseBatch(batch);
  grads.release();
  model.dispose();
}

describe('GPU gradients equal finite differences of the reference model', () => {
  it('Qwen2 (q/k/v bias, tied embeddings)', async () => {
    const ctx = await testContext();
    await checkGradients(ctx, makeRandomModel(RANDOM_MODELS.qwen2!), [
      'model.embed_tokens.weight',
      'model.layers.0.input_layernorm.weight',
      'model.layers.0.self_attn.q_proj.bias',
      'model.layers.0.self_attn.k_proj.weight',
      'model.layers.0.self_attn.v_proj.bias',
      'model.layers.1.mlp.gate_proj.weight',
      'model.norm.weight',
    ]);
  });

  it('Qwen3 (per-head q/k norm, head_dim ≠ hidden/heads)', async () => {
    const ctx = await testContext();
    await checkGradients(ctx, makeRandomModel(RANDOM_MODELS.qwen3!), [
      'model.layers.0.self_attn.q_norm.weight',
      'model.layers.1.self_attn.k_norm.weight',
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.1.self_attn.o_proj.weight',
      'lm_head.weight',
    ]);
  });

  it('GPT-2 (Conv1D, fused c_attn, LayerNorm, learned positions)', async () => {
    const ctx = await testContext();
    await checkGradients(ctx, makeRandomModel(RANDOM_MODELS.gpt2Prefixed!), [
      'transformer.wte.weight',
      'transformer.wpe.weight',
      'transformer.h.0.ln_1.bias',
      'transformer.h.0.attn.c_attn.weight',
      'transformer.h.0.attn.c_attn.bias',
      'transformer.h.1.mlp.c_proj.weight',
      'transformer.ln_f.weight',
    ]);
  });
});

describe('vocabulary tensors larger than a binding are split by rows', () => {
  for (const tied of [false, true]) {
    it(`${tied ? 'tied' : 'untied'}: logits, every gradient and cached decoding equal the unsplit model`, async () => {
      const ctx = await testContext();
      const m = makeRandomModel(bigVocabSpec(tied));
      const whole = CausalLM.create(ctx, m.cfg, m.weights);
      // 1600 bytes: 25 rows of 16 floats per block, 9 blocks for 203 rows; the other weights still fit.
      const split = CausalLM.create(ctx, m.cfg, m.weights, { maxBindingBytes: 1600 });
      expect(split.params.embed.parts.map((p) => p.shape[0])).toEqual([25, 25, 25, 25, 25, 25, 25, 25, 3]);
      expect(split.params.lmHead.parts.length).toBe(9);
      expect(split.params.lmHead === split.params.embed).toBe(tied);

      const rng = new Rng(5);
      const ids = randomIds(rng, 2, 6, m.cfg.vocabSize);
      const N = 12;
      const V = m.cfg.vocabSize;
      const G = Float32Array.from(rng.tensor(N * V, 1, 0));
      const run = async (model: CausalLM) => {
        const batch = uploadBatch(ctx, ids);
        const acts = model.forward(batch);
        const logits = await ctx.readF32(acts.logits);
        const grads = model.createGradients('all');
        model.backward(acts, ctx.upload([N, V], G), grads);
        const g = new Map<string, Float32Array>();
        for (const [name, parts] of grads.entries()) g.set(name, await readParts(ctx, parts));
        acts.release();
        releaseBatch(batch);
        grads.release();
        return { logits, g };
      };
      const a = await run(whole);
      const b = await run(split);
      expectLogits('split logits vs the reference', b.logits, referenceLogits(m.cfg, refWeights(m.weights), ids));
      expectClose('split logits vs unsplit', b.logits, a.logits, { atol: 1e-6, rtol: 1e-5 });
      expect([...b.g.keys()].sort()).toEqual([...a.g.keys()].sort());
      // The lm_head's dh sums its vocabulary blocks one after another, so rounding differs a little.
      for (const [name, g] of a.g) expectClose(`split gradient ${name}`, b.g.get(name)!, g, { atol: 1e-5, rtol: 1e-4 });

      // Chunked logits without assembling [N, V], and the backward from per-chunk dLogits.
      const batch = uploadBatch(ctx, ids);
      const acts = split.forward(batch, { logits: 'chunks' });
      expect(() => acts.logits).toThrow(/logitChunks/);
      const chunkGrads = split.createGradients((n) => n === 'model.norm.weight');
      const dChunks = acts.logitChunks.map(({ vocabStart, logits }) => {
        const C = logits.shape[1]!;
        const part = new Float32Array(N * C);
        for (let t = 0; t < N; t++) part.set(G.subarray(t * V + vocabStart, t * V + vocabStart + C), t * C);
        return ctx.upload([N, C], part);
      });
      split.backward(acts, dChunks, chunkGrads);
      expectClose('norm gradient from chunked dLogits', await readParts(ctx, chunkGrads.get('model.norm.weight')), a.g.get('model.norm.weight')!, {
        atol: 1e-5,
        rtol: 1e-4,
      });
      acts.release();

      const cacheA = whole.createKvCache(8);
      const cacheB = split.createKvCache(8);
      for (const step of [ids[0]!.slice(0, 5), [ids[0]![5]!]]) {
        expectClose('cached logits, split vs unsplit', await split.forwardCached(step, cacheB), await whole.forwardCached(step, cacheA), {
          atol: 1e-6,
          rtol: 1e-5,
        });
      }
      whole.dispose();
      split.dispose();
    });
  }
});

describe('weights that do not match the config are refused, naming the tensor', () => {
  const m = makeRandomModel(RANDOM_MODELS.qwen2!);
  /** The model's weights with some tensors dropped or replaced. */
  const edited = (drop: string[], add: { name: string; dtype: 'F32' | 'I32'; shape: number[] }[] = []): WeightSource => {
    const keep = m.weights.names.filter((n) => !drop.includes(n) && !add.some((a) => a.name === n));
    const tensors = [
      ...keep.map((name) => ({ name, dtype: 'F32' as const, shape: m.weights.info(name).shape, data: m.weights.float32(name) })),
      ...add.map((a) => ({
        ...a,
        data: a.dtype === 'F32' ? new Float32Array(a.shape.reduce((x, y) => x * y, 1)) : new Int32Array(a.shape.reduce((x, y) => x * y, 1)),
      })),
    ];
    return new SafetensorsFile(writeSafetensors(tensors), 'edited.safetensors');
  };

  it('missing, mis-shaped and integer tensors', async () => {
    const ctx = await testContext();
    const attempt = (w: WeightSource): Error => {
      try {
        CausalLM.create(ctx, m.cfg, w).dispose();
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected an error');
    };
    const missing = attempt(edited(['model.layers.1.self_attn.k_proj.bias']));
    expect(missing).toBeInstanceOf(ModelWeightsError);
    expect(missing.message).toMatch(/"model\.layers\.1\.self_attn\.k_proj\.bias".*Qwen2ForCausalLM/);
    const shaped = attempt(edited([], [{ name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [44, 31] }]));
    expect(shaped.message).toMatch(/"model\.layers\.0\.mlp\.up_proj\.weight" has shape \[44, 31\].*\[44, 32\]/);
    const ints = attempt(edited([], [{ name: 'model.norm.weight', dtype: 'I32', shape: [32] }]));
    expect(ints.message).toMatch(/"model\.norm\.weight" is I32/);
    // An untied model without lm_head.weight.
    const untied = parseConfig({ ...m.spec.config, tie_word_embeddings: false });
    expect(() => CausalLM.create(ctx, untied, m.weights)).toThrow(/"lm_head\.weight"/);
    // A weight too large for one binding that cannot be split.
    expect(() => CausalLM.create(ctx, m.cfg, m.weights, { maxBindingBytes: 2048 })).toThrow(/q_proj\.weight.*only the embedding and lm_head can be split/);
    await ctx.sync();
  });
});
