// The trainer's behaviour around the step: the schedule and data order it reports, evaluation, pause and stop,
// one readback per optimizer step, and what it exports: an adapter read back through src/model/adapter.ts gives
// the live model's logits, and the merged model gives base + adapter logits.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exportHfModel, exportPeftAdapter, mergeLora, type WeightTensor } from '../../src/export';
import { loadModel } from '../../src/model/load';
import { memorySource } from '../../src/model/source';
import { releaseBatch, uploadBatch } from '../../src/model/transformer';
import { loraModuleWeights } from '../../src/train/methods';
import { learningRateAt } from '../../src/train/schedule';
import { SettingsError } from '../../src/train/settings';
import { TrainControl, Trainer } from '../../src/train/trainer';
import { FIXTURE_DIR, fixtureModel, initAdapter, safetensors, settings, shortExamples } from './helpers';

describe('schedule, data order and reporting', () => {
  it('warm-up + linear lr per step, a fresh seeded order each epoch, one readback per optimizer step', async () => {
    const { lm, ctx } = await fixtureModel();
    const train = shortExamples(lm, 4);
    const s = settings({ max_steps: -1, num_train_epochs: 2, per_device_train_batch_size: 1, gradient_accumulation_steps: 2, lr_scheduler_type: 'linear', warmup_steps: 1, disable_shuffling: false, seed: 3 });
    const trainer = Trainer.create({ model: lm.model, settings: s, train, padTokenId: 0 });
    expect(trainer.totalSteps).toBe(4);
    const e0 = trainer.epochOrder(0);
    const e1 = trainer.epochOrder(1);
    expect([...e0].sort()).toEqual([0, 1, 2, 3]);
    expect([...e1].sort()).toEqual([0, 1, 2, 3]);
    expect(e0).not.toEqual(e1);
    expect(trainer.microBatches(3)).toEqual({ epoch: 1, batches: [[e1[2]], [e1[3]]] });
    const progress: number[] = [];
    const before = ctx.stats.readbacks;
    const r = await trainer.run({ onProgress: (p) => p.phase === 'train' && progress.push(p.step) });
    expect(ctx.stats.readbacks - before).toBe(4);
    expect(r.metrics.map((m) => m.learning_rate)).toEqual([0, 1, 2, 3].map((k) => learningRateAt(k, trainer.schedule)));
    expect(r.metrics[0]!.learning_rate).toBe(0); // transformers' first warm-up step
    expect(r.metrics.map((m) => m.epoch)).toEqual([0.5, 1, 1.5, 2]);
    const tokens = (ix: number[]) => ix.reduce((sum, i) => sum + train[i]!.labels.slice(1).filter((l) => l !== -100).length, 0);
    expect(r.metrics.map((m) => m.tokens)).toEqual([tokens(e0.slice(0, 2)), tokens(e0.slice(2)), tokens(e1.slice(0, 2)), tokens(e1.slice(2))]);
    expect(progress).toEqual([0, 1, 2, 3, 4]);
    for (const m of r.metrics) {
      expect(m.tokens_per_second).toBeGreaterThan(0);
      expect(m.input_tokens).toBeGreaterThan(m.tokens);
    }
    expect(r.metrics[3]!.elapsed_s).toBeGreaterThan(r.metrics[0]!.elapsed_s);
    trainer.dispose();
  });

  it('eval_loss on the validation split every eval_steps equals the training loss of the same batch before any update', async () => {
    const { lm } = await fixtureModel();
    const ex = shortExamples(lm, 3);
    const trainer = Trainer.create({
      model: lm.model,
      settings: settings({ max_steps: 2, per_device_train_batch_size: 3, eval_strategy: 'steps', eval_steps: 1, per_device_eval_batch_size: 2, learning_rate: 1e-2 }),
      train: ex,
      val: ex,
      padTokenId: 0,
      startingAdapter: await initAdapter(lm),
    });
    const before = await trainer.evaluate();
    const evals: number[] = [];
    const r = await trainer.run({ onEval: (e) => evals.push(e.eval_loss) });
    expect(Math.abs(before!.eval_loss - r.metrics[0]!.loss) / r.metrics[0]!.loss).toBeLessThan(1e-5);
    expect(Math.abs(evals[0]! - r.metrics[1]!.loss) / r.metrics[1]!.loss).toBeLessThan(1e-5);
    expect(r.evalMetrics.map((e) => e.step)).toEqual([1, 2]);
    expect(evals[1]!).toBeLessThan(evals[0]!);
    trainer.dispose();
  });

  it('pause holds between steps, stop ends the run with status "stopped"', async () => {
    const { lm } = await fixtureModel();
    const control = new TrainControl();
    const trainer = Trainer.create({ model: lm.model, settings: settings({ max_steps: 4, per_device_train_batch_size: 1 }), train: shortExamples(lm, 2), padTokenId: 0 });
    let steps = 0;
    const running = trainer.run({ control, onStep: () => (++steps === 1 ? control.pause() : undefined) });
    await new Promise((r) => setTimeout(r, 300));
    expect(steps).toBe(1);
    expect(control.paused).toBe(true);
    control.resume();
    await new Promise((r) => setTimeout(r, 1));
    control.stop();
    const r = await running;
    expect(r.status).toBe('stopped');
    expect(r.globalStep).toBeGreaterThanOrEqual(1);
    expect(r.globalStep).toBeLessThan(4);
    // An AbortSignal works as well.
    const ac = new AbortController();
    ac.abort();
    expect((await trainer.run({ signal: ac.signal })).status).toBe('stopped');
    trainer.dispose();
  });

  it('refuses what it cannot train, naming the setting', async () => {
    const { lm } = await fixtureModel();
    const train = shortExamples(lm, 1);
    expect(() => Trainer.create({ model: lm.model, settings: settings({ stage: 'dpo' }), train, padTokenId: 0 })).toThrow(SettingsError);
    expect(() => Trainer.create({ model: lm.model, settings: settings(), train: [], padTokenId: 0 })).toThrow(/nothing to train on/);
    expect(lm.model.adapter).toBeNull();
  });
});

