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
});
