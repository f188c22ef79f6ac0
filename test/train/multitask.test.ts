// Multi-task SFT on the fixture model (tiny-llama, LoRA): the segmented per-task NLL sum against a CPU sum; a
// step's loss, per-task losses and gradients against single-task runs on each task's examples combined on the
// CPU (gradient of Σ w_t·L_t = Σ w_t·∇L_t); accumulation equal to one batch; the logged DWA and uncertainty
// weights equal a CPU TaskWeighter fed the logged task losses; a step still reads back once and submits once;
// evaluation per task; resume equals straight; bad task settings are clear errors.
import { describe, expect, it } from 'vitest';
import type { ContextStats } from '../../src/engine/context';
import { segmentSumInto } from '../../src/train/loss';
import { MemoryCheckpointStore, latestCheckpoint } from '../../src/train/checkpoint-store';
import { decodeCheckpoint } from '../../src/train/checkpoint';
import type { StepRecord } from '../../src/train/metrics';
import { SettingsError } from '../../src/train/settings';
import { TaskWeighter } from '../../src/train/task-weights';
import { TrainControl, Trainer, type TrainExample } from '../../src/train/trainer';
import { expectRel, fixtureModel, initAdapter, settings, shortExamples } from './helpers';

/** shortExamples with tasks: a, b, a, b, ... unless `pattern` says otherwise. */
async function tasked(n: number, pattern: (i: number) => string = (i) => (i % 2 === 0 ? 'a' : 'b')): Promise<TrainExample[]> {
  const { lm } = await fixtureModel();
  return shortExamples(lm, n).map((e, i) => ({ ...e, task: pattern(i) }));
}

async function trainRun(train: TrainExample[], over: Record<string, unknown>, extra: { val?: TrainExample[]; store?: MemoryCheckpointStore; stopAfter?: number; resume?: boolean } = {}) {
  const { lm } = await fixtureModel();
  const resume = extra.resume && extra.store ? decodeCheckpoint(await extra.store.read((await latestCheckpoint(extra.store))!), 'latest') : undefined;
  const trainer = Trainer.create({
    model: lm.model,
    settings: settings(over),
    train,
    ...(extra.val ? { val: extra.val } : {}),
    padTokenId: 0,
    startingAdapter: await initAdapter(lm),
    ...(extra.store ? { store: extra.store } : {}),
    ...(resume ? { resume } : {}),
  });
  const control = new TrainControl();
  try {
    const result = await trainer.run({ control, onStep: (r) => (r.step === extra.stopAfter ? control.stop() : undefined) });
    return { result, grads: await trainer.gradients(), weights: await trainer.trainableWeights() };
  } finally {
    trainer.dispose();
  }
}

const field = (r: StepRecord, name: string) => (r as unknown as Record<string, number>)[name];

describe('segmentSumInto', () => {
  it('adds each segment\'s sum into its slot (odd sizes, ids −1 and beyond the count ignored), against a CPU sum', async () => {
    const { ctx } = await fixtureModel();
    const n = 1237;
    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * (i % 97 === 0 ? 100 : 1));
    const seg = Int32Array.from({ length: n }, (_, i) => ((i * 7919) % 6) - 1); // −1..4; 4 is outside 4 segments
    const acc = ctx.upload([7], Float32Array.from([1, 2, 3, 4, 5, 6, 7]), 'f32');
    const xt = ctx.upload([n], x, 'f32');
    const st = ctx.upload([n], seg, 'i32');
    segmentSumInto(ctx, acc, 2, xt, st, 4);
    const got = await ctx.readF32(acc);
    const want = [1, 2, 3, 4, 5, 6, 7];
    for (let i = 0; i < n; i++) if (seg[i]! >= 0 && seg[i]! < 4) want[2 + seg[i]!]! += x[i]!;
    for (let k = 0; k < 7; k++) expect(Math.abs(got[k]! - want[k]!), `slot ${k}`).toBeLessThan(1e-4 * (1 + Math.abs(want[k]!)));
    for (const t of [acc, xt, st]) t.release();
    expect(() => segmentSumInto(ctx, acc, 5, xt, st, 4)).toThrow(/outside acc/);
  });
});