describe('exports of a trained adapter', () => {
  it('the PEFT adapter read back gives the live logits; the merged model gives base + adapter logits', async () => {
    const { lm, ctx } = await fixtureModel();
    const train = shortExamples(lm, 2);
    const trainer = Trainer.create({
      model: lm.model,
      settings: settings({ max_steps: 3, per_device_train_batch_size: 2, learning_rate: 2e-2, lora_rank: 3, lora_alpha: 5, use_rslora: true, lora_target: 'q_proj,v_proj,down_proj', seed: 9 }),
      train,
      padTokenId: 0,
    });
    await trainer.run();
    const lora = trainer.method.lora!;
    const modules = loraModuleWeights(lora, await trainer.trainableWeights());
    const files = exportPeftAdapter({ baseModel: 'tiny-llama', r: lora.r, alpha: lora.alpha, useRslora: true, targetModules: lora.targetModules, modules });
    const batch = uploadBatch(ctx, [train[0]!.inputIds]);
    const logits = async () => {
      const acts = lm.model.forward(batch, { saveForBackward: false });
      const out = await ctx.readF32(acts.logits);
      acts.release();
      return out;
    };
    const live = await logits();
    lm.model.setAdapter(null);
    const base = await logits();
    expect(live).not.toEqual(base);

    const name = await lm.loadAdapter(memorySource('trained', files));
    lm.model.setAdapter(lm.getAdapter(name)!);
    expect(await logits()).toEqual(live);
    lm.model.setAdapter(null);
    lm.unloadAdapter(name);

    // Merged: W + scale·B·A in float64, exported as a Hugging Face folder and loaded as a model of its own.
    const file = safetensors('model.safetensors');
    const weights = new Map<string, WeightTensor>(file.names.map((n) => [n, { dtype: 'F32', shape: file.info(n).shape, data: file.float32(n) }]));
    const merged = exportHfModel({
      config: JSON.parse(readFileSync(new URL('config.json', FIXTURE_DIR), 'utf8')) as Record<string, unknown>,
      weights: mergeLora(weights, { r: lora.r, alpha: lora.alpha, useRslora: true, modules }),
      tokenizerFiles: new Map(['tokenizer.json', 'tokenizer_config.json'].map((f) => [f, new Uint8Array(readFileSync(new URL(f, FIXTURE_DIR)))])),
    });
    const mm = await loadModel(ctx, memorySource('merged', merged));
    const mBatch = uploadBatch(ctx, [train[0]!.inputIds]);
    const acts = mm.model.forward(mBatch, { saveForBackward: false });
    const got = await ctx.readF32(acts.logits);
    acts.release();
    releaseBatch(mBatch);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - live[i]!) / (1e-3 + Math.abs(live[i]!)));
    let effect = 0;
    for (let i = 0; i < got.length; i++) effect = Math.max(effect, Math.abs(base[i]! - live[i]!) / (1e-3 + Math.abs(live[i]!)));
    expect(worst).toBeLessThan(1e-3);
    expect(effect).toBeGreaterThan(0.05); // the adapter changes the logits far beyond the tolerance
    mm.dispose();
    releaseBatch(batch);
    trainer.dispose();
  });
});
