// THE fixture trajectory through the trainer API: 5 AdamW steps from init_adapter on sft_alpaca.json[0:4]
// (one batch of 4, cutoff 64) give PyTorch's losses before each step and its final adapter.
import { describe, expect, it } from 'vitest';
import { collate } from '../../src/data';
import { Trainer } from '../../src/train/trainer';
import { alpacaExamples, expectRel, fixtureModel, initAdapter, maxAbsDiff, reference, safetensors, settings } from './helpers';

describe('the fixture LoRA trajectory through the trainer API', () => {
  it('losses before each step (rel 1e-4) and the final adapter (abs 2e-4) equal PyTorch', async () => {
    const { ctx, lm } = await fixtureModel();
    const train = alpacaExamples(lm);
    // The batch the trainer builds is the fixture's sft_batch.
    const b = collate(train, { padTokenId: lm.tokenizer.padTokenId ?? 0 });
    expect(b.inputIds).toEqual(reference.sft_batch.input_ids);
    expect(b.labels).toEqual(reference.sft_batch.labels);
    expect(b.attentionMask).toEqual(reference.sft_batch.attention_mask);

    const trainer = Trainer.create({ model: lm.model, settings: settings(), train, padTokenId: 0, startingAdapter: await initAdapter(lm) });
    const readbacks = ctx.stats.readbacks;
    const result = await trainer.run();
    expect(result.status).toBe('completed');
    expect(ctx.stats.readbacks - readbacks).toBe(5); // one per optimizer step
    const want = reference.lora_trajectory.losses_before_each_step;
    expect(result.metrics.map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
    result.metrics.forEach((m, i) => expectRel(`loss ${i + 1}`, m.loss, want[i]!, 1e-4));
    expect(result.metrics.every((m) => m.learning_rate === 1e-3 && m.skipped_steps === 0 && m.tokens === 64)).toBe(true);

    const final = safetensors('reference/final_adapter/adapter_model.safetensors');
    const weights = await trainer.trainableWeights();
    expect([...weights.keys()].sort()).toEqual(final.names.sort());
    let worst = 0;
    for (const name of final.names) worst = Math.max(worst, maxAbsDiff(weights.get(name)!, final.float32(name)));
    expect(worst).toBeLessThan(2e-4);
    trainer.dispose();
    expect(lm.model.adapter).toBeNull();
  });
});
