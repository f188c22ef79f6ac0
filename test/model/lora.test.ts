// LoRA-aware linear layers: the tiny Llama with the fixtures' PEFT adapter reproduces PyTorch's SFT loss and
// every lora_A/lora_B gradient; only adapter tensors get gradients; switching adapters leaves the base
// untouched; freezing computes exactly the selected gradients; and GPT-2's fused c_attn/Conv1D layers with an
// rsLoRA adapter match the float64 reference and its finite differences.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { parseConfig, type ModelConfig } from '../../src/model/config';
import { loraParamName, loraScale, parseLoraParamName, type LoraAdapter } from '../../src/model/lora';
import { referenceLogits } from '../model-ref/transformer';
import { SafetensorsFile } from '../../src/model/safetensors';
import { CausalLM, releaseBatch, uploadBatch, type Gradients } from '../../src/model/transformer';
import { expectClose } from '../harness/checkOp';
import { expectFiniteDifferences } from '../helpers/finite-diff';
import { testContext } from '../helpers/gpu';
import { loraFromFile, randomLora } from '../helpers/lora';
import { paddedForward, randomLM } from '../helpers/random-lm';
import { dLogitsOf, sftLoss } from '../helpers/sft-step';
import { RANDOM_MODELS } from '../helpers/random-model';

const dir = new URL('../fixtures/tiny-llama/', import.meta.url);
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, dir)));
const reference = JSON.parse(readFileSync(new URL('reference/reference.json', dir), 'utf8')) as {
  forward: { input_ids: number[][]; loss_mean_all_positions: number };
  sft_batch: { input_ids: number[][]; labels: number[][]; attention_mask: number[][] };
  lora: { r: number; lora_alpha: number; sft_loss_at_init: number };
};

describe('LoRA on the tiny Llama matches PEFT', () => {
  let ctx: GpuContext;
  let cfg: ModelConfig;
  let model: CausalLM;
  let adapter: LoraAdapter;

  beforeAll(async () => {
    ctx = await testContext();
    cfg = parseConfig(JSON.parse(new TextDecoder().decode(read('config.json'))));
    model = CausalLM.create(ctx, cfg, new SafetensorsFile(read('model.safetensors'), 'model.safetensors'));
    const file = new SafetensorsFile(read('reference/init_adapter/adapter_model.safetensors'), 'adapter_model.safetensors');
    adapter = loraFromFile(ctx, file, reference.lora.r, reference.lora.lora_alpha).adapter;
  });

  it('SFT loss at init and every lora_A/lora_B gradient equal the reference; frozen weights get no buffers', async () => {
    model.setAdapter(adapter);
    expect(loraScale(adapter)).toBe(2);
    const { input_ids, labels, attention_mask } = reference.sft_batch;
    const batch = uploadBatch(ctx, input_ids, attention_mask);
    expect(batch.keyMask).not.toBeNull();
    const acts = model.forward(batch);
    const l = await sftLoss(ctx, acts, labels);
    const want = reference.lora.sft_loss_at_init;
    expect(Math.abs(l.loss - want) / want).toBeLessThan(1e-4);

    const grads = model.createGradients('lora');
    expect(grads.names.every((n) => parseLoraParamName(n) !== undefined)).toBe(true);
    expect(grads.size).toBe(2 * 7 * cfg.numLayers);
    model.backward(acts, dLogitsOf(ctx, acts, l, cfg.vocabSize), grads);

    const ref = new SafetensorsFile(read('reference/lora_grads.safetensors'), 'lora_grads.safetensors');
    expect(grads.names.sort()).toEqual(ref.names.sort());
    for (const [name, [g]] of grads.entries()) {
      expectClose(`grad ${name}`, await ctx.readF32(g!), ref.float32(name), { atol: 1e-4, rtol: 1e-3 });
    }
    acts.release();
    releaseBatch(batch);
    grads.release();
  });

  it('setAdapter(null) runs the untouched base model, and the adapter again gives the same loss', async () => {
    const ids = reference.forward.input_ids;
    const batch = uploadBatch(ctx, ids);
    model.setAdapter(null);
    const base = model.forward(batch);
    const want = new SafetensorsFile(read('reference/forward.safetensors'), 'forward.safetensors').float32('logits');
    const baseLogits = await ctx.readF32(base.logits);
    let s = 0;
    for (const v of want) s += v * v;
    expectClose('base logits', baseLogits, want, { atol: 1e-4 * Math.sqrt(s / want.length), rtol: 1e-4 });
    base.release();
    releaseBatch(batch);

    model.setAdapter(adapter);
    const sft = uploadBatch(ctx, reference.sft_batch.input_ids, reference.sft_batch.attention_mask);
    const acts = model.forward(sft);
    const l = await sftLoss(ctx, acts, reference.sft_batch.labels);
    expect(Math.abs(l.loss - reference.lora.sft_loss_at_init) / reference.lora.sft_loss_at_init).toBeLessThan(1e-4);
    acts.release();
    releaseBatch(sft);
    model.setAdapter(null);
  });

  it('freezing: gradients of only the last layer and the final norm equal full_grads', async () => {
    model.setAdapter(null);
    const ids = reference.forward.input_ids;
    const batch = uploadBatch(ctx, ids);
    const acts = model.forward(batch);
    const T = ids[0]!.length;
    const labels = ids.map((row) => row.map((id, t) => (t === 0 ? -100 : id)));
    const l = await sftLoss(ctx, acts, labels);
    expect(l.count).toBe(ids.length * (T - 1));
    expect(Math.abs(l.loss - reference.forward.loss_mean_all_positions) / reference.forward.loss_mean_all_positions).toBeLessThan(1e-4);
    const trainable = (n: string) => n.startsWith('model.layers.1.') || n === 'model.norm.weight';
    const grads: Gradients = model.createGradients(trainable);
    expect(grads.names.length).toBe(10);
    const before = ctx.stats.dispatches;
    model.backward(acts, dLogitsOf(ctx, acts, l, cfg.vocabSize), grads);
    const frozenDispatches = ctx.stats.dispatches - before;
    const ref = new SafetensorsFile(read('reference/full_grads.safetensors'), 'full_grads.safetensors');
    for (const [name, [g]] of grads.entries()) {
      expectClose(`grad ${name}`, await ctx.readF32(g!), ref.float32(name), { atol: 1e-4, rtol: 1e-3 });
    }
    // Layer 0 and the embedding are below every trainable weight: the backward stops before them.
    const all = model.createGradients('all');
    const start = ctx.stats.dispatches;
    model.backward(acts, dLogitsOf(ctx, acts, l, cfg.vocabSize), all);
    expect(frozenDispatches).toBeLessThan((ctx.stats.dispatches - start) * 0.7);
    acts.release();
    releaseBatch(batch);
    grads.release();
    all.release();
  });

  it('refuses adapters that do not fit the model, naming the module', async () => {
    const r = 4;
    const a = ctx.zeros([r, 64]);
    const b = ctx.zeros([64, r]);
    const bad = (module: string, bb = b): LoraAdapter => ({ name: 'x', r, alpha: 8, useRslora: false, modules: new Map([[module, { a, b: bb }]]) });
    expect(() => model.setAdapter(bad('model.layers.0.self_attn.rotary'))).toThrow(/model\.layers\.0\.self_attn\.rotary, which is not a linear layer/);
    expect(() => model.setAdapter(bad('model.layers.0.self_attn.k_proj'))).toThrow(/k_proj has lora_A \[4, 64\] and lora_B \[64, 4\]; expected \[4, 64\] and \[32, 4\]/);
    expect(model.adapter).toBeNull();
    expect(() => model.createGradients('lora')).toThrow(/no adapter/);
    expect(model.linearModules().map((m) => m.module.split('.').pop())).toEqual(
      ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    );
  });
});

