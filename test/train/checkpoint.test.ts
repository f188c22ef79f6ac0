// Checkpoints: a run stopped at step k and resumed equals the uninterrupted run (losses exactly, weights and
// moments bit for bit); a checkpoint interrupted mid-write is absent, not half-present, and resuming takes the
// previous one; the IndexedDB store keeps the same promises; a checkpoint of another run is refused.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint, TRAINER_STATE_FILE } from '../../src/train/checkpoint';
import { latestCheckpoint, MemoryCheckpointStore, type CheckpointStore } from '../../src/train/checkpoint-store';
import { IdbCheckpointStore } from '../../src/train/checkpoint-store-idb';
import { NodeCheckpointStore } from '../../src/train/checkpoint-store-node';
import { SettingsError } from '../../src/train/settings';
import { TrainControl, Trainer, type TrainExample } from '../../src/train/trainer';
import { fixtureModel, initAdapter, restoreBase, RESUME_JOB, settings, shortExamples } from './helpers';

const scratch = mkdtempSync(join(tmpdir(), 'graft-ckpt-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A job that exercises every piece of state (test/train/helpers.ts), with weight decay. */
const job = (over: Record<string, unknown> = {}) => settings({ ...RESUME_JOB, weight_decay: 0.05, ...over });

interface Run {
  losses: number[];
  weights: Map<string, Float32Array>;
  moments: Map<string, { expAvg: Float32Array; expAvgSq: Float32Array }>;
  optimizerStep: number;
}

async function train(
  train: TrainExample[],
  opts: { over?: Record<string, unknown>; store?: CheckpointStore; stopAfter?: number; resumeFrom?: CheckpointStore; full?: boolean },
): Promise<Run & { status: string }> {
  const { lm } = await fixtureModel();
  if (opts.full) await restoreBase(lm);
  const resume = opts.resumeFrom ? decodeCheckpoint(await opts.resumeFrom.read((await latestCheckpoint(opts.resumeFrom))!), 'latest') : undefined;
  const trainer = Trainer.create({
    model: lm.model,
    settings: job({ ...(opts.full ? { finetuning_type: 'full' } : {}), ...opts.over }),
    train,
    padTokenId: 0,
    ...(opts.full ? {} : { startingAdapter: await initAdapter(lm) }),
    ...(opts.store ? { store: opts.store } : {}),
    ...(resume ? { resume } : {}),
  });
  const control = new TrainControl();
  try {
    const result = await trainer.run({ control, onStep: (r) => (r.step === opts.stopAfter ? control.stop() : undefined) });
    const data = await trainer.checkpointData();
    return {
      status: result.status,
      losses: result.metrics.map((m) => m.loss),
      weights: data.weights,
      moments: data.optimizer.params,
      optimizerStep: data.optimizer.step,
    };
  } finally {
    trainer.dispose();
  }
}

function expectIdentical(a: Run, b: Run): void {
  expect(a.losses).toEqual(b.losses);
  expect(a.optimizerStep).toBe(b.optimizerStep);
  for (const [name, w] of b.weights) expect(a.weights.get(name), name).toEqual(w);
  for (const [name, m] of b.moments) {
    expect(a.moments.get(name)!.expAvg, name).toEqual(m.expAvg);
    expect(a.moments.get(name)!.expAvgSq, name).toEqual(m.expAvgSq);
  }
}

describe('resume after a stop equals the uninterrupted run', () => {
  it('LoRA: 6 steps straight vs 3 + stop + resume 3 (Node folder store)', async () => {
    const { lm } = await fixtureModel();
    const examples = shortExamples(lm, 4); // 2 optimizer steps per epoch: the stop falls mid-epoch 2
    const straight = await train(examples, {});
    const dir = join(scratch, 'lora');
    const store = new NodeCheckpointStore(dir);
    const first = await train(examples, { store, stopAfter: 3 });
    expect(first.status).toBe('stopped');
    expect(first.losses).toEqual(straight.losses.slice(0, 3));
    expect(await store.list()).toEqual([2, 3]); // save_steps 2, and the stop
    expect(readdirSync(join(dir, 'checkpoint-3')).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'trainable.safetensors', TRAINER_STATE_FILE]);
    const resumed = await train(examples, { store, resumeFrom: store });
    expect(resumed.status).toBe('completed');
    expectIdentical(resumed, straight);
    expect(await store.list()).toEqual([2, 3, 4, 6]);
  });

  it('full fine-tuning: 4 straight vs 2 + stop + resume (memory store), with base weights restored in between', async () => {
    const { lm } = await fixtureModel();
    const examples = shortExamples(lm, 3);
    const over = { max_steps: 4 };
    const straight = await train(examples, { full: true, over });
    const store = new MemoryCheckpointStore();
    await train(examples, { full: true, over, store, stopAfter: 2 });
    const resumed = await train(examples, { full: true, over, store, resumeFrom: store });
    expectIdentical(resumed, straight);
    await restoreBase(lm);
  });
});

describe('a checkpoint is complete or absent', () => {
  it('a crash while writing checkpoint-4 leaves no checkpoint-4; resuming takes checkpoint-2 and still equals the straight run', async () => {
    const { lm } = await fixtureModel();
    const examples = shortExamples(lm, 4);
    const straight = await train(examples, {});
    const dir = join(scratch, 'crash');
    const crashing = new NodeCheckpointStore(dir, (step, file) => {
      if (step === 4 && file !== TRAINER_STATE_FILE) throw new Error('simulated crash between files');
    });
    await expect(train(examples, { store: crashing })).rejects.toThrow(/simulated crash/);
    const store = new NodeCheckpointStore(dir);
    expect(await store.list()).toEqual([2]);
    expect(existsSync(join(dir, 'checkpoint-4'))).toBe(false);
    expect(existsSync(join(dir, 'checkpoint-4.tmp'))).toBe(true); // the debris is ignored, and replaced by the next write
    const resumed = await train(examples, { store, resumeFrom: store });
    expectIdentical(resumed, straight);
    expect(existsSync(join(dir, 'checkpoint-4.tmp'))).toBe(false);
  });

  it('IndexedDB: one transaction per checkpoint — an interrupted write leaves nothing; chunked files read back whole', async () => {
    const indexedDB = new IDBFactory();
    let crash = false;
    const store = new IdbCheckpointStore({ run: 'run-a', indexedDB, chunkBytes: 1000, afterFile: (_s, file) => {
      if (crash && file === 'optimizer.safetensors') throw new Error('tab closed');
    } });
    const files = new Map([
      ['a.bin', Uint8Array.from({ length: 2500 }, (_, i) => i % 251)],
      ['optimizer.safetensors', new Uint8Array(10).fill(7)],
      ['empty', new Uint8Array(0)],
    ]);
    await store.write(3, files);
    expect(await store.list()).toEqual([3]);
    expect(await store.read(3)).toEqual(files);
    crash = true;
    await expect(store.write(5, files)).rejects.toThrow(/tab closed/);
    expect(await store.list()).toEqual([3]);
    // Replacing a checkpoint that exists: the failed rewrite keeps the old one whole.
    await expect(store.write(3, new Map([['a.bin', new Uint8Array(5)], ['optimizer.safetensors', new Uint8Array(1)]]))).rejects.toThrow(/tab closed/);
    expect(await store.read(3)).toEqual(files);
    // Another run in the same database is separate.
    const other = new IdbCheckpointStore({ run: 'run-b', indexedDB });
    expect(await other.list()).toEqual([]);
    await expect(other.read(3)).rejects.toThrow(/no complete checkpoint-3/);
    await store.delete(3);
    expect(await store.list()).toEqual([]);
    await store.close();
    await other.close();
  });

  it('a LoRA run resumes from IndexedDB too, and save_total_limit keeps the newest', async () => {
    const { lm } = await fixtureModel();
    const examples = shortExamples(lm, 4);
    const over = { max_steps: 4, save_steps: 1, save_total_limit: 2 };
    const straight = await train(examples, { over });
    const store = new IdbCheckpointStore({ run: 'resume', indexedDB: new IDBFactory() });
    await train(examples, { over, store, stopAfter: 3 });
    expect(await store.list()).toEqual([2, 3]);
    const resumed = await train(examples, { over, store, resumeFrom: store });
    expectIdentical(resumed, straight);
    expect(await store.list()).toEqual([3, 4]);
  });
});

describe('resuming checks that the checkpoint is this run', () => {
  it('refuses a changed batch size, dataset or method, naming the setting', async () => {
    const { lm } = await fixtureModel();
    const examples = shortExamples(lm, 4);
    const store = new MemoryCheckpointStore();
    await train(examples, { over: { max_steps: 1, save_steps: 1 }, store });
    const data = decodeCheckpoint(await store.read(1), 'checkpoint-1');
    const attempt = async (over: Record<string, unknown>, ex = examples) => {
      try {
        Trainer.create({ model: lm.model, settings: job({ max_steps: 1, ...over }), train: ex, padTokenId: 0, startingAdapter: await initAdapter(lm), resume: data }).dispose();
      } catch (e) {
        expect(e).toBeInstanceOf(SettingsError);
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(await attempt({ per_device_train_batch_size: 2 })).toMatch(/resume_from_checkpoint.*per_device_train_batch_size 1.*2/);
    expect(await attempt({}, examples.slice(0, 3))).toMatch(/trained on 4 sequences, this job has 3/);
    expect(await attempt({ seed: 8 })).toMatch(/seed/);
    expect(await attempt({ max_steps: 3 })).toBe('accepted'); // more steps: allowed
    expect(lm.model.adapter).toBeNull();
  });

  it('refuses other answers of the same count and another learning rate, listing every difference; resume_allow_changes resumes and records them', async () => {
    const { lm } = await fixtureModel();
    const examples = shortExamples(lm, 4);
    const store = new MemoryCheckpointStore();
    await train(examples, { over: { max_steps: 1, save_steps: 1 }, store });
    const data = decodeCheckpoint(await store.read(1), 'checkpoint-1');
    expect(data.state.data.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(data.state.settings_unset).toContain('max_samples');
    // The same number of sequences, one answer token changed: the encoded data's hash tells them apart.
    const changed = examples.map((e, i) => (i === 2 ? { ...e, inputIds: e.inputIds.map((t, j) => (j === e.inputIds.length - 1 ? (t + 1) % 512 : t)) } : e));
    const attempt = async (over: Record<string, unknown>, ex = examples, adapter = true) => {
      try {
        return Trainer.create({ model: lm.model, settings: job({ max_steps: 2, ...over }), train: ex, padTokenId: 0, ...(adapter ? { startingAdapter: await initAdapter(lm) } : {}), resume: data });
      } catch (e) {
        expect(e).toBeInstanceOf(SettingsError);
        return (e as Error).message;
      }
    };
    const hashOnly = await attempt({}, changed);
    expect(hashOnly).toMatch(/resume_from_checkpoint: the checkpoint's run differs from this job in one respect: the encoded data: the records, or how they are encoded, changed \(sha256 [0-9a-f]{12}… in the checkpoint, [0-9a-f]{12}… now\); .*resume_allow_changes: true/);
    const two = await attempt({ learning_rate: 0.02, max_samples: 4 }, changed);
    expect(two).toMatch(/differs from this job in 3 respects: learning_rate 0\.005 → 0\.02; max_samples unset → 4; the encoded data: /);
    // resume_allow_changes: resumes, says so, and every later checkpoint carries the differences.
    const t = (await attempt({ learning_rate: 0.02, resume_allow_changes: true }, changed)) as Trainer;
    expect(t).toBeInstanceOf(Trainer);
    expect(t.notes.join('\n')).toMatch(/resume_allow_changes: resuming after step 1 with learning_rate 0\.005 → 0\.02; the encoded data/);
    const next = new MemoryCheckpointStore();
    (t as unknown as { opts: { store?: MemoryCheckpointStore } }).opts.store = next;
    await t.run();
    const later = decodeCheckpoint(await next.read(2), 'checkpoint-2');
    expect(later.state.resumed_with_changes).toEqual([{ step: 1, changes: [expect.stringMatching(/^learning_rate 0\.005 → 0\.02$/), expect.stringMatching(/^the encoded data/)] }]);
    t.dispose();
    // The tensors a checkpoint trains cannot be overridden.
    expect(await attempt({ lora_rank: 3, resume_allow_changes: true }, examples, false)).toMatch(/other tensors than this job .*even with resume_allow_changes/);
    expect(lm.model.adapter).toBeNull();
  });
});
