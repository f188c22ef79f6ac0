// Shared by the pairwise objectives (dpo.ts, rm.ts): a micro-batch of P pairs is one batch of 2P rows, the
// chosen answers first (rows 0..P−1) and the rejected ones after (rows P..2P−1), right-padded to the longest.
import { collate, type Batch as PaddedBatch } from '../../data/encode';
import type { GpuContext } from '../../engine/context';
import type { Tensor } from '../../engine/tensor';
import type { CausalLM } from '../../model/transformer';
import { SettingsError } from '../settings';
import { countTargets, shiftedTargets } from '../loss';
import { checkSequence, type ObjectiveInputs, type StepPlan } from './objective';
import { PAIR_METRICS } from './preference-kernels';
import type { TrainExample } from './sft';

/** A preference pair as the trainer takes it: two sequences (src/data/preference.ts's EncodedPair fits). */
export interface TrainPair {
  chosen: TrainExample;
  rejected: TrainExample;
}

/** Checks the pairs (each a {chosen, rejected} of token sequences that fit the model, with answer tokens). */
export function checkPairs(stage: string, pairs: readonly unknown[], maxPositions: number): asserts pairs is readonly TrainPair[] {
  const tooLong = (n: number) => new SettingsError('the job', [{ key: 'cutoff_len', message: `an answer sequence has ${n} tokens, more than the model instance holds (${maxPositions})` }]);
  pairs.forEach((p, i) => {
    const pair = p as Partial<TrainPair>;
    if (!pair || typeof pair !== 'object' || !pair.chosen || !pair.rejected || !Array.isArray(pair.chosen.inputIds) || !Array.isArray(pair.rejected.inputIds)) {
      throw new SettingsError('the job', [
        { key: 'stage', message: `"${stage}" trains on preference pairs {chosen, rejected}, but item ${i} of the data is not one (a dataset for "sft"?); see src/data/preference.ts` },
      ]);
    }
    for (const which of ['chosen', 'rejected'] as const) {
      const e = pair[which]!;
      checkSequence(`The ${which} sequence of pair ${i}`, e.inputIds, e.labels, maxPositions, tooLong);
      if (countTargets(shiftedTargets([e.labels])) === 0) throw new Error(`The ${which} sequence of pair ${i} has no answer token to score`);
    }
  });
}

/**
 * What the pairwise objectives (dpo.ts, rm.ts) hold alike: the model's context, the training and validation
 * pairs checked against the model, the most tokens a training micro-batch of them runs (pairTokenBound), and
 * the stats buffer of the pair loss kernel (loss, gradient norm, then PAIR_METRICS' sums).
 */
export abstract class PairObjective {
  readonly statsSize = 2 + PAIR_METRICS.length;
  /** The step's loss is stats[0] / pairs (Objective.lossSlot). */
  readonly lossSlot = 0;
  readonly notes: string[] = [];
  readonly microTokenBound: number;
  protected readonly ctx: GpuContext;
  protected readonly train: readonly TrainPair[];
  protected readonly val: readonly TrainPair[];

  constructor(stage: 'dpo' | 'rm', o: ObjectiveInputs) {
    this.ctx = o.model.ctx;
    const train = o.train;
    const val = o.val ?? [];
    checkPairs(stage, train, o.model.maxSequenceLength);
    checkPairs(stage, val, o.model.maxSequenceLength);
    this.train = train;
    this.val = val;
    this.microTokenBound = pairTokenBound(train, o.settings.per_device_train_batch_size);
  }

  get size(): number {
    return this.train.length;
  }
}

export interface PairBatch {
  P: number;
  padded: PaddedBatch;
  T: number;
  /** Next-token targets of the 2P rows [2P·T]. */
  targets: Int32Array;
  /** Answer (target) tokens per row [2P], as f32 for the loss kernel. */
  lens: Float32Array;
  /** Length of each row without padding [2P]. */
  lengths: number[];
  inputTokens: number;
  tokens: number;
}

export function pairBatch(pairs: readonly TrainPair[], padTokenId: number): PairBatch {
  const rows = [...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)];
  const padded = collate(rows, { padTokenId });
  const T = padded.inputIds[0]!.length;
  const targets = shiftedTargets(padded.labels);
  const lens = new Float32Array(rows.length);
  for (let r = 0; r < rows.length; r++) lens[r] = countTargets(targets.subarray(r * T, (r + 1) * T));
  const lengths = rows.map((e) => e.inputIds.length);
  return {
    P: pairs.length,
    padded,
    T,
    targets,
    lens,
    lengths,
    inputTokens: lengths.reduce((a, b) => a + b, 0),
    tokens: lens.reduce((a, b) => a + b, 0),
  };
}

/** A step's totals over its micro-batches of pairs: the loss is averaged over the pairs. */
export function pairStep(batches: readonly PairBatch[]): Pick<StepPlan, 'units' | 'tokens' | 'inputTokens'> {
  return {
    units: batches.reduce((n, pb) => n + pb.P, 0),
    tokens: batches.reduce((n, pb) => n + pb.tokens, 0),
    inputTokens: batches.reduce((n, pb) => n + pb.inputTokens, 0),
  };
}

/**
 * Sums over a pairwise objective's validation pairs: `each` records one batch of them (per_device_eval_batch_size
 * pairs, item indices `ix`) into the stats buffer `acc` [size]. Returns the read-back sums and the answer tokens.
 */
export async function evalPairSums(
  o: ObjectiveInputs,
  val: readonly TrainPair[],
  size: number,
  each: (pb: PairBatch, ix: readonly number[], acc: Tensor) => void,
): Promise<{ sums: Float32Array; tokens: number }> {
  const ctx = o.model.ctx;
  const acc = ctx.zeros([size], 'f32', { label: 'eval stats' });
  let tokens = 0;
  try {
    for (const ix of chunks(val.length, o.settings.per_device_eval_batch_size)) {
      const pb = pairBatch(ix.map((i) => val[i]!), o.padTokenId);
      tokens += pb.tokens;
      each(pb, ix, acc);
    }
    return { sums: await ctx.readF32(acc), tokens };
  } finally {
    acc.release();
  }
}

/** Item indices in batches of `size`. */
export function chunks(n: number, size: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i += size) out.push(Array.from({ length: Math.min(size, n - i) }, (_, k) => i + k));
  return out;
}

/**
 * The most tokens one micro-batch of `batchSize` pairs runs through the model: its 2·batchSize rows (chosen
 * and rejected, one forward) padded to the longest sequence of the pairs.
 */
export function pairTokenBound(pairs: readonly TrainPair[], batchSize: number): number {
  let longest = 0;
  for (const p of pairs) longest = Math.max(longest, p.chosen.inputIds.length, p.rejected.inputIds.length);
  return 2 * batchSize * longest;
}

/** The model a forward runs on, with an adapter switched for it and restored after. */
export function withAdapter<T>(model: CausalLM, adapter: CausalLM['adapter'], run: () => T): T {
  const before = model.adapter;
  model.setAdapter(adapter);
  try {
    return run();
  } finally {
    model.setAdapter(before);
  }
}