describe('LoRA on GPT-2 (fused c_attn, Conv1D layers, rsLoRA) matches the float64 reference', () => {
  it('logits with the adapter, and dA/dB against finite differences', async () => {
    const lm = await randomLM(RANDOM_MODELS.gpt2Bare!, 77);
    const { ctx, m, model, rng } = lm;
    const { adapter, refLora } = randomLora(ctx, model, rng, 3, 5, { name: 'rs', useRslora: true });
    expect([...adapter.modules.keys()].slice(0, 4)).toEqual([
      'transformer.h.0.attn.c_attn',
      'transformer.h.0.attn.c_proj',
      'transformer.h.0.mlp.c_fc',
      'transformer.h.0.mlp.c_proj',
    ]);
    model.setAdapter(adapter);
    const { ids, mask, batch, acts, w, logitsRef } = paddedForward(lm, { lora: refLora });
    const want = logitsRef();
    const got = await ctx.readF32(acts.logits);
    expectClose('GPT-2 logits with rsLoRA', got, want, { atol: 1e-5, rtol: 1e-4 });
    const baseWant = referenceLogits(m.cfg, w, ids, { attentionMask: mask });
    expect(Math.max(...want.map((v, i) => Math.abs(v - baseWant[i]!)))).toBeGreaterThan(1e-2);

    const N = 12;
    const V = m.cfg.vocabSize;
    const G = rng.tensor(N * V, 1, 0);
    const grads = model.createGradients('lora');
    model.backward(acts, ctx.upload([N, V], Float32Array.from(G)), grads);
    const loss = (): number => logitsRef().reduce((s, v, i) => s + v * G[i]!, 0);
    for (const module of ['transformer.h.0.attn.c_attn', 'transformer.h.1.mlp.c_proj', 'transformer.h.1.mlp.c_fc']) {
      for (const which of ['A', 'B'] as const) {
        const got = await ctx.readF32(grads.tensor(loraParamName(module, which))!);
        const param = which === 'A' ? refLora.modules.get(module)!.a : refLora.modules.get(module)!.b;
        expect(Math.max(...got.map(Math.abs))).toBeGreaterThan(0);
        expectFiniteDifferences(`${module} lora_${which}`, got, param, loss, Array.from({ length: 4 }, () => rng.int(0, param.length)));
      }
    }
    acts.release();
    releaseBatch(batch);
    grads.release();
    model.dispose();
  });
});
