// LoRA dropout in training (lora_dropout > 0, PEFT's semantics; the masks are the model's ForwardOptions.loraDropout):
// the trainer's first step equals a direct forward + backward with {p, seed, offset 0}; each micro-batch of a step
// owns its own counter range (offset = (step · accumulation + micro) · span), so two micro-batches over the same
// sequence get different masks; a run is deterministic for its seed and differs for another; losses differ from
// p = 0 and still fall; stop + resume equals the straight run bit for bit; `graft train --lora_dropout 0.1` runs
// and writes lora_dropout into adapter_config.json.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collate } from '../../src/data';
import type { LoadedModel } from '../../src/model/load';
import type { LoraDropout } from '../../src/model/transformer';
import { decodeCheckpoint } from '../../src/train/checkpoint';
import { latestCheckpoint, MemoryCheckpointStore, type CheckpointStore } from '../../src/train/checkpoint-store';
import { countTargets, shiftedTargets } from '../../src/train/loss';
import { readJoined } from '../../src/train/optimizer';
import type { DpoObjective } from '../../src/train/objectives';
import { TrainControl, Trainer, type TrainExample, type TrainPair } from '../../src/train/trainer';
import { lines } from '../cli/run';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { sftMicroStep } from '../helpers/sft-step';
import { ALPACA, alpacaExamples, FIXTURE, fixtureModel, initAdapter, reference, RESUME_JOB, settings, shortExamples } from './helpers';

// `graft train` runs in this process on the file's one GPU device (test/helpers/graft-in-process.ts).

const scratch = mkdtempSync(join(tmpdir(), 'graft-lora-dropout-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const P = 0.1;

/**
 * Σ over `micro` (each a list of sequences and its dropout) of a direct forward + SFT loss + backward, scaled by
 * 1 / (all target tokens), into fresh LoRA gradients: what one trainer step computes. Returns the loss and the
 * gradients by parameter name.
 */
async function direct(lm: LoadedModel, micro: { examples: TrainExample[]; dropout?: LoraDropout }[]) {
  const { model } = lm;
  const ctx = model.ctx;
  const prepared = micro.map(({ examples, dropout }) => {
    const b = collate(examples, { padTokenId: 0 });
    return { b, targets: shiftedTargets(b.labels), dropout };
  });
  const tokens = prepared.reduce((n, p) => n + countTargets(p.targets), 0);
  const grads = model.createGradients('lora');
  const stats = ctx.zeros([2], 'f32');
  grads.zero();
  for (const { b, targets, dropout } of prepared) {
    sftMicroStep(model, { ids: b.inputIds, attentionMask: b.attentionMask, targets }, stats, 1 / tokens, grads, dropout ? { loraDropout: dropout } : {});
  }
  const out = new Map<string, Float32Array>();
  for (const [name, parts] of grads.entries()) out.set(name, await readJoined(ctx, parts));
  const loss = (await ctx.readF32(stats))[0]! / tokens;
  stats.release();
  grads.release();
  return { loss, grads: out };
}

/** A trainer on the fixture model from init_adapter; runs, returns metrics, last gradients and the trainer's dropout plan. */
async function trainRun(train: TrainExample[], over: Record<string, unknown>, opts: { store?: CheckpointStore; stopAfter?: number; resume?: boolean } = {}) {
  const { lm } = await fixtureModel();
  const resume = opts.resume && opts.store ? decodeCheckpoint(await opts.store.read((await latestCheckpoint(opts.store))!), 'latest') : undefined;
  const trainer = Trainer.create({
    model: lm.model,
    settings: settings(over),
    train,
    padTokenId: 0,
    startingAdapter: await initAdapter(lm),
    ...(opts.store ? { store: opts.store } : {}),
    ...(resume ? { resume } : {}),
  });
  try {
    const control = new TrainControl();
    const result = await trainer.run({ control, onStep: (r) => (r.step === opts.stopAfter ? control.stop() : undefined) });
    const data = await trainer.checkpointData();
    return { result, losses: result.metrics.map((m) => m.loss), norms: result.metrics.map((m) => m.grad_norm), data, grads: await trainer.gradients(), dropout: trainer.dropout };
  } finally {
    trainer.dispose();
  }
}

function expectGradsEqual(got: Map<string, Float32Array>, want: Map<string, Float32Array>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, g] of want) expect(got.get(name), name).toEqual(g);
}

