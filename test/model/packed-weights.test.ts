// Frozen weights kept in their file precision give exactly what their f32 copies give. The fixture model with its
// weights stored as BF16 and as F16 is loaded twice — packed (the default: matrices stay 16-bit on the GPU, read
// through shaders/lib/weight_*.wgsl) and widened to f32 (precision 'f32', the loader's former behaviour) — and
// every result must be bit for bit the same: LoRA losses and adapter weights over 3 AdamW steps, full
// fine-tuning (the trained weights get f32 master copies), the gradients of every parameter, and the logits of
// cached generation. Widening bf16/f16 is exact, so every fixture result of a 16-bit checkpoint is unchanged.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { f32ToBf16Bits, f32ToF16Bits } from '../../src/engine/half';
import { weightFormatOf } from '../../src/engine/weight';
import { loadModel, type LoadedModel } from '../../src/model/load';
import { SafetensorsFile, writeSafetensors } from '../../src/model/safetensors';
import { memorySource } from '../../src/model/source';
import { uploadBatch, releaseBatch } from '../../src/model/transformer';
import { crossEntropyChunkBackward, crossEntropyForward } from '../../src/engine/ops/cross-entropy';
import { testContext } from '../helpers/gpu';
import { alpacaExamples, FIXTURE_DIR, initAdapter, settings } from '../train/helpers';
import { Trainer } from '../../src/train/trainer';

const file = (p: string) => new Uint8Array(readFileSync(new URL(p, FIXTURE_DIR)));

/** The fixture's folder with model.safetensors rewritten in `dtype` (values rounded to it). */
function fixtureAs(dtype: 'BF16' | 'F16') {
  const f32 = new SafetensorsFile(file('model.safetensors'), 'model.safetensors');
  const bytes = writeSafetensors(
    f32.names.map((name) => ({
      name,
      dtype,
      shape: f32.info(name).shape,
      data: Uint16Array.from(f32.float32(name), (v) => (dtype === 'BF16' ? f32ToBf16Bits(v) : f32ToF16Bits(v))),
    })),
  );
  const files: Record<string, Uint8Array> = { 'model.safetensors': bytes };
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) files[f] = file(f);
  return memorySource(`tiny-llama-${dtype}`, files);
}

async function loadBoth(dtype: 'BF16' | 'F16'): Promise<{ packed: LoadedModel; wide: LoadedModel }> {
  const ctx = await testContext();
  const source = fixtureAs(dtype);
  const packed = await loadModel(ctx, source);
  const wide = await loadModel(ctx, source, { weights: { precision: 'f32' } });
  return { packed, wide };
}

async function loraRun(lm: LoadedModel, over: Record<string, unknown> = {}) {
  const trainer = Trainer.create({ model: lm.model, settings: settings({ max_steps: 3, ...over }), train: alpacaExamples(lm), padTokenId: 0, startingAdapter: await initAdapter(lm) });
  const result = await trainer.run();
  const weights = await trainer.trainableWeights();
  trainer.dispose();
  return { losses: result.metrics.map((m) => [m.loss, m.grad_norm]), weights };
}

describe('weights kept in their file precision', () => {
  for (const dtype of ['BF16', 'F16'] as const) {
    it(`${dtype}: ${dtype === 'BF16' ? 'LoRA training, gradients and generation are' : 'every gradient is'} bit-identical to the f32 copy`, async () => {
      const { packed, wide } = await loadBoth(dtype);
      const half = dtype === 'BF16' ? 'bf16' : 'f16';
      // Matrices stay 16-bit; norm weights are f32.
      expect(weightFormatOf(packed.model.param('model.layers.0.mlp.up_proj.weight')!.parts[0]!)).toBe(half);
      expect(weightFormatOf(packed.model.param('model.embed_tokens.weight')!.parts[0]!)).toBe(half);
      expect(weightFormatOf(packed.model.param('model.norm.weight')!.parts[0]!)).toBe('f32');
      expect(weightFormatOf(wide.model.param('model.layers.0.mlp.up_proj.weight')!.parts[0]!)).toBe('f32');

      // The LoRA trajectory and generation on BF16 (the F16 reader differs only in its unpacking, which the
      // gradients of every parameter below exercise through every kernel that reads a weight).
      if (dtype === 'BF16') {
        const a = await loraRun(packed);
        const b = await loraRun(wide);
        expect(a.losses).toEqual(b.losses);
        for (const [name, w] of b.weights) expect(Array.from(a.weights.get(name)!), name).toEqual(Array.from(w));
      }

      // Every parameter's gradient of the mean next-token loss (what full fine-tuning starts from).
      const ids = [[203, 290, 2, 239, 451, 327, 163, 54], [62, 463, 395, 159, 430, 350, 56, 325]];
      const grads = async (lm: LoadedModel) => {
        const ctx = lm.model.ctx;
        const batch = uploadBatch(ctx, ids);
        const acts = lm.model.forward(batch);
        const g = lm.model.createGradients('all');
        // Next-token targets (the last position predicts token 0): the mean loss's dLogits.
        const N = 16;
        const t = ctx.upload([N], Int32Array.from(ids.flatMap((row) => [...row.slice(1), 0])), 'i32');
        const losses = ctx.empty([N]);
        const stats = ctx.empty([N, 2]);
        crossEntropyForward(ctx, losses, stats, ctx.empty([N]), acts.logits!, t);
        const dLogits = ctx.zeros([N, lm.config.vocabSize]);
        crossEntropyChunkBackward(ctx, dLogits, acts.logits!, stats, t, ctx.upload([N], new Float32Array(N).fill(1 / N)), 0);
        lm.model.backward(acts, dLogits, g);
        const out = new Map<string, number[]>();
        for (const p of lm.model.parameters()) out.set(p.name, Array.from(await ctx.readF32(g.get(p.name)![0]!)));
        out.set('logits', Array.from(await ctx.readF32(acts.logits!)));
        acts.release();
        g.release();
        releaseBatch(batch);
        return out;
      };
      const ga = await grads(packed);
      const gb = await grads(wide);
      for (const [name, v] of gb) expect(ga.get(name), name).toEqual(v);

      // Greedy generation through the KV cache: the same tokens.
      if (dtype === 'BF16') {
        const prompt = packed.chatPromptIds('What is LoRA?');
        const gen = async (lm: LoadedModel) => (await lm.generate(prompt, { maxNewTokens: 8, greedy: true })).newIds;
        expect(await gen(packed)).toEqual(await gen(wide));
      }
      packed.dispose();
      wide.dispose();
    });
  }

  it('BF16 full fine-tuning trains f32 master copies and keeps the losses and weights of the f32 load', async () => {
    const { packed, wide } = await loadBoth('BF16');
    const run = async (lm: LoadedModel) => {
      const trainer = Trainer.create({ model: lm.model, settings: settings({ finetuning_type: 'full', max_steps: 2, learning_rate: 1e-4 }), train: alpacaExamples(lm), padTokenId: 0 });
      const result = await trainer.run();
      const weights = await trainer.trainableWeights();
      trainer.dispose();
      return { losses: result.metrics.map((m) => m.loss), weights };
    };
    const a = await run(packed);
    expect(weightFormatOf(packed.model.param('model.layers.0.mlp.up_proj.weight')!.parts[0]!)).toBe('f32');
    const b = await run(wide);
    expect(a.losses).toEqual(b.losses);
    for (const [name, w] of b.weights) expect(Array.from(a.weights.get(name)!), name).toEqual(Array.from(w));
    packed.dispose();
    wide.dispose();
  });
});