describe('the multi-task loss and its gradient', () => {
  it('static weights: loss = Σ w_t·L_t, task_loss/t = the task alone, gradient = Σ w_t·∇L_t (one step, one batch)', async () => {
    const train = await tasked(6, (i) => (i < 4 ? 'a' : 'b')); // 4 of a, 2 of b: different token counts
    const one = { per_device_train_batch_size: 6, max_steps: 1 };
    const multi = await trainRun(train, { ...one, task_weights: 'a:2,b:0.5' });
    const alone = async (task: string) => {
      const ex = train.filter((e) => e.task === task).map(({ inputIds, labels }) => ({ inputIds, labels }));
      return trainRun(ex, one);
    };
    const a = await alone('a');
    const b = await alone('b');
    const r = multi.result.metrics[0]!;
    const La = a.result.metrics[0]!.loss;
    const Lb = b.result.metrics[0]!.loss;
    expectRel('task_loss/a', field(r, 'task_loss/a')!, La, 1e-5);
    expectRel('task_loss/b', field(r, 'task_loss/b')!, Lb, 1e-5);
    expect([field(r, 'task_weight/a'), field(r, 'task_weight/b')]).toEqual([2, 0.5]);
    expectRel('loss', r.loss, 2 * La + 0.5 * Lb, 1e-5);
    expect(r.tokens).toBe(a.result.metrics[0]!.tokens + b.result.metrics[0]!.tokens);
    let scale = 0;
    let worst = 0;
    for (const [name, g] of multi.grads) {
      const ga = a.grads.get(name)!;
      const gb = b.grads.get(name)!;
      for (let i = 0; i < g.length; i++) {
        const want = 2 * ga[i]! + 0.5 * gb[i]!;
        scale = Math.max(scale, Math.abs(want));
        worst = Math.max(worst, Math.abs(g[i]! - want));
      }
    }
    expect(scale).toBeGreaterThan(1e-3);
    expect(worst / scale).toBeLessThan(2e-5);
    console.log(`multi-task gradient vs 2·∇L_a + 0.5·∇L_b: max |diff| / max |g| = ${(worst / scale).toExponential(2)}; task_loss/a rel. error ${(Math.abs(field(r, 'task_loss/a')! - La) / La).toExponential(2)}`);
    // Not the single-task mean: plain SFT on the same examples weighs tokens, not tasks.
    const plain = await trainRun(train.map(({ inputIds, labels }) => ({ inputIds, labels })), one);
    expect(Math.abs(plain.result.metrics[0]!.loss - r.loss)).toBeGreaterThan(0.1);
  });

  it('gradient accumulation: 2 micro-batches of 2 equal one batch of 4 (n_t over the whole step)', async () => {
    const train = await tasked(8, (i) => (i % 3 === 0 ? 'a' : 'b'));
    const over = { max_steps: 2, task_weights: 'a:1.5', max_grad_norm: 1 };
    const one = await trainRun(train, { ...over, per_device_train_batch_size: 4 });
    const two = await trainRun(train, { ...over, per_device_train_batch_size: 2, gradient_accumulation_steps: 2 });
    one.result.metrics.forEach((m, i) => {
      const o = two.result.metrics[i]!;
      for (const k of ['loss', 'task_loss/a', 'task_loss/b']) expectRel(`${k} ${i + 1}`, field(o, k)!, field(m, k)!, 2e-6);
    });
    for (const [name, w] of one.weights) {
      const o = two.weights.get(name)!;
      let d = 0;
      for (let i = 0; i < w.length; i++) d = Math.max(d, Math.abs(w[i]! - o[i]!));
      expect(d, name).toBeLessThan(2e-6);
    }
  });
});