function gradsDiffer(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  for (const [name, g] of a) {
    const o = b.get(name)!;
    if (g.some((v, i) => v !== o[i])) return true;
  }
  return false;
}

describe('LoRA dropout in the trainer', () => {
  it('the first step equals a direct forward with {p, seed, offset 0} + backward (loss and LoRA gradients bit for bit)', async () => {
    const { lm } = await fixtureModel();
    const train = alpacaExamples(lm);
    const seed = 11;
    const trainer = Trainer.create({ model: lm.model, settings: settings({ lora_dropout: P, seed, max_steps: 1 }), train, padTokenId: 0, startingAdapter: await initAdapter(lm) });
    try {
      const span = lm.model.loraDropoutCounters(4 * Math.max(...train.map((e) => e.inputIds.length)));
      expect(trainer.dropout).toEqual({ p: P, seed, span });
      expect(trainer.loraDropoutAt(0, 0)).toEqual({ p: P, seed, offset: 0 });
      expect(trainer.loraDropoutAt(3, 0)!.offset).toBe(3 * span);
      // The adapter is set and at its starting weights: compute the step directly first.
      const want = await direct(lm, [{ examples: train, dropout: { p: P, seed, offset: 0 } }]);
      const plain = await direct(lm, [{ examples: train }]);
      const result = await trainer.run();
      expect(result.metrics[0]!.loss).toBe(want.loss);
      expectGradsEqual(await trainer.gradients(), want.grads);
      // Dropout did something: not the p = 0 step (whose loss is PyTorch's).
      expect(want.loss).not.toBe(plain.loss);
      expect(Math.abs(plain.loss - reference.lora_trajectory.losses_before_each_step[0]!) / plain.loss).toBeLessThan(1e-4);
      expect(gradsDiffer(want.grads, plain.grads)).toBe(true);
    } finally {
      trainer.dispose();
    }
    expect(lm.model.adapter).toBeNull();
  });

  it('on the fixture trajectory job, losses differ from p = 0 (PyTorch\'s trajectory) and still fall', async () => {
    const { lm } = await fixtureModel();
    const drop = await trainRun(alpacaExamples(lm), { lora_dropout: P });
    const plain = reference.lora_trajectory.losses_before_each_step; // what p = 0 gives (trajectory.test.ts, rel 1e-4)
    expect(drop.losses).toHaveLength(5);
    drop.losses.forEach((l, i) => expect(Math.abs(l - plain[i]!) / plain[i]!, `loss ${i + 1}: ${l} vs ${plain[i]}`).toBeGreaterThan(1e-4));
    // p = 0.1 perturbs, it does not derail: within a few per cent of p = 0, and falling.
    drop.losses.forEach((l, i) => expect(Math.abs(l - plain[i]!) / plain[i]!, `loss ${i + 1}`).toBeLessThan(0.05));
    expect(drop.losses[4]!).toBeLessThan(drop.losses[0]! - 0.1);
  });

  it('gradient accumulation: each micro-batch gets its own offset (different masks over the same sequence); same seed same run, another seed another', async () => {
    const { lm } = await fixtureModel();
    const one = shortExamples(lm, 1)[0]!;
    const train = [one, one]; // the same sequence in both micro-batches of the step
    const job = { lora_dropout: P, per_device_train_batch_size: 1, gradient_accumulation_steps: 2, max_steps: 1, seed: 5 };
    const run = await trainRun(train, job);
    const span = run.dropout!.span;
    // The trainer's step is micro-batch 0 at offset 0 plus micro-batch 1 at offset span.
    const t = Trainer.create({ model: lm.model, settings: settings(job), train, padTokenId: 0, startingAdapter: await initAdapter(lm) });
    let want: Awaited<ReturnType<typeof direct>>;
    let same: Awaited<ReturnType<typeof direct>>;
    let first: Awaited<ReturnType<typeof direct>>;
    let second: Awaited<ReturnType<typeof direct>>;
    try {
      expect(span).toBe(lm.model.loraDropoutCounters(one.inputIds.length));
      expect(t.loraDropoutAt(0, 1)).toEqual({ p: P, seed: 5, offset: span });
      want = await direct(lm, [{ examples: [one], dropout: { p: P, seed: 5, offset: 0 } }, { examples: [one], dropout: { p: P, seed: 5, offset: span } }]);
      same = await direct(lm, [{ examples: [one], dropout: { p: P, seed: 5, offset: 0 } }, { examples: [one], dropout: { p: P, seed: 5, offset: 0 } }]);
      first = await direct(lm, [{ examples: [one], dropout: { p: P, seed: 5, offset: 0 } }]);
      second = await direct(lm, [{ examples: [one], dropout: { p: P, seed: 5, offset: span } }]);
    } finally {
      t.dispose();
    }
    expect(run.losses[0]).toBe(want.loss);
    expectGradsEqual(run.grads, want.grads);
    expect(gradsDiffer(want.grads, same.grads)).toBe(true);
    expect(first.loss).not.toBe(second.loss); // the two micro-batches' masks differ

    // Over several steps: deterministic for a seed, different for another (through the metrics).
    const many = { ...job, max_steps: 3 };
    const a = await trainRun(train, many);
    const b = await trainRun(train, many);
    const c = await trainRun(train, { ...many, seed: 6 });
    expect(b.losses).toEqual(a.losses);
    expect(b.norms).toEqual(a.norms);
    a.losses.forEach((l, i) => expect(c.losses[i], `loss ${i + 1}`).not.toBe(l));
  });

  it('stop at step 3 + resume equals the straight run bit for bit (accumulation, shuffling, memory store)', async () => {
    const { lm } = await fixtureModel();
    const examples = shortExamples(lm, 4);
    const job = { lora_dropout: P, ...RESUME_JOB };
    const straight = await trainRun(examples, job);
    const store = new MemoryCheckpointStore();
    const first = await trainRun(examples, job, { store, stopAfter: 3 });
    expect(first.result.status).toBe('stopped');
    expect(first.losses).toEqual(straight.losses.slice(0, 3));
    const span = straight.dropout!.span;
    expect(first.data.state.rng).toEqual({ seed: 7, dropout_offset: 3 * 2 * span, dropout_span: span });
    const saved = decodeCheckpoint(await store.read(3), 'checkpoint-3');
    expect(saved.state.rng).toEqual({ seed: 7, dropout_offset: 6 * span, dropout_span: span });
    const resumed = await trainRun(examples, job, { store, resume: true });
    expect(resumed.result.status).toBe('completed');
    expect(resumed.losses).toEqual(straight.losses);
    expect(resumed.data.optimizer.step).toBe(straight.data.optimizer.step);
    for (const [name, w] of straight.data.weights) expect(resumed.data.weights.get(name), name).toEqual(w);
    for (const [name, m] of straight.data.optimizer.params) {
      expect(resumed.data.optimizer.params.get(name)!.expAvg, name).toEqual(m.expAvg);
      expect(resumed.data.optimizer.params.get(name)!.expAvgSq, name).toEqual(m.expAvgSq);
    }
    // Not the p = 0 run, which passes no dropout and records none.
    const none = await trainRun(examples, { ...job, lora_dropout: 0 });
    expect(none.dropout).toBeNull();
    expect(none.data.state.rng).toEqual({ seed: 7, dropout_offset: 0, dropout_span: 0 });
    none.losses.forEach((l, i) => expect(l, `loss ${i + 1}`).not.toBe(straight.losses[i]));
  });
});

