// Gemma 3 (Gemma3ForCausalLM) against its float64 reference (test/model-ref/gemma3.ts) on tiny random models in
// both config styles — layer_types + sliding_window, and sliding_window_pattern + rope_local_base_freq — one
// stored F32, one BF16 (kept packed on the GPU): logits with padding and sequences longer than the sliding
// window, gradients against finite differences of the reference (the four sandwich norms with their 1 + w gains,
// q/k norms, GeGLU, the scaled embedding), cached decoding that honours the window, and config.json parsing.
import { describe, expect, it } from 'vitest';
import { bf16BitsToF32, f32ToBf16Bits } from '../../src/engine/half';
import { parseConfig } from '../../src/model/config';
import { CausalLM, releaseBatch, uploadBatch } from '../../src/model/transformer';
import { referenceLogits, refWeights } from '../model-ref/transformer';
import { expectClose } from '../harness/checkOp';
import { refusal } from '../helpers/config';
import { argMaxAbs, expectFiniteDifferences } from '../helpers/finite-diff';
import { testContext } from '../helpers/gpu';
import { GEMMA3_MODELS, makeRandomModel, randomIds, type RandomModel } from '../helpers/random-model';
import { Rng } from '../helpers/rng';

const rms = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0) / a.length);
const expectLogits = (what: string, got: ArrayLike<number>, want: ArrayLike<number>) => expectClose(what, got, want, { atol: 1e-4 * rms(want), rtol: 1e-4 });

/** The reference's embedding scale as the GPU applies it: √H in the embedding's dtype, products rounded to it. */
function refScale(m: RandomModel) {
  const bf16 = (v: number) => bf16BitsToF32(f32ToBf16Bits(v));
  return m.spec.dtype === 'BF16' ? { scale: bf16(Math.sqrt(m.cfg.hiddenSize)), round: bf16 } : { scale: Math.fround(Math.sqrt(m.cfg.hiddenSize)), round: Math.fround };
}

describe('Gemma 3 config.json', () => {
  const base = GEMMA3_MODELS.layerTypes!.config;
  it('reads both styles (and transformers 5\'s rope_parameters) into the same model', () => {
    const a = parseConfig(base);
    const b = parseConfig(GEMMA3_MODELS.pattern!.config);
    const { layer_types: _lt, rope_theta: _rt, rope_local_base_freq: _rl, ...rest } = base;
    const c = parseConfig({ ...rest, layer_types: base.layer_types, rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 1e6 }, sliding_attention: { rope_type: 'default', rope_theta: 1e4 } } });
    for (const cfg of [a, b, c]) {
      expect(cfg).toMatchObject({
        architecture: 'Gemma3ForCausalLM',
        mlp: 'geglu',
        qkNorm: true,
        normPlusOne: true,
        sandwichNorms: true,
        layerTypes: ['sliding', 'full', 'sliding'],
        slidingWindow: 4,
        ropeTheta: 1e6,
        ropeLocalTheta: 1e4,
        attentionScale: 1 / 4,
        tieWordEmbeddings: true,
        embedScale: Math.sqrt(24),
      });
    }
    // sliding_window_pattern defaults to 6 (every sixth layer global), as Gemma3TextConfig.
    const { layer_types: _x, ...noTypes } = base;
    const six = parseConfig({ ...noTypes, num_hidden_layers: 7 });
    expect(six.layerTypes).toEqual(['sliding', 'sliding', 'sliding', 'sliding', 'sliding', 'full', 'sliding']);
    expect(parseConfig({ ...base, architectures: undefined }).architecture).toBe('Gemma3ForCausalLM'); // model_type gemma3_text alone
  });

  it('refuses what Graft does not run, naming it', () => {
    const refuse = (cfg: Record<string, unknown>, pattern: RegExp) => expect(refusal(cfg)).toMatch(pattern);
    refuse({ ...base, architectures: ['Gemma3ForConditionalGeneration'], model_type: 'gemma3' }, /image-and-text model.*Gemma3ForCausalLM/);
    refuse({ ...base, final_logit_softcapping: 30 }, /final_logit_softcapping 30 is not supported/);
    refuse({ ...base, layer_types: ['sliding_attention', 'full_attention'] }, /layer_types" lists 2 layers, but num_hidden_layers is 3/);
    refuse({ ...base, layer_types: ['sliding_attention', 'chunked_attention', 'full_attention'] }, /layer_types\[1\] is "chunked_attention"/);
    refuse({ ...base, hidden_activation: 'gelu' }, /hidden_activation "gelu"/);
    refuse({ ...base, rope_scaling: { rope_type: 'linear', factor: 8 } }, /"linear" is not supported for Gemma 3/);
  });
});

