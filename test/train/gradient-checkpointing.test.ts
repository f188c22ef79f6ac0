// gradient_checkpointing in training (the job setting over ForwardOptions.checkpoint, src/model/transformer.ts):
// a 3-step run with it equals the run without bit for bit — losses, gradient norms and final trainable weights —
// for LoRA SFT (2 micro-batches per step) and DPO; the forwards that a backward follows get `checkpoint: true`
// and no other forward does (SFT/DPO evaluation, DPO's reference log-probs, RM's evaluation: a spy on the model's
// forward); the step's peak of GPU bytes in use is lower with it; `graft train --gradient_checkpointing` runs.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ForwardOptions } from '../../src/model/transformer';
import { Trainer, type TrainExample, type TrainPair } from '../../src/train/trainer';
import { lines } from '../cli/run';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { ALPACA, FIXTURE, fixtureModel, initAdapter, settings, shortExamples } from './helpers';

// `graft train` runs in this process on the file's one GPU device (test/helpers/graft-in-process.ts).

const scratch = mkdtempSync(join(tmpdir(), 'graft-gc-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A run on the fixture model from init_adapter, with every forward's options recorded. */
async function trainRun(train: TrainExample[] | TrainPair[], over: Record<string, unknown>, val?: TrainExample[] | TrainPair[]) {
  const { lm } = await fixtureModel();
  const model = lm.model;
  const calls: ForwardOptions[] = [];
  const forward = model.forward.bind(model);
  model.forward = ((batch, opts = {}) => {
    calls.push({ ...opts });
    return forward(batch, opts);
  }) as typeof model.forward;
  const trainer = Trainer.create({ model, settings: settings(over), train, ...(val ? { val } : {}), padTokenId: 0, startingAdapter: await initAdapter(lm) });
  try {
    await trainer.prepare();
    model.ctx.resetPeaks();
    const result = await trainer.run();
    expect(result.status).toBe('completed');
    return {
      losses: result.metrics.map((m) => m.loss),
      norms: result.metrics.map((m) => m.grad_norm),
      evalLosses: result.evalMetrics.map((m) => m.eval_loss),
      weights: await trainer.trainableWeights(),
      peak: model.ctx.stats.peakBytesInUse,
      calls,
    };
  } finally {
    trainer.dispose();
    model.forward = forward;
  }
}

type Run = Awaited<ReturnType<typeof trainRun>>;

function expectSameRun(gc: Run, plain: Run): void {
  expect(gc.losses).toHaveLength(3);
  expect(gc.losses.every(Number.isFinite)).toBe(true);
  expect(gc.losses).toEqual(plain.losses);
  expect(gc.norms).toEqual(plain.norms);
  expect(gc.evalLosses).toEqual(plain.evalLosses);
  expect([...gc.weights.keys()].sort()).toEqual([...plain.weights.keys()].sort());
  for (const [name, w] of plain.weights) expect(gc.weights.get(name), name).toEqual(w);
  // the run trained: the weights moved from init_adapter's, so equal weights are not equal by standing still
  expect(gc.losses[2]!).not.toBe(gc.losses[0]!);
}

/** Training forwards (kept for a backward) get checkpoint exactly when the job asks; the others never. */
function expectCheckpointed(run: Run, on: boolean, trainingForwards: number, otherForwards: number): void {
  const training = run.calls.filter((o) => o.saveForBackward !== false);
  const other = run.calls.filter((o) => o.saveForBackward === false);
  expect(training).toHaveLength(trainingForwards);
  expect(other).toHaveLength(otherForwards);
  for (const o of training) expect(o.checkpoint === true).toBe(on);
  for (const o of other) expect(o.checkpoint).toBeUndefined();
}

describe('gradient_checkpointing in the trainer', () => {
  it('LoRA SFT, 3 steps of 2 micro-batches (and evaluation): the same losses, norms and weights bit for bit, a lower peak', async () => {
    const { lm } = await fixtureModel();
    const ex = shortExamples(lm, 6);
    const job = { max_steps: 3, per_device_train_batch_size: 1, gradient_accumulation_steps: 2, learning_rate: 1e-2, eval_strategy: 'steps', eval_steps: 3, per_device_eval_batch_size: 2 };
    const plain = await trainRun(ex.slice(0, 6), job, ex.slice(0, 2));
    const gc = await trainRun(ex.slice(0, 6), { ...job, gradient_checkpointing: true }, ex.slice(0, 2));
    expectSameRun(gc, plain);
    expect(gc.evalLosses).toHaveLength(1);
    // 3 steps × 2 micro-batches of training forwards; 1 evaluation of 1 batch of 2
    expectCheckpointed(plain, false, 6, 1);
    expectCheckpointed(gc, true, 6, 1);
    // Keeping each layer's input instead of its activations lowers the step's peak of bytes in use.
    expect(gc.peak).toBeLessThan(plain.peak);
  });

  it('DPO (LoRA), 3 steps: the same losses, norms and weights bit for bit; reference forwards are not checkpointed', async () => {
    const { lm } = await fixtureModel();
    const ex = shortExamples(lm, 4);
    const pairs: TrainPair[] = [
      { chosen: ex[0]!, rejected: ex[1]! },
      { chosen: ex[2]!, rejected: ex[3]! },
    ];
    const job = { stage: 'dpo', max_steps: 3, per_device_train_batch_size: 2, learning_rate: 1e-2 };
    const plain = await trainRun(pairs, job);
    const gc = await trainRun(pairs, { ...job, gradient_checkpointing: true });
    expectSameRun(gc, plain);
    // 3 policy forwards (one per step, chosen and rejected rows together); 1 batch of reference log-probs
    expectCheckpointed(plain, false, 3, 1);
    expectCheckpointed(gc, true, 3, 1);
    expect(gc.peak).toBeLessThan(plain.peak);
  });

  it('RM: the training forwards get checkpoint, evaluation forwards do not; the same losses bit for bit', async () => {
    const { lm } = await fixtureModel();
    const ex = shortExamples(lm, 4);
    const pairs: TrainPair[] = [
      { chosen: ex[0]!, rejected: ex[1]! },
      { chosen: ex[2]!, rejected: ex[3]! },
    ];
    const job = { stage: 'rm', max_steps: 2, per_device_train_batch_size: 2, learning_rate: 1e-2, eval_strategy: 'steps', eval_steps: 2 };
    const plain = await trainRun(pairs, job, pairs);
    const gc = await trainRun(pairs, { ...job, gradient_checkpointing: true }, pairs);
    expect(gc.losses).toEqual(plain.losses);
    expect(gc.evalLosses).toEqual(plain.evalLosses);
    for (const [name, w] of plain.weights) expect(gc.weights.get(name), name).toEqual(w);
    expectCheckpointed(gc, true, 2, 1);
    expectCheckpointed(plain, false, 2, 1);
  });
});

describe('graft train --gradient_checkpointing', () => {
  it('a bare flag turns it on; the run trains and the LLaMA-Factory train.yaml says gradient_checkpointing: true', async () => {
    const run = async (name: string, flags: string[]) => {
      const out = join(scratch, name);
      const r = await graft(['train', '--model', FIXTURE, '--dataset', ALPACA, '--cutoff_len', '64', '--per_device_train_batch_size', '2', '--learning_rate', '1e-2', '--lora_rank', '2', ...flags, '--max_steps', '2', '--output_dir', out]);
      expect(r.code, r.graftStderr).toBe(0);
      const losses = lines(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).map((l) => (JSON.parse(l) as { loss?: number }).loss).filter((l) => l !== undefined);
      return { losses, yaml: readFileSync(join(out, 'train.yaml'), 'utf8') };
    };
    const gc = await run('gc', ['--gradient_checkpointing']);
    const plain = await run('plain', ['--gradient_checkpointing', 'false']);
    expect(gc.losses).toHaveLength(2);
    expect(gc.losses).toEqual(plain.losses);
    expect(gc.yaml).toMatch(/^gradient_checkpointing: true$/m);
    expect(plain.yaml).toMatch(/^disable_gradient_checkpointing: true {2}# /m); // LLaMA-Factory's default is on
    expect(plain.yaml).not.toMatch(/^gradient_checkpointing/m);
  });
});
