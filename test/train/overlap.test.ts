// Overlapped steps: step n + 1 is recorded and submitted before step n's statistics come back, its update gated
// on the GPU. A run with overlap gives the same bits as the same run without it: losses and every other field of
// the step records, the adapter, AdamW's moments and step count, through a skipped (NaN) step, and a stop in the
// middle of an overlapped stretch keeps the checkpoint of exactly that step.
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../../src/train/checkpoint';
import { MemoryCheckpointStore } from '../../src/train/checkpoint-store';
import type { StepRecord } from '../../src/train/metrics';
import { TrainControl, Trainer } from '../../src/train/trainer';
import { fixtureModel, initAdapter, RESUME_JOB, settings, shortExamples } from './helpers';

const JOB = { ...RESUME_JOB, save_strategy: 'no', max_steps: 6 } as const;

async function run(overlap: boolean, opts: { stopAfter?: number; store?: MemoryCheckpointStore; poison?: number; over?: Record<string, unknown> } = {}) {
  const { lm, ctx } = await fixtureModel();
  const events: string[] = [];
  const trainer = Trainer.create({
    model: lm.model,
    settings: settings({ ...JOB, ...(opts.store ? { save_strategy: 'steps', save_steps: 100 } : {}), ...opts.over }),
    train: shortExamples(lm, 8),
    padTokenId: 0,
    startingAdapter: await initAdapter(lm),
    overlap,
    ...(opts.store ? { store: opts.store } : {}),
    hooks: {
      beforeBackward: ({ step, micro, dLogits }) => {
        if (micro === 0) events.push(`record ${step}`);
        if (step === opts.poison && micro === 1) ctx.write(dLogits[0]!, new Float32Array([Number.NaN]), 3);
      },
    },
  });
  const control = new TrainControl();
  try {
    const result = await trainer.run({
      control,
      onStep: (r) => {
        events.push(`step ${r.step}`);
        if (r.step === opts.stopAfter) control.stop();
      },
    });
    const data = await trainer.checkpointData();
    return { result, events, weights: data.weights, optimizer: data.optimizer, optimizerSteps: trainer.optimizerSteps };
  } finally {
    trainer.dispose();
  }
}

const untimed = (m: StepRecord) => {
  const { elapsed_s: _e, tokens_per_second: _t, ...rest } = m;
  return rest;
};

function expectSameRun(a: Awaited<ReturnType<typeof run>>, b: Awaited<ReturnType<typeof run>>): void {
  expect(a.result.metrics.map(untimed)).toEqual(b.result.metrics.map(untimed));
  expect(a.optimizerSteps).toBe(b.optimizerSteps);
  expect(a.optimizer.step).toBe(b.optimizer.step);
  expect([...a.weights.keys()]).toEqual([...b.weights.keys()]);
  for (const [name, w] of a.weights) expect(b.weights.get(name), name).toEqual(w);
  for (const [name, o] of a.optimizer.params) {
    expect(b.optimizer.params.get(name)!.expAvg, name).toEqual(o.expAvg);
    expect(b.optimizer.params.get(name)!.expAvgSq, name).toEqual(o.expAvgSq);
  }
}

describe('overlapped steps', () => {
  it('give the same losses, adapter and moments as the run without overlap, through a skipped step', async () => {
    const plain = await run(false, { poison: 3 });
    const overlapped = await run(true, { poison: 3 });
    expect(plain.result.metrics[2]!.skipped).toBe(true);
    expect(plain.result.skippedSteps).toBe(1);
    expect(plain.optimizerSteps).toBe(5);
    expectSameRun(plain, overlapped);
    // Without overlap each step is recorded after the one before was reported; with it, step n + 1 is recorded
    // before step n is reported (the last step is never recorded ahead of a run's end).
    expect(plain.events.slice(0, 4)).toEqual(['record 1', 'step 1', 'record 2', 'step 2']);
    expect(overlapped.events.slice(0, 5)).toEqual(['record 1', 'record 2', 'step 1', 'record 3', 'step 2']);
    expect(overlapped.events.slice(-2)).toEqual(['step 5', 'step 6']);
  });

  it('a step whose weights check fails while the next is in flight stops as without overlap', async () => {
    // lr 1e38: the first update makes the weights infinite; step 2's readback finds them, step 3 was recorded ahead.
    const over = { learning_rate: 1e38, max_grad_norm: 0, lr_scheduler_type: 'constant', warmup_steps: 0 };
    const fail = async (overlap: boolean) => {
      const e = await run(overlap, { over }).then(
        () => undefined,
        (err: unknown) => err as Error,
      );
      expect(e?.message).toMatch(/^Training stopped before step 2: the update of step 1/);
      return e!.message;
    };
    expect(await fail(true)).toBe(await fail(false));
  });

  it('a stop while the next step is in flight keeps the checkpoint of exactly the step it stopped after', async () => {
    const plainStore = new MemoryCheckpointStore();
    const store = new MemoryCheckpointStore();
    const plain = await run(false, { stopAfter: 3, store: plainStore });
    const overlapped = await run(true, { stopAfter: 3, store });
    expect(overlapped.result.status).toBe('stopped');
    expect(overlapped.events).toContain('record 4'); // step 4 was in flight when step 3 was reported
    expect(await store.list()).toEqual([3]);
    expectSameRun(plain, overlapped);
    const a = decodeCheckpoint(await plainStore.read(3), 'plain');
    const b = decodeCheckpoint(await store.read(3), 'overlapped');
    for (const [name, w] of a.weights) expect(b.weights.get(name), name).toEqual(w);
    expect(b.state.global_step).toBe(3);
    expect(b.optimizer.step).toBe(a.optimizer.step);
  });
});
