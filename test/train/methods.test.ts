// Methods: which tensors train (LoRA targets, PEFT init, LLaMA-Factory's freeze rule), the weight-decay rule,
// and one full / freeze step against AdamW applied to the fixture's PyTorch gradients.
import { describe, expect, it } from 'vitest';
import type { CausalLM } from '../../src/model/transformer';
import { asLora } from '../../src/model/adapters';
import { CausalLM as Model } from '../../src/model/transformer';
import { decays, freezeTrainableNames, initLoraWeights, resolveLoraTargets, setupMethod } from '../../src/train/methods';
import { SettingsError } from '../../src/train/settings';
import { Trainer } from '../../src/train/trainer';
import { testContext } from '../helpers/gpu';
import { makeRandomModel } from '../helpers/random-model';
import { baseWeights, fixtureModel, reference, restoreBase, safetensors, settings } from './helpers';

const thrown = (f: () => unknown): SettingsError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SettingsError);
    return e as SettingsError;
  }
  throw new Error('expected a SettingsError');
};

describe('LoRA targets and initialisation', () => {
  it('"all" is every linear of the blocks, names match the last part, unknown names are refused', async () => {
    const { lm } = await fixtureModel();
    expect(resolveLoraTargets(lm.model, ['all'])).toHaveLength(14);
    expect(resolveLoraTargets(lm.model, ['q_proj', 'v_proj'])).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
    ]);
    const e = thrown(() => resolveLoraTargets(lm.model, ['q_proj', 'qkv']));
    expect(e.problems[0]!.key).toBe('lora_target');
    expect(e.message).toMatch(/"qkv" is not a linear layer.*q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj/);
  });

  it('A ~ kaiming-uniform(a=√5) = U(±1/√in), B = 0, reproducible from the seed', () => {
    const mods = [{ module: 'x.q_proj', inFeatures: 64, outFeatures: 32 }];
    const [m] = initLoraWeights(mods, 8, 42);
    const bound = 1 / 8;
    expect(m!.b.every((v) => v === 0)).toBe(true);
    expect(Math.max(...m!.a.map(Math.abs))).toBeLessThanOrEqual(bound);
    // Uniform on ±bound: variance bound²/3.
    const variance = m!.a.reduce((s, v) => s + v * v, 0) / m!.a.length;
    expect(Math.abs(variance / (bound * bound / 3) - 1)).toBeLessThan(0.1);
    expect(initLoraWeights(mods, 8, 42)[0]!.a).toEqual(m!.a);
    expect(initLoraWeights(mods, 8, 43)[0]!.a).not.toEqual(m!.a);
  });

  it('setupMethod: rank, alpha, rsLoRA and targets from the job; lora_dropout > 0 is accepted (the trainer applies it)', async () => {
    const { lm } = await fixtureModel();
    const m = setupMethod(lm.model, settings({ lora_rank: 2, lora_alpha: 3, use_rslora: true, lora_target: 'q_proj,down_proj' }));
    expect(m.lora).toMatchObject({ r: 2, alpha: 3, useRslora: true, targetModules: ['down_proj', 'q_proj'] });
    expect(m.params.map((p) => p.name)).toContain('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight');
    expect(m.params).toHaveLength(8);
    expect(asLora(lm.model.adapter)?.useRslora).toBe(true);
    m.release();
    expect(lm.model.adapter).toBeNull();
    const d = setupMethod(lm.model, settings({ lora_dropout: 0.05 }));
    expect(d.kind).toBe('lora');
    d.release();
  });
});

describe('freezing: LLaMA-Factory\'s rule', () => {
  it('freeze_trainable_layers 4 of 12 trains the last four layers; negative counts from the front', async () => {
    const ctx = await testContext();
    const r = makeRandomModel({
      name: 'llama-12',
      seed: 5,
      config: { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 8, intermediate_size: 12, num_hidden_layers: 12, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 16, rms_norm_eps: 1e-5, max_position_embeddings: 16, tie_word_embeddings: false },
    });
    const model: CausalLM = Model.create(ctx, r.cfg, r.weights);
    const base = { freeze_trainable_modules: ['all'], freeze_extra_modules: undefined };
    const last4 = freezeTrainableNames(model, { ...base, freeze_trainable_layers: 4 });
    const layers = (names: string[]) => [...new Set(names.map((n) => Number(/layers\.(\d+)\./.exec(n)?.[1])))];
    expect(layers(last4)).toEqual([8, 9, 10, 11]);
    expect(last4).toHaveLength(4 * 9);
    expect(layers(freezeTrainableNames(model, { ...base, freeze_trainable_layers: -2 }))).toEqual([0, 1]);
    expect(freezeTrainableNames(model, { freeze_trainable_layers: 1, freeze_trainable_modules: ['mlp'], freeze_extra_modules: ['embed_tokens', 'lm_head'] })).toEqual([
      'model.embed_tokens.weight',
      'model.layers.11.mlp.gate_proj.weight',
      'model.layers.11.mlp.up_proj.weight',
      'model.layers.11.mlp.down_proj.weight',
      'lm_head.weight',
    ]);
    // LLaMA-Factory matches "norm" as a substring: the final norm AND every layer's norms.
    expect(freezeTrainableNames(model, { freeze_trainable_layers: 1, freeze_trainable_modules: ['self_attn'], freeze_extra_modules: ['norm'] }).filter((n) => n.includes('norm'))).toHaveLength(2 * 12 + 1);
    expect(thrown(() => freezeTrainableNames(model, { ...base, freeze_trainable_layers: 1, freeze_trainable_modules: ['attn'] })).message).toMatch(/"attn" is not a module.*self_attn/);
    expect(thrown(() => freezeTrainableNames(model, { ...base, freeze_trainable_layers: 1, freeze_extra_modules: ['wte'] })).problems[0]!.key).toBe('freeze_extra_modules');
    model.dispose();
  });

  it('a tied lm_head is refused as an extra module, pointing at embed_tokens', async () => {
    const { lm } = await fixtureModel();
    const e = thrown(() => freezeTrainableNames(lm.model, { freeze_trainable_layers: 1, freeze_trainable_modules: ['all'], freeze_extra_modules: ['lm_head'] }));
    expect(e.message).toMatch(/tied.*"embed_tokens"/);
  });

  it('weight decay follows Hugging Face: not on biases or norm weights', () => {
    for (const n of ['model.layers.0.self_attn.q_proj.weight', 'model.embed_tokens.weight', 'lm_head.weight', 'transformer.h.0.attn.c_attn.weight', 'base_model.model.model.layers.0.mlp.up_proj.lora_A.weight']) expect(decays(n), n).toBe(true);
    for (const n of ['model.layers.0.input_layernorm.weight', 'model.layers.3.post_attention_layernorm.weight', 'model.norm.weight', 'model.layers.0.self_attn.q_norm.weight', 'model.layers.0.self_attn.q_proj.bias', 'transformer.h.0.ln_1.weight', 'transformer.ln_f.bias', 'transformer.ln_f.weight']) expect(decays(n), n).toBe(false);
  });
});