describe('LoRA dropout with preference pairs', () => {
  it('DPO and RM: the training forward drops (losses differ from p = 0), DPO\'s reference log-probs do not', async () => {
    const { lm } = await fixtureModel();
    const ex = shortExamples(lm, 4);
    const pairs: TrainPair[] = [
      { chosen: ex[0]!, rejected: ex[1]! },
      { chosen: ex[2]!, rejected: ex[3]! },
    ];
    const run = async (stage: 'dpo' | 'rm', p: number) => {
      const trainer = Trainer.create({ model: lm.model, settings: settings({ stage, lora_dropout: p, per_device_train_batch_size: 2, max_steps: 2, learning_rate: 1e-2 }), train: pairs, padTokenId: 0, startingAdapter: await initAdapter(lm) });
      try {
        // One forward of 2P rows per micro-batch, padded to the longest sequence of the pairs.
        const bound = lm.model.loraDropoutCounters(2 * 2 * Math.max(...ex.map((e) => e.inputIds.length)));
        const result = await trainer.run();
        const ref = stage === 'dpo' ? (trainer.objective as DpoObjective).referenceLogps : undefined;
        return { losses: result.metrics.map((m) => m.loss), span: trainer.dropout?.span, bound, ref };
      } finally {
        trainer.dispose();
      }
    };
    for (const stage of ['dpo', 'rm'] as const) {
      const drop = await run(stage, P);
      const none = await run(stage, 0);
      // Chosen and rejected rows share the micro-batch's one forward, so they draw disjoint counters of its range.
      expect(drop.span, stage).toBe(drop.bound);
      expect(none.span, stage).toBeUndefined();
      expect(drop.losses.every(Number.isFinite), stage).toBe(true);
      drop.losses.forEach((l, i) => expect(l, `${stage} loss ${i + 1}`).not.toBe(none.losses[i]));
      if (stage === 'dpo') {
        expect(drop.ref!.chosen).toEqual(none.ref!.chosen);
        expect(drop.ref!.rejected).toEqual(none.ref!.rejected);
      }
    }
  });
});

