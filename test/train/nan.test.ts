// The NaN/Inf guard: a step whose loss or gradient norm is not finite is skipped — no update, AdamW's moments
// and step count untouched — counted and reported, and NaN never reaches saved weights.
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../../src/train/checkpoint';
import { MemoryCheckpointStore } from '../../src/train/checkpoint-store';
import { Trainer, TrainError } from '../../src/train/trainer';
import { fixtureModel, initAdapter, settings, shortExamples } from './helpers';

describe('NaN guard', () => {
  it('a NaN in one micro-batch\'s dLogits skips the whole step; the next steps train on', async () => {
    const { lm, ctx } = await fixtureModel();
    const store = new MemoryCheckpointStore();
    const trainer = Trainer.create({
      model: lm.model,
      settings: settings({ max_steps: 3, per_device_train_batch_size: 1, gradient_accumulation_steps: 2, save_strategy: 'steps', save_steps: 1, max_grad_norm: 1 }),
      train: shortExamples(lm, 6),
      padTokenId: 0,
      startingAdapter: await initAdapter(lm),
      store,
      hooks: {
        beforeBackward: ({ step, micro, dLogits }) => {
          if (step === 2 && micro === 1) ctx.write(dLogits[0]!, new Float32Array([Number.NaN]), 5);
        },
      },
    });
    const result = await trainer.run();
    const [r1, r2, r3] = result.metrics;
    expect(r1!.skipped).toBeUndefined();
    expect(r2!.skipped).toBe(true);
    expect(Number.isFinite(r2!.loss)).toBe(true); // the loss was fine; the gradient norm was not
    expect(Number.isNaN(r2!.grad_norm)).toBe(true);
    expect([r1!.skipped_steps, r2!.skipped_steps, r3!.skipped_steps]).toEqual([0, 1, 1]);
    expect(Number.isFinite(r3!.loss) && Number.isFinite(r3!.grad_norm)).toBe(true);
    expect(result.skippedSteps).toBe(1);
    expect(trainer.optimizerSteps).toBe(2);
    // The schedule moved on: step 3 used step 3's learning rate, and the data too (no example was repeated).
    expect(result.metrics.map((m) => m.step)).toEqual([1, 2, 3]);

    const c1 = decodeCheckpoint(await store.read(1), '1');
    const c2 = decodeCheckpoint(await store.read(2), '2');
    const c3 = decodeCheckpoint(await store.read(3), '3');
    expect([c1.optimizer.step, c2.optimizer.step, c3.optimizer.step]).toEqual([1, 1, 2]);
    expect(c2.state.skipped_steps).toBe(1);
    for (const [name, w] of c1.weights) {
      expect(c2.weights.get(name), name).toEqual(w); // bit-identical: no update
      expect(c2.optimizer.params.get(name)!.expAvg).toEqual(c1.optimizer.params.get(name)!.expAvg);
      expect(c2.optimizer.params.get(name)!.expAvgSq).toEqual(c1.optimizer.params.get(name)!.expAvgSq);
    }
    for (const c of [c1, c2, c3]) {
      for (const [name, w] of c.weights) expect(w.every(Number.isFinite), name).toBe(true);
      for (const [name, o] of c.optimizer.params) expect(o.expAvg.every(Number.isFinite) && o.expAvgSq.every(Number.isFinite), name).toBe(true);
    }
    for (const w of (await trainer.trainableWeights()).values()) expect(w.every(Number.isFinite)).toBe(true);
    trainer.dispose();
  });

  it('an Inf weight before the first step stops the run with a sentence; the weights stay as they were', async () => {
    const { lm, ctx } = await fixtureModel();
    const adapter = await initAdapter(lm);
    const trainer = Trainer.create({ model: lm.model, settings: settings({ max_steps: 2, per_device_train_batch_size: 2 }), train: shortExamples(lm, 2), padTokenId: 0, startingAdapter: adapter });
    const p = trainer.method.params.find((x) => x.name.endsWith('layers.1.mlp.down_proj.lora_B.weight'))!;
    ctx.write(p.parts[0]!, new Float32Array([Number.POSITIVE_INFINITY]), 3);
    const before = await trainer.trainableWeights();
    const err = await trainer.run().then(() => undefined, (e: unknown) => e as TrainError);
    expect(err).toBeInstanceOf(TrainError);
    expect(err!.code).toBe('non-finite');
    expect(err!.message).toMatch(/^Training stopped before step 1: the trainable weights were already NaN or infinite when training started .*; nothing of this run was saved: start from an adapter or checkpoint whose values are finite\.$/);
    expect(trainer.step).toBe(0);
    expect(trainer.optimizerSteps).toBe(0);
    expect(await trainer.trainableWeights()).toEqual(before);
    trainer.dispose();
  });

  it('an update that makes the weights infinite (learning rate 1e38) stops the run; the last good checkpoint stays the latest', async () => {
    const { lm } = await fixtureModel();
    const store = new MemoryCheckpointStore('out');
    const run = async (saveSteps: number) => {
      // One warm-up step at learning rate 0 (its update changes nothing: checkpoint-1 is good), then 1e38.
      const trainer = Trainer.create({
        model: lm.model,
        settings: settings({ max_steps: 4, per_device_train_batch_size: 2, learning_rate: 1e38, lr_scheduler_type: 'constant_with_warmup', warmup_steps: 1, save_strategy: 'steps', save_steps: saveSteps }),
        train: shortExamples(lm, 8),
        padTokenId: 0,
        startingAdapter: await initAdapter(lm),
        store,
      });
      const steps: number[] = [];
      const err = await trainer.run({ onStep: (r) => steps.push(r.step) }).then(() => undefined, (e: unknown) => e as TrainError);
      trainer.dispose();
      expect(err).toBeInstanceOf(TrainError);
      return { err: err!, steps };
    };
    // Saving every step: checkpoint-2 is refused as it is taken (its weights are read back anyway).
    let r = await run(1);
    expect(r.err.message).toMatch(/^Training stopped after step 2: the update of step 2 \(learning rate 1e\+38\) made the weights of .* NaN or infinite; the last good checkpoint, out\/checkpoint-1, is kept and nothing after it was saved: lower learning_rate \(or set max_grad_norm\) and train again\.$/);
    expect(await store.list()).toEqual([1]);
    expect(r.steps).toEqual([1, 2]);
    for (const w of decodeCheckpoint(await store.read(1), '1').weights.values()) expect(w.every(Number.isFinite)).toBe(true);
    // Saving every 10 steps: step 3's readback finds the weights step 2 broke, before any update of step 3.
    await store.delete(1);
    r = await run(10);
    expect(r.err.message).toMatch(/^Training stopped before step 3: the update of step 2 \(learning rate 1e\+38\) made the trainable weights NaN or infinite; nothing of this run was saved: lower learning_rate/);
    expect(r.steps).toEqual([1, 2]);
    expect(await store.list()).toEqual([]);
  });

  it('a step whose examples have no answer token is skipped as "no_target", not as not finite, and is no reason to stop', async () => {
    const { lm } = await fixtureModel();
    const ex = shortExamples(lm, 4).map((e, i) => (i < 2 ? { ...e, labels: e.labels.map(() => -100) } : e));
    const trainer = Trainer.create({ model: lm.model, settings: settings({ max_steps: 2, per_device_train_batch_size: 2 }), train: ex, padTokenId: 0, startingAdapter: await initAdapter(lm) });
    const result = await trainer.run();
    expect(result.metrics.map((m) => [m.skipped ?? false, m.skip_reason])).toEqual([[true, 'no_target'], [false, undefined]]);
    expect(trainer.optimizerSteps).toBe(1);
    trainer.dispose();
  });

  it('a finite run whose gradient norm is 0 with an unchanged loss for 3 steps says so once', async () => {
    const { lm } = await fixtureModel();
    // A zero learning rate with a LoRA B of 0 and A of 0: nothing changes and every gradient is exactly 0.
    const trainer = Trainer.create({ model: lm.model, settings: settings({ max_steps: 5, per_device_train_batch_size: 2 }), train: shortExamples(lm, 2), padTokenId: 0 });
    for (const p of trainer.method.params) for (const t of p.parts) lm.model.ctx.fill(t, 0);
    const warnings: string[] = [];
    const result = await trainer.run({ onWarning: (w) => warnings.push(w) });
    expect(result.metrics.map((m) => m.grad_norm)).toEqual([0, 0, 0, 0, 0]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^the loss has stayed at [\d.]+ with a gradient norm of 0 for 3 steps \(up to step 3\): the model has stopped learning/);
    trainer.dispose();
  });
});