/** AdamW's first step on the CPU in float64: p·(1 − lr·wd) − lr·g/(|g| + eps) (m̂ = g, √v̂ = |g| at step 1). */
function adamwStep1(p: Float32Array, g: Float32Array, lr: number, wd: number, eps: number, scale: number): Float64Array {
  return Float64Array.from(p, (w, i) => {
    const gi = g[i]! * scale;
    return w * (1 - lr * wd) - (lr * gi) / (Math.abs(gi) + eps);
  });
}

describe('full fine-tuning and freezing, step 1, against AdamW on PyTorch\'s gradients', () => {
  const lr = 1e-2;
  const eps = 1e-3; // well above the gradients' float32 error, so the comparison is not dominated by sign(g)
  const wd = 0.1;
  const batch = reference.forward.input_ids.map((ids) => ({ inputIds: ids, labels: ids }));
  const job = (over: Record<string, unknown>) =>
    settings({ learning_rate: lr, adam_epsilon: eps, weight_decay: wd, max_steps: 1, per_device_train_batch_size: 2, ...over });

  it('full: every weight equals AdamW applied to full_grads (with clipping active), norms without decay', async () => {
    const { lm } = await fixtureModel();
    const before = await baseWeights(lm);
    const grads = safetensors('reference/full_grads.safetensors');
    let sq = 0;
    for (const n of grads.names) for (const v of grads.float32(n)) sq += v * v;
    const norm = Math.sqrt(sq);
    const maxNorm = norm / 2;
    const trainer = Trainer.create({ model: lm.model, settings: job({ finetuning_type: 'full', max_grad_norm: maxNorm }), train: batch, padTokenId: 0 });
    const result = await trainer.run();
    expect(Math.abs(result.metrics[0]!.loss - reference.forward.loss_mean_all_positions) / reference.forward.loss_mean_all_positions).toBeLessThan(1e-4);
    expect(Math.abs(result.metrics[0]!.grad_norm - norm) / norm).toBeLessThan(1e-4);
    const after = await trainer.trainableWeights();
    expect([...after.keys()].sort()).toEqual(grads.names.sort());
    const coef = maxNorm / (norm + 1e-6);
    let worst = 0;
    for (const name of grads.names) {
      const want = adamwStep1(before.get(name)!, grads.float32(name), lr, decays(name) ? wd : 0, eps, coef);
      const got = after.get(name)!;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    }
    expect(worst).toBeLessThan(1e-5); // lr · 1e-3; a sign error would be lr
    trainer.dispose();
    await restoreBase(lm);
  });

  it('freeze: only the last layer trains, the rest stays bit-identical, and its update equals the full run\'s', async () => {
    const { lm } = await fixtureModel();
    const before = await baseWeights(lm);
    const full = Trainer.create({ model: lm.model, settings: job({ finetuning_type: 'full', max_grad_norm: 0 }), train: batch, padTokenId: 0 });
    await full.run();
    const fullAfter = await baseWeights(lm);
    full.dispose();
    await restoreBase(lm);

    const ctx = lm.model.ctx;
    const buffers = ctx.stats.bytesAllocated;
    const freeze = Trainer.create({ model: lm.model, settings: job({ finetuning_type: 'freeze', freeze_trainable_layers: 1, max_grad_norm: 0 }), train: batch, padTokenId: 0 });
    expect(freeze.method.params.map((p) => p.name)).toEqual(lm.model.parameters().map((p) => p.name).filter((n) => n.startsWith('model.layers.1.')));
    // Frozen weights get no gradient and no optimizer state: 3 buffers (grad, m, v) per trainable weight only.
    const trainable = freeze.method.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
    expect(ctx.stats.bytesAllocated - buffers).toBeLessThan(3 * 4 * trainable + 64 * 1024);
    await freeze.run();
    const after = await baseWeights(lm);
    for (const [name, w] of after) {
      if (name.startsWith('model.layers.1.')) {
        let d = 0;
        const f = fullAfter.get(name)!;
        for (let i = 0; i < w.length; i++) d = Math.max(d, Math.abs(w[i]! - f[i]!));
        expect(d, name).toBeLessThan(1e-6);
        expect(w).not.toEqual(before.get(name));
      } else {
        expect(w, name).toEqual(before.get(name));
      }
    }
    freeze.dispose();
    await restoreBase(lm);
  });
});
