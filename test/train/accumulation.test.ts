// Gradient accumulation normalises the loss over ALL target tokens of the optimizer step, so 2 micro-batches of
// 2 equal one batch of 4 (losses and weights to float rounding), also when the last micro-batch is short.
import { describe, expect, it } from 'vitest';
import { Trainer, type TrainExample } from '../../src/train/trainer';
import { fixtureModel, initAdapter, maxAbsDiff, restoreBase, settings, shortExamples } from './helpers';

async function run(train: TrainExample[], over: Record<string, unknown>) {
  const { lm } = await fixtureModel();
  const trainer = Trainer.create({ model: lm.model, settings: settings({ max_grad_norm: 1.0, weight_decay: 0.01, ...over }), train, padTokenId: 0, ...(over.finetuning_type === 'full' ? {} : { startingAdapter: await initAdapter(lm) }) });
  const result = await trainer.run();
  const weights = await trainer.trainableWeights();
  trainer.dispose();
  if (over.finetuning_type === 'full') await restoreBase(lm);
  return { result, weights };
}

function expectSame(a: Awaited<ReturnType<typeof run>>, b: Awaited<ReturnType<typeof run>>, tol: number): void {
  expect(a.result.metrics.map((m) => m.tokens)).toEqual(b.result.metrics.map((m) => m.tokens));
  a.result.metrics.forEach((m, i) => {
    const o = b.result.metrics[i]!;
    expect(Math.abs(m.loss - o.loss) / o.loss, `loss ${i + 1}`).toBeLessThan(tol);
    expect(Math.abs(m.grad_norm - o.grad_norm) / o.grad_norm, `grad_norm ${i + 1}`).toBeLessThan(tol * 10);
  });
  for (const [name, w] of a.weights) expect(maxAbsDiff(w, b.weights.get(name)!), name).toBeLessThan(tol);
}

describe('gradient accumulation', () => {
  it('LoRA: 2 × 2 equals one batch of 4 over 3 steps (losses, norms, weights ~1e-6)', async () => {
    const { lm } = await fixtureModel();
    const train = shortExamples(lm, 8);
    // Different lengths in each micro-batch: the padding differs between the two layouts.
    expect(new Set(train.map((e) => e.inputIds.length)).size).toBeGreaterThan(1);
    const one = await run(train, { per_device_train_batch_size: 4, gradient_accumulation_steps: 1, max_steps: 3 });
    const two = await run(train, { per_device_train_batch_size: 2, gradient_accumulation_steps: 2, max_steps: 3 });
    expectSame(two, one, 2e-6);
    // Not trivially equal: a per-micro-batch mean would weight tokens differently.
    expect(one.result.metrics[0]!.loss).not.toBe(one.result.metrics[1]!.loss);
  });

  it('a short last micro-batch: 3 examples as 2 + 1 equal one batch of 3; full fine-tuning', async () => {
    const { lm } = await fixtureModel();
    const train = shortExamples(lm, 3);
    const one = await run(train, { finetuning_type: 'full', per_device_train_batch_size: 3, max_steps: 2, learning_rate: 1e-3 });
    const two = await run(train, { finetuning_type: 'full', per_device_train_batch_size: 2, gradient_accumulation_steps: 2, max_steps: 2, learning_rate: 1e-3 });
    expectSame(two, one, 2e-6);
  });
});
