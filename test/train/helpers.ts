// Shared setup for the trainer tests: the fixture model loaded through the facade, its SFT data encoded by the
// fixtures' rule, the reference numbers, and small comparisons.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { folderSource } from '../../src/cli/folder-source';
import type { GpuContext } from '../../src/engine/context';
import { parseDatasetText, prepareSftData } from '../../src/data';
import { readAdapter, type CpuLoraAdapter } from '../../src/model/adapter';
import { loadModel, type LoadedModel } from '../../src/model/load';
import { SafetensorsFile } from '../../src/model/safetensors';
import { f32Parts } from '../../src/model/params';
import { parseSettings, type TrainSettings } from '../../src/train/settings';
import { decodeCheckpoint } from '../../src/train/checkpoint';
import { MemoryCheckpointStore } from '../../src/train/checkpoint-store';
import { TrainControl, Trainer, type TrainExample, type TrainPair } from '../../src/train/trainer';
import { atTestFileEnd, testContext } from '../helpers/gpu';

export const FIXTURE_DIR = new URL('../fixtures/tiny-llama/', import.meta.url);
export const FIXTURE = 'test/fixtures/tiny-llama';
export const ALPACA = 'test/fixtures/data/sft_alpaca.json';
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, FIXTURE_DIR)));

export interface Reference {
  forward: { input_ids: number[][]; loss_mean_all_positions: number };
  sft_batch: { input_ids: number[][]; labels: number[][]; attention_mask: number[][] };
  lora: { r: number; lora_alpha: number; sft_loss_at_init: number };
  lora_trajectory: { losses_before_each_step: number[] };
}
export const reference = JSON.parse(readFileSync(new URL('reference/reference.json', FIXTURE_DIR), 'utf8')) as Reference;

export const safetensors = (p: string) => new SafetensorsFile(read(p), p);

let loaded: Promise<{ ctx: GpuContext; lm: LoadedModel }> | undefined;
/** The fixture model, loaded once per test file. Tests that change base weights must restore them. */
export function fixtureModel(): Promise<{ ctx: GpuContext; lm: LoadedModel }> {
  loaded ??= (async () => {
    const ctx = await testContext();
    const lm = await loadModel(ctx, await folderSource(new URL('.', FIXTURE_DIR).pathname));
    atTestFileEnd(() => {
      loaded = undefined;
      lm.dispose();
    });
    return { ctx, lm };
  })();
  return loaded;
}

export async function initAdapter(lm: LoadedModel): Promise<CpuLoraAdapter> {
  return readAdapter(await folderSource(new URL('reference/init_adapter', FIXTURE_DIR).pathname, 'adapter'), lm.config);
}

/** sft_alpaca.json[0:n] encoded as the fixtures do (cutoff 64), in file order. */
export function alpacaExamples(lm: LoadedModel, n = 4, cutoffLen = 64): TrainExample[] {
  const parsed = parseDatasetText(readFileSync(new URL('../fixtures/data/sft_alpaca.json', import.meta.url), 'utf8'), 'sft_alpaca.json');
  const data = prepareSftData(parsed.records.slice(0, n), lm.tokenizer, lm.template, { cutoffLen, shuffle: false });
  return data.train;
}

/** The trajectory job of the fixtures: constant lr 1e-3, no decay, no clipping, one batch of 4. */
export function settings(over: Record<string, unknown> = {}): TrainSettings {
  return parseSettings(
    {
      model_name_or_path: 'tiny-llama',
      dataset: 'sft_alpaca.json',
      finetuning_type: 'lora',
      learning_rate: 1e-3,
      lr_scheduler_type: 'constant',
      adam_beta1: 0.9,
      adam_beta2: 0.999,
      adam_epsilon: 1e-8,
      weight_decay: 0,
      max_grad_norm: 0,
      per_device_train_batch_size: 4,
      gradient_accumulation_steps: 1,
      cutoff_len: 64,
      max_steps: 5,
      disable_shuffling: true,
      save_strategy: 'no',
      ...over,
    },
    'the test',
  );
}

/**
 * The resume tests' job: every piece of state a checkpoint keeps (shuffling over epochs, accumulation, warm-up
 * and decay, clipping), with a checkpoint every 2 of its 6 steps.
 */
export const RESUME_JOB = {
  max_steps: 6,
  per_device_train_batch_size: 1,
  gradient_accumulation_steps: 2,
  disable_shuffling: false,
  seed: 7,
  lr_scheduler_type: 'linear',
  warmup_steps: 2,
  learning_rate: 5e-3,
  max_grad_norm: 0.5,
  save_steps: 2,
  save_strategy: 'steps',
} as const;