describe('dynamic weights in a run', () => {
  for (const weighting of ['dwa', 'uncertainty'] as const) {
    it(`${weighting}: every step logs task_loss/* and task_weight/*, and the weights are a CPU TaskWeighter's fed the logged losses`, async () => {
      const train = await tasked(6);
      const over = { task_weighting: weighting, per_device_train_batch_size: 2, max_steps: 6, learning_rate: 0.05, ...(weighting === 'dwa' ? { dwa_window: 1, dwa_temperature: 2 } : {}) };
      const { result } = await trainRun(train, over);
      const s = settings(over);
      const cpu = new TaskWeighter({ tasks: ['a', 'b'], weighting, dwaTemperature: 2, dwaWindow: 1, adam: { beta1: s.adam_beta1, beta2: s.adam_beta2, eps: s.adam_epsilon } });
      for (const r of result.metrics) {
        const w = cpu.weights();
        expect(field(r, 'task_weight/a'), `step ${r.step}`).toBeCloseTo(w[0]!, 12);
        expect(field(r, 'task_weight/b'), `step ${r.step}`).toBeCloseTo(w[1]!, 12);
        expect(field(r, 'task_loss/a')).toBeGreaterThan(0);
        expect(field(r, 'task_loss/b')).toBeGreaterThan(0);
        expectRel('loss', r.loss, w[0]! * field(r, 'task_loss/a')! + w[1]! * field(r, 'task_loss/b')!, 1e-6);
        cpu.observe([field(r, 'task_loss/a'), field(r, 'task_loss/b')], r.learning_rate);
      }
      // The weights moved away from 1 after the first steps.
      expect(Math.abs(field(result.metrics[5]!, 'task_weight/a')! - 1)).toBeGreaterThan(1e-3);
    });
  }

  it('a multi-task step stays one submit and one readback, and creates no GPU buffer after warm-up', async () => {
    const { ctx, lm } = await fixtureModel();
    const train = await tasked(4);
    const trainer = Trainer.create({ model: lm.model, settings: settings({ task_weighting: 'uncertainty', per_device_train_batch_size: 4, max_steps: 5 }), train, padTokenId: 0, startingAdapter: await initAdapter(lm) });
    const snaps: ContextStats[] = [];
    try {
      await trainer.run({ onStep: () => void snaps.push({ ...ctx.stats }) });
    } finally {
      trainer.dispose();
    }
    const delta = (k: keyof ContextStats, i: number) => snaps[i]![k] - snaps[i - 1]![k];
    for (const i of [3, 4]) {
      expect(delta('readbacks', i), `readbacks in step ${i + 1}`).toBe(1);
      expect(delta('submits', i), `submits in step ${i + 1}`).toBe(1);
      expect(delta('buffersCreated', i), `buffers created in step ${i + 1}`).toBe(0);
      expect(delta('bytesAllocated', i), `bytes allocated in step ${i + 1}`).toBe(0);
    }
  });

  it('evaluation reports eval_task_loss/<task> beside eval_loss', async () => {
    const train = await tasked(4);
    const val = await tasked(3, (i) => (i === 0 ? 'a' : 'b'));
    const { result } = await trainRun(train, { per_device_train_batch_size: 2, max_steps: 1, eval_strategy: 'steps', eval_steps: 1, per_device_eval_batch_size: 2 }, { val });
    const e = result.evalMetrics[0] as unknown as Record<string, number>;
    const alone = async (task: string) => (await trainRun(train, { per_device_train_batch_size: 2, max_steps: 1, eval_strategy: 'steps', eval_steps: 1 }, { val: val.filter((v) => v.task === task) })).result.evalMetrics[0]!.eval_loss;
    expectRel('eval_task_loss/a', e['eval_task_loss/a']!, await alone('a'), 1e-5);
    expectRel('eval_task_loss/b', e['eval_task_loss/b']!, await alone('b'), 1e-5);
  });
});

