// The tiny Gemma 3 of test/fixtures/tiny-gemma3 (scripts/fixtures/tiny_gemma3.py: random weights, 4 layers —
// sliding, full, sliding, full — window 8, query_pre_attn_scalar 32, Gemma's chat template) against what
// PyTorch computed in float64: logits in all three config.json styles, the mean loss and every parameter's
// gradient, the chat prompt's ids and 16 greedy tokens through the KV cache, the SFT batch's encoding and a
// 5-step LoRA trajectory (losses rel 1e-4, final adapter abs 2e-4), the fixtures' tolerances.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDatasetText, prepareSftData, collate } from '../../src/data';
import { crossEntropyChunkBackward, crossEntropyForward } from '../../src/engine/ops/cross-entropy';
import { readAdapter } from '../../src/model/adapter';
import { loadModel, type LoadedModel } from '../../src/model/load';
import { SafetensorsFile } from '../../src/model/safetensors';
import { memorySource } from '../../src/model/source';
import { releaseBatch, uploadBatch } from '../../src/model/transformer';
import { parseSettings } from '../../src/train/settings';
import { Trainer } from '../../src/train/trainer';
import { expectClose } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';

const dir = new URL('../fixtures/tiny-gemma3/', import.meta.url);
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, dir)));
const st = (p: string) => new SafetensorsFile(read(p), p);
const reference = JSON.parse(readFileSync(new URL('reference/reference.json', dir), 'utf8')) as {
  forward: { input_ids: number[][]; loss_mean_all_positions: number };
  greedy: { prompt_ids: number[]; new_ids: number[]; top1_top2_margins: number[] };
  sft_batch: { input_ids: number[][]; labels: number[][]; attention_mask: number[][] };
  lora_trajectory: { losses_before_each_step: number[] };
};
const rms = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0) / a.length);

/** The fixture folder with `config` as its config.json (one of the three styles). */
function fixture(config: string) {
  const files: Record<string, Uint8Array> = { 'config.json': read(config) };
  for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) files[f] = read(f);
  return memorySource(`tiny-gemma3 (${config})`, files);
}

const STYLES = ['config.json', 'config.sliding_window_pattern.json', 'config.transformers5.json'];

async function load(config = 'config.json'): Promise<LoadedModel> {
  return loadModel(await testContext(), fixture(config));
}

describe('tiny Gemma 3 built from Graft kernels matches PyTorch', () => {
  it('logits in every config.json style; the loss and every parameter gradient (full_grads)', async () => {
    const ctx = await testContext();
    const ids = reference.forward.input_ids;
    const want = st('reference/forward.safetensors').float32('logits');
    for (const style of STYLES) {
      const lm = await load(style);
      const batch = uploadBatch(ctx, ids);
      const acts = lm.model.forward(batch);
      const got = await ctx.readF32(acts.logits);
      expectClose(`logits (${style})`, got, want, { atol: 1e-4 * rms(want), rtol: 1e-4 });
      if (style === 'config.json') {
        const [B, T] = [ids.length, ids[0]!.length];
        const N = B * T;
        const V = lm.config.vocabSize;
        const targets = Int32Array.from(ids.flatMap((row) => row.map((_, t) => (t + 1 < T ? row[t + 1]! : -100))));
        const count = targets.filter((t) => t !== -100).length;
        const t = ctx.upload([N], targets, 'i32');
        const losses = ctx.empty([N]);
        const stats = ctx.empty([N, 2]);
        crossEntropyForward(ctx, losses, stats, ctx.empty([N]), acts.logits, t);
        const loss = (await ctx.readF32(losses)).reduce((a, b) => a + b, 0) / count;
        expect(Math.abs(loss - reference.forward.loss_mean_all_positions) / reference.forward.loss_mean_all_positions).toBeLessThan(1e-4);
        const dLogits = ctx.zeros([N, V]);
        crossEntropyChunkBackward(ctx, dLogits, acts.logits, stats, t, ctx.upload([N], new Float32Array(N).fill(1 / count)), 0);
        const grads = lm.model.createGradients('all');
        lm.model.backward(acts, dLogits, grads);
        const ref = st('reference/full_grads.safetensors');
        const names: string[] = [];
        for (const [name, [g]] of grads.entries()) {
          expectClose(`grad ${name}`, await ctx.readF32(g!), ref.float32(name), { atol: 1e-4, rtol: 1e-3 });
          names.push(name);
        }
        expect(names.sort()).toEqual(ref.names.sort());
        grads.release();
      }
      acts.release();
      releaseBatch(batch);
      lm.dispose();
    }
  });

  it('the chat prompt through Gemma\'s template and 16 greedy tokens through the KV cache (windows included)', async () => {
    const lm = await load();
    const prompt = lm.chatPromptIds('What is LoRA?');
    expect(prompt).toEqual(reference.greedy.prompt_ids);
    const result = await lm.generate(prompt, { maxNewTokens: 16, greedy: true });
    // The smallest top-1/top-2 margin is 0.02: far above f32 drift, so the tokens must be the same.
    expect(Math.min(...reference.greedy.top1_top2_margins)).toBeGreaterThan(0.01);
    expect(result.newIds).toEqual(reference.greedy.new_ids);
    lm.dispose();
  });

  it('the SFT batch encodes as PyTorch\'s; LoRA from init_adapter follows its 5-step trajectory', async () => {
    const lm = await load();
    const parsed = parseDatasetText(readFileSync(new URL('../fixtures/data/sft_alpaca.json', import.meta.url), 'utf8'), 'sft_alpaca.json');
    const train = prepareSftData(parsed.records.slice(0, 4), lm.tokenizer, lm.template, { cutoffLen: 64, shuffle: false }).train;
    const b = collate(train, { padTokenId: lm.tokenizer.padTokenId ?? 0 });
    expect(b.inputIds).toEqual(reference.sft_batch.input_ids);
    expect(b.labels).toEqual(reference.sft_batch.labels);
    expect(b.attentionMask).toEqual(reference.sft_batch.attention_mask);
    const settings = parseSettings(
      {
        model_name_or_path: 'tiny-gemma3',
        dataset: 'sft_alpaca.json',
        learning_rate: 1e-3,
        lr_scheduler_type: 'constant',
        weight_decay: 0,
        max_grad_norm: 0,
        per_device_train_batch_size: 4,
        cutoff_len: 64,
        max_steps: 5,
        disable_shuffling: true,
        save_strategy: 'no',
      },
      'the test',
    );
    const folder = (p: string) => memorySource(p, { 'adapter_config.json': read(`${p}/adapter_config.json`), 'adapter_model.safetensors': read(`${p}/adapter_model.safetensors`) });
    const start = await readAdapter(folder('reference/init_adapter'), lm.config);
    const trainer = Trainer.create({ model: lm.model, settings, train, padTokenId: lm.tokenizer.padTokenId ?? 0, startingAdapter: start });
    const result = await trainer.run();
    const want = reference.lora_trajectory.losses_before_each_step;
    result.metrics.forEach((m, i) => expect(Math.abs(m.loss - want[i]!) / want[i]!, `loss ${i + 1}: ${m.loss} vs ${want[i]}`).toBeLessThan(1e-4));
    const final = st('reference/final_adapter/adapter_model.safetensors');
    const weights = await trainer.trainableWeights();
    let worst = 0;
    for (const name of final.names) {
      const a = weights.get(name)!;
      const e = final.float32(name);
      for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(a[i]! - e[i]!));
    }
    expect(worst).toBeLessThan(2e-4);
    trainer.dispose();
    lm.dispose();
  });
});