describe('graft train --lora_dropout', () => {
  it('trains 2 steps and writes lora_dropout 0.1 into adapter_config.json', async () => {
    const out = join(scratch, 'cli');
    const r = await graft(['train', '--model', FIXTURE, '--dataset', ALPACA, '--cutoff_len', '64', '--per_device_train_batch_size', '2', '--learning_rate', '1e-2', '--lora_rank', '2', '--lora_dropout', '0.1', '--max_steps', '2', '--output_dir', out]);
    expect(r.code, r.graftStderr).toBe(0);
    // lora_dropout is taken: the only line that names it is the export's note that LLaMA-Factory draws other masks.
    expect(r.graftStderr.split('\n').filter((l) => /lora_dropout/.test(l) && !/note: train\.yaml: lora_dropout 0\.1: the dropout masks/.test(l))).toEqual([]);
    const metrics = lines(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).map((l) => JSON.parse(l) as { step: number; loss: number });
    expect(metrics.map((m) => m.step)).toEqual([1, 2]);
    expect(metrics.every((m) => Number.isFinite(m.loss))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'))).toMatchObject({ peft_type: 'LORA', r: 2, lora_dropout: 0.1 });
    const checkpoints = readdirSync(out).filter((n) => n.startsWith('checkpoint-'));
    for (const c of checkpoints) {
      const state = JSON.parse(readFileSync(join(out, c, 'trainer_state.json'), 'utf8')) as { rng: { dropout_span: number }; settings: { lora_dropout: number } };
      expect(state.settings.lora_dropout).toBe(0.1);
      expect(state.rng.dropout_span).toBeGreaterThan(0);
    }
  });
});