describe('Gemma 3 on the GPU against the float64 reference', () => {
  // The sliding_window_pattern style stored BF16 (kept packed); the layer_types style is the PyTorch fixture's
  // (tiny-gemma3.test.ts), so each style runs on the GPU once.
  for (const spec of [GEMMA3_MODELS.pattern!]) {
    it(`${spec.name}: logits (padding, T beyond the window), gradients, cached decoding`, async () => {
      const ctx = await testContext();
      const m = makeRandomModel(spec);
      const model = CausalLM.create(ctx, m.cfg, m.weights);
      const w = refWeights(m.weights);
      const rng = new Rng(spec.seed);
      const B = 2;
      const T = 9; // > the window of 4
      const ids = randomIds(rng, B, T, m.cfg.vocabSize);
      const mask = [Array(T).fill(1), [...Array(T - 3).fill(1), 0, 0, 0]];
      const batch = uploadBatch(ctx, ids, mask);
      const acts = model.forward(batch);
      const want = referenceLogits(m.cfg, w, ids, { attentionMask: mask, embedScale: refScale(m) });
      expectLogits(`${spec.name} logits`, await ctx.readF32(acts.logits), want);

      // Gradients of L = Σ logits·G against central differences of the reference.
      const names = [
        'model.embed_tokens.weight',
        'model.layers.0.input_layernorm.weight',
        'model.layers.0.post_attention_layernorm.weight',
        'model.layers.0.self_attn.q_norm.weight',
        'model.layers.1.self_attn.k_proj.weight',
        'model.layers.1.pre_feedforward_layernorm.weight',
        'model.layers.2.post_feedforward_layernorm.weight',
        'model.layers.2.mlp.gate_proj.weight',
        'model.norm.weight',
      ];
      const N = B * T;
      const V = m.cfg.vocabSize;
      const G = rng.tensor(N * V, 1, 0);
      const grads = model.createGradients((n) => names.includes(n));
      model.backward(acts, ctx.upload([N, V], Float32Array.from(G)), grads);
      const loss = () => referenceLogits(m.cfg, w, ids, { attentionMask: mask, embedScale: refScale(m) }).reduce((s, v, i) => s + v * G[i]!, 0);
      for (const name of names) {
        const got = await ctx.readF32(grads.get(name)![0]!);
        const big = argMaxAbs(got);
        expect(Math.abs(got[big]!), `gradient of ${name}`).toBeGreaterThan(0);
        // A bf16 checkpoint's reference rounds the scaled embedding: its finite differences are steps; check
        // the embedding's gradient on the f32 model only.
        if (name === 'model.embed_tokens.weight' && spec.dtype === 'BF16') continue;
        const samples = new Set([big]);
        while (samples.size < 3) samples.add(rng.int(0, got.length));
        expectFiniteDifferences(`d${name}`, got, w(name), loss, [...samples]);
      }
      acts.release();
      grads.release();
      releaseBatch(batch);

      // Decoding through the KV cache (prompt of 6, then one token at a time past the window) gives the
      // reference's last-position logits each step.
      const row = ids[0]!;
      const cache = model.createKvCache(T);
      for (const [from, to] of [[0, 6], [6, 7], [7, 8], [8, 9]] as const) {
        const got = await model.forwardCached(row.slice(from, to), cache);
        const ref = referenceLogits(m.cfg, w, [row.slice(0, to)], { embedScale: refScale(m) });
        expectLogits(`${spec.name} cached logits at ${to}`, got, ref.subarray((to - 1) * V, to * V));
      }
      cache.release();
      model.dispose();
    });
  }
});