describe('multi-task checkpoints', () => {
  for (const [weighting, extra] of [['dwa', { dwa_window: 2 }], ['uncertainty', { task_sampling: 'balanced' }]] as const) {
    it(`${weighting}: 6 steps straight equal 3 + stop + resume 3 (weights state, losses, adapter)`, async () => {
      const train = await tasked(5, (i) => (i === 0 ? 'b' : 'a'));
      const over = { task_weighting: weighting, ...extra, per_device_train_batch_size: 1, gradient_accumulation_steps: 2, max_steps: 6, disable_shuffling: false, seed: 3, learning_rate: 0.05, save_strategy: 'steps', save_steps: 3 };
      const straight = await trainRun(train, over);
      const store = new MemoryCheckpointStore();
      const first = await trainRun(train, over, { store, stopAfter: 3 });
      expect(first.result.status).toBe('stopped');
      const state = decodeCheckpoint(await store.read(3), 'checkpoint-3').state;
      expect((state.objective as { tasks: { weighting: string } }).tasks.weighting).toBe(weighting);
      const resumed = await trainRun(train, over, { store, resume: true });
      expect(resumed.result.metrics).toHaveLength(6);
      resumed.result.metrics.forEach((m, i) => {
        const { elapsed_s: _e, tokens_per_second: _t, ...rest } = m;
        const { elapsed_s: _e2, tokens_per_second: _t2, ...want } = straight.result.metrics[i]!;
        expect(rest, `step ${i + 1}`).toEqual(want);
      });
      for (const [name, w] of straight.weights) expect(resumed.weights.get(name), name).toEqual(w);
    });
  }
});

describe('resuming checks the tasks', () => {
  it('refuses a checkpoint of another weighting, of a single-task run, and a multi-task checkpoint for a single-task job', async () => {
    const { lm } = await fixtureModel();
    const train = await tasked(4);
    const plain = train.map(({ inputIds, labels }) => ({ inputIds, labels }));
    const checkpoint = async (ex: TrainExample[], over: Record<string, unknown>) => {
      const store = new MemoryCheckpointStore();
      await trainRun(ex, { ...over, max_steps: 1, per_device_train_batch_size: 4, save_strategy: 'steps', save_steps: 1 }, { store });
      return decodeCheckpoint(await store.read(1), 'checkpoint-1');
    };
    const attempt = async (ex: TrainExample[], over: Record<string, unknown>, resume: Awaited<ReturnType<typeof checkpoint>>) => {
      try {
        Trainer.create({ model: lm.model, settings: settings({ ...over, max_steps: 2, per_device_train_batch_size: 4 }), train: ex, padTokenId: 0, startingAdapter: await initAdapter(lm), resume }).dispose();
      } catch (e) {
        expect(e).toBeInstanceOf(SettingsError);
        return (e as Error).message;
      }
      return 'accepted';
    };
    const dwa = await checkpoint(train, { task_weighting: 'dwa' });
    expect(await attempt(train, { task_weighting: 'uncertainty' }, dwa)).toMatch(/resume_from_checkpoint: the checkpoint weighs tasks with task_weighting "dwa", this job with "uncertainty"/);
    expect(await attempt(train, { task_weighting: 'dwa' }, dwa)).toBe('accepted');
    expect(await attempt(plain, {}, dwa)).toMatch(/the checkpoint's run trained the tasks a, b, but this job's records have no "task"/);
    expect(await attempt(train, {}, await checkpoint(plain, {}))).toMatch(/the checkpoint's run was not a multi-task run/);
  });
});

describe('bad multi-task jobs are clear errors', () => {
  const attempt = async (train: TrainExample[], over: Record<string, unknown>) => {
    const { lm } = await fixtureModel();
    try {
      Trainer.create({ model: lm.model, settings: settings(over), train, padTokenId: 0, startingAdapter: await initAdapter(lm) }).dispose();
    } catch (e) {
      expect(e).toBeInstanceOf(SettingsError);
      return (e as Error).message;
    }
    return 'accepted';
  };
  it('unknown task in task_weights, dwa with one task, tasks on some records only, task settings without tasks', async () => {
    const two = await tasked(4);
    const one = await tasked(4, () => 'qa');
    const { lm } = await fixtureModel();
    expect(await attempt(two, { task_weights: 'a:1,summarise:2' })).toMatch(/task_weights: names "summarise", which no training record has; the tasks are "a", "b"/);
    expect(await attempt(one, { task_weighting: 'dwa' })).toMatch(/task_weighting: "dwa" balances several tasks, but the training records have one task \("qa"\)/);
    expect(await attempt([...two, ...shortExamples(lm, 1)], {})).toMatch(/4 of the training examples name a task but example 4 does not/);
    expect(await attempt(shortExamples(lm, 2), { task_weighting: 'uncertainty' })).toMatch(/task_weighting: is a multi-task setting, but no record of the dataset has a "task" field/);
    expect(await attempt(one, {})).toBe('accepted');
  });
});
