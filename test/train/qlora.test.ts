// QLoRA: LoRA on a 4-bit (or 8-bit) frozen base. The fixture model loaded with quantization_bit 4 (NF4, double
// quantization: LLaMA-Factory's defaults) through the job's weight options trains 5 AdamW steps from init_adapter;
// its losses equal PyTorch's with the same quantized-dequantized base (scripts/fixtures/qlora_tiny_llama.py,
// test/fixtures/tiny-llama/qlora/) within 1e-4 relative, and the final adapter within 2e-4. FP4 and int8 start
// from their fixtures' first losses.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { folderSource } from '../../src/cli/folder-source';
import { isQuantized, weightFormatOf } from '../../src/engine/weight';
import { weightOptionsFor } from '../../src/job/run';
import { loadModel, type LoadedModel } from '../../src/model/load';
import { Trainer } from '../../src/train/trainer';
import { dequantizeWeight, quantizeWeight } from '../../src/engine/quantize';
import { blockLinearWeights, type WeightSource } from '../../src/model/params';
import { CausalLM, releaseBatch, uploadBatch } from '../../src/model/transformer';
import { referenceLogits, refWeights } from '../model-ref/transformer';
import { expectClose } from '../harness/checkOp';
import { makeRandomModel, RANDOM_MODELS, randomIds } from '../helpers/random-model';
import { Rng } from '../helpers/rng';
import { testContext } from '../helpers/gpu';
import { alpacaExamples, expectRel, FIXTURE_DIR, initAdapter, maxAbsDiff, safetensors, settings } from './helpers';

const qlora = JSON.parse(readFileSync(new URL('qlora/qlora.json', FIXTURE_DIR), 'utf8')) as Record<string, { losses_before_each_step: number[] }>;

async function load(over: Record<string, unknown>): Promise<LoadedModel> {
  const ctx = await testContext();
  return loadModel(ctx, await folderSource(new URL('.', FIXTURE_DIR).pathname), { weights: weightOptionsFor(settings(over)) });
}

describe('QLoRA on the fixture model', () => {
  it('NF4 with double quantization: PyTorch\'s losses (rel 1e-4) and final adapter (abs 2e-4)', async () => {
    const s = settings({ quantization_bit: 4 });
    expect(weightOptionsFor(s)).toEqual({ quantize: { format: 'nf4', doubleQuant: true } });
    const lm = await load({ quantization_bit: 4 });
    // The blocks' linears are quantized; the embeddings (tied head) and norms are as stored.
    expect(weightFormatOf(lm.model.param('model.layers.1.mlp.down_proj.weight')!.parts[0]!)).toBe('nf4');
    expect(isQuantized(lm.model.param('model.embed_tokens.weight')!.parts[0]!)).toBe(false);
    const trainer = Trainer.create({ model: lm.model, settings: s, train: alpacaExamples(lm), padTokenId: 0, startingAdapter: await initAdapter(lm) });
    const result = await trainer.run();
    const want = qlora.nf4!.losses_before_each_step;
    result.metrics.forEach((m, i) => expectRel(`NF4 loss ${i + 1}`, m.loss, want[i]!, 1e-4));
    const final = safetensors('qlora/final_adapter/adapter_model.safetensors');
    const weights = await trainer.trainableWeights();
    let worst = 0;
    for (const name of final.names) worst = Math.max(worst, maxAbsDiff(weights.get(name)!, final.float32(name)));
    expect(worst).toBeLessThan(2e-4);
    trainer.dispose();
    lm.dispose();
  });

  for (const [name, over] of [
    ['fp4', { quantization_bit: 4, quantization_type: 'fp4' }],
    ['int8', { quantization_bit: 8 }],
    ['nf4_no_double', { quantization_bit: 4, double_quantization: false }],
  ] as const) {
    it(`${name}: the first steps' losses equal PyTorch's (rel 1e-4)`, async () => {
      const lm = await load(over);
      const trainer = Trainer.create({ model: lm.model, settings: settings({ ...over, max_steps: 2 }), train: alpacaExamples(lm), padTokenId: 0, startingAdapter: await initAdapter(lm) });
      const result = await trainer.run();
      const want = qlora[name]!.losses_before_each_step;
      result.metrics.forEach((m, i) => expectRel(`${name} loss ${i + 1}`, m.loss, want[i]!, 1e-4));
      trainer.dispose();
      lm.dispose();
    });
  }

  it('bottleneck adapters and prompt tuning train on a 4-bit base too', async () => {
    const lm = await load({ quantization_bit: 4 });
    for (const over of [{ finetuning_type: 'adapter' }, { finetuning_type: 'prompt', num_virtual_tokens: 4, learning_rate: 3e-2 }]) {
      const trainer = Trainer.create({ model: lm.model, settings: settings({ quantization_bit: 4, max_steps: 3, ...over }), train: alpacaExamples(lm), padTokenId: 0 });
      const losses = (await trainer.run()).metrics.map((m) => m.loss);
      expect(losses.every(Number.isFinite), `${over.finetuning_type}: ${losses}`).toBe(true);
      expect(losses[2]!, `${over.finetuning_type} learns: ${losses}`).toBeLessThan(losses[0]!);
      trainer.dispose();
    }
    lm.dispose();
  });

  it('GPT-2: Conv1D weights are quantized in nn.Linear\'s [out, in] order, as transformers hands them to bitsandbytes', async () => {
    const ctx = await testContext();
    const m = makeRandomModel(RANDOM_MODELS.gpt2Bare!);
    const model = CausalLM.create(ctx, m.cfg, m.weights, { weights: { quantize: { format: 'nf4', doubleQuant: true } } });
    const c_fc = model.param('transformer.h.0.mlp.c_fc.weight')!;
    expect(c_fc.transposed).toBe(true);
    // The reference: each block linear transposed to [out, in], quantized and dequantized, transposed back.
    const linears = new Map(blockLinearWeights(m.cfg, m.weights).map((l) => [l.name, l]));
    const t = (x: Float32Array, rows: number, cols: number) => {
      const o = new Float32Array(x.length);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) o[j * rows + i] = x[i * cols + j]!;
      return o;
    };
    const dequantized: WeightSource = {
      names: m.weights.names,
      info: (n) => m.weights.info(n),
      float32: (n) => {
        const l = linears.get(n);
        const v = m.weights.float32(n);
        if (!l) return v;
        const [r, c] = l.shape as [number, number];
        return t(dequantizeWeight(quantizeWeight(t(v, r, c), 'nf4', true), v.length), c, r);
      },
    };
    const ids = randomIds(new Rng(3), 2, 6, m.cfg.vocabSize);
    const batch = uploadBatch(ctx, ids);
    const acts = model.forward(batch);
    const want = referenceLogits(m.cfg, refWeights(dequantized), ids);
    const rms = Math.sqrt(want.reduce((s, v) => s + v * v, 0) / want.length);
    expectClose('GPT-2 NF4 logits', await ctx.readF32(acts.logits), want, { atol: 1e-4 * rms, rtol: 1e-4 });
    acts.release();
    releaseBatch(batch);
    model.dispose();
  });
});