export function expectRel(what: string, got: number, want: number, rel: number): void {
  expect(Math.abs(got - want) / Math.abs(want), `${what}: ${got} vs ${want}`).toBeLessThan(rel);
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Writes the fixture's base weights back into the model (after a full or freeze run changed them). */
export async function restoreBase(lm: LoadedModel): Promise<void> {
  const { writeJoined } = await import('../../src/train/optimizer');
  const file = safetensors('model.safetensors');
  for (const p of lm.model.parameters()) writeJoined(lm.model.ctx, f32Parts(p), file.float32(p.sourceName), p.name);
  await lm.model.ctx.sync();
}

/** Every base parameter read back, by name. */
export async function baseWeights(lm: LoadedModel): Promise<Map<string, Float32Array>> {
  const { readJoined } = await import('../../src/train/optimizer');
  const out = new Map<string, Float32Array>();
  for (const p of lm.model.parameters()) out.set(p.name, await readJoined(lm.model.ctx, f32Parts(p)));
  return out;
}

/**
 * Short examples of different lengths (for fast tests): alpaca records tokenized with the chat template,
 * cut to 10..24 tokens, the first 4 tokens unlabelled (a stand-in prompt) and the rest targets.
 */
export function shortExamples(lm: LoadedModel, n: number): TrainExample[] {
  const parsed = parseDatasetText(readFileSync(new URL('../fixtures/data/sft_alpaca.json', import.meta.url), 'utf8'), 'sft_alpaca.json');
  const records = Array.from({ length: n }, (_, i) => parsed.records[i % parsed.records.length]!);
  const data = prepareSftData(records, lm.tokenizer, lm.template, { cutoffLen: 40, shuffle: false, trainOnPrompt: true });
  return data.train.map((e, i) => {
    const len = 10 + ((7 * i) % 15);
    const ids = e.inputIds.slice(e.inputIds.length - len);
    return { inputIds: ids, labels: ids.map((id, t) => (t < 4 ? -100 : id)) };
  });
}

export interface ResumableRunOptions {
  /** Where checkpoints go (the job's save_strategy decides when). */
  store?: MemoryCheckpointStore;
  /** Stop the run after this step (as the Stop button does). */
  stopAfter?: number;
  /** Resume from the last checkpoint in this store. */
  resumeFrom?: MemoryCheckpointStore;
  /** Trainer.create's padTokenId (default 0) and starting adapter. */
  padTokenId?: number;
  startingAdapter?: CpuLoraAdapter;
  /** Return what a checkpoint would hold (weights, optimizer moments) instead of the trainable weights. */
  checkpointData?: boolean;
}

/**
 * One run of the resume tests: trains lm.model with settings s on train, saving to opts.store, stopped after step
 * opts.stopAfter, or resumed from the last checkpoint of opts.resumeFrom; returns the step metrics and the
 * trainable weights at the end (or, with opts.checkpointData, the checkpoint's weights and optimizer state).
 * "Straight" equals "stopped + resumed" is then a comparison of two of these.
 */
export async function resumableRun(lm: LoadedModel, s: TrainSettings, train: readonly TrainExample[] | readonly TrainPair[], opts: ResumableRunOptions) {
  const resume = opts.resumeFrom ? decodeCheckpoint(await opts.resumeFrom.read((await opts.resumeFrom.list()).at(-1)!), 'memory') : undefined;
  const trainer = Trainer.create({
    model: lm.model,
    settings: s,
    train,
    padTokenId: opts.padTokenId ?? 0,
    ...(opts.startingAdapter ? { startingAdapter: opts.startingAdapter } : {}),
    ...(opts.store ? { store: opts.store } : {}),
    ...(resume ? { resume } : {}),
  });
  const control = new TrainControl();
  try {
    const result = await trainer.run({ control, onStep: (r) => (r.step === opts.stopAfter ? control.stop() : undefined) });
    if (opts.checkpointData) {
      const data = await trainer.checkpointData();
      return { metrics: result.metrics, weights: data.weights, moments: data.optimizer.params };
    }
    return { metrics: result.metrics, weights: await trainer.trainableWeights() };
  } finally {
    trainer.dispose();
  }
}

/**
 * The three runs of a resume test: straight; stopped after step `stopAfter`, its checkpoints in a store (the
 * last one's files are returned); and resumed from that checkpoint (with a store of its own when `resumedStore`).
 */
export async function stopAndResume(
  lm: LoadedModel,
  s: TrainSettings,
  train: readonly TrainExample[] | readonly TrainPair[],
  stopAfter: number,
  opts: Omit<ResumableRunOptions, 'store' | 'stopAfter' | 'resumeFrom'> & { resumedStore?: boolean } = {},
) {
  const { resumedStore, ...common } = opts;
  const run = (o: ResumableRunOptions) => resumableRun(lm, s, train, { ...common, ...o });
  const straight = await run({});
  const store = new MemoryCheckpointStore();
  const stopped = await run({ store, stopAfter });
  const files = await store.read((await store.list()).at(-1)!);
  const resumed = await run({ ...(resumedStore ? { store: new MemoryCheckpointStore() } : {}), resumeFrom: store });
  return { straight, stopped, files, resumed };
}
