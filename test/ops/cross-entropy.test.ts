import { describe, expect, it } from 'vitest';
import {
  crossEntropyChunk,
  crossEntropyChunkBackward,
  crossEntropyFinish,
  crossEntropyForward,
  crossEntropyInit,
} from '../../src/engine/ops/cross-entropy';
import { crossEntropyBackwardRef, crossEntropyForwardRef } from '../../src/engine/ref/cross-entropy';
import type { Tensor } from '../../src/engine/tensor';
import { checkOp, expectClose, type Tensors } from '../harness/checkOp';
import { testContext, withGridLimit } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

const IGNORE = -100;
const fwdTol = { atol: 1e-5, rtol: 1e-4 };
// Gradients in a row are about dLoss/V: the absolute tolerance scales with 1/V so that a wide vocabulary
// is still checked element by element.
const bwdTol = (V: number) => ({ atol: Math.min(1e-4, 1e-2 / V), rtol: 1e-3 });
// Chunked and single-chunk results differ only in the order of f32 sums.
const sameTol = { atol: 1e-5, rtol: 1e-5 };

/** Random targets in [0, V), every fifth token (from the third) ignored. */
function randomTargets(rng: Rng, T: number, V: number): Float64Array {
  return Float64Array.from({ length: T }, (_, t) => (t % 5 === 2 ? IGNORE : rng.int(0, V)));
}

/** Columns [start, start + width) of a [T, V] array, as an f32 [T, width] array. */
function columns(a: Float64Array, T: number, V: number, start: number, width: number): Float32Array {
  const out = new Float32Array(T * width);
  for (let t = 0; t < T; t++) for (let c = 0; c < width; c++) out[t * width + c] = a[t * V + start + c]!;
  return out;
}

/** [start, width] of each chunk of V columns in chunks of `size` (the last one partial). */
function chunksOf(V: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < V; s += size) out.push([s, Math.min(size, V - s)]);
  return out;
}

interface CeCase {
  name: string;
  T: number;
  V: number;
  logits: Float64Array;
  targets: Float64Array;
  /** Vocabulary chunk size; the whole vocabulary when absent. */
  chunk?: number;
  gridLimit?: number;
}

async function checkCrossEntropy(c: CeCase): Promise<void> {
  const base = await testContext();
  const ctx = c.gridLimit ? withGridLimit(base, c.gridLimit) : base;
  const { T, V } = c;
  const chunks = chunksOf(V, c.chunk ?? V);
  expect(c.targets.some((y) => y !== IGNORE), `${c.name}: a labelled token`).toBe(true);

  await checkOp(ctx, {
    name: c.name,
    inputs: {
      logits: { shape: [T, V], data: c.logits },
      targets: { shape: [T], data: c.targets, dtype: 'i32', grad: false },
    },
    ref: (x) => ({ losses: crossEntropyForwardRef(x.logits!, x.targets!, T, V) }),
    gpu: async (ctx, x) => {
      const losses = ctx.empty([T]);
      const stats = ctx.empty([T, 2]);
      const targetLogit = ctx.empty([T]);
      if (chunks.length === 1) {
        crossEntropyForward(ctx, losses, stats, targetLogit, x.logits!, x.targets!);
        return { losses, stats };
      }
      crossEntropyInit(ctx, stats, targetLogit);
      for (const [start, width] of chunks) {
        const part = ctx.upload([T, width], columns(c.logits, T, V, start, width));
        crossEntropyChunk(ctx, stats, targetLogit, part, x.targets!, start);
        part.release();
      }
      crossEntropyFinish(ctx, losses, stats, targetLogit, x.targets!);
      // The chunked result equals the single-chunk one, up to the order of f32 sums.
      const one = { losses: ctx.empty([T]), stats: ctx.empty([T, 2]), targetLogit: ctx.empty([T]) };
      crossEntropyForward(ctx, one.losses, one.stats, one.targetLogit, x.logits!, x.targets!);
      expectClose(`${c.name}: chunked vs single-chunk losses`, await ctx.readF32(losses), await ctx.readF32(one.losses), sameTol);
      expectClose(`${c.name}: chunked vs single-chunk targetLogit`, await ctx.readF32(targetLogit), await ctx.readF32(one.targetLogit), {
        atol: 0,
        rtol: 0,
      });
      for (const t of Object.values(one)) t.release();
      targetLogit.release();
      return { losses, stats };
    },
    refBackward: (x, d) => ({ logits: crossEntropyBackwardRef(d.losses!, x.logits!, x.targets!, T, V) }),
    gpuBackward: async (ctx, x, out, d) => {
      if (chunks.length === 1) {
        const dLogits = ctx.zeros([T, V]);
        crossEntropyChunkBackward(ctx, dLogits, x.logits!, out.stats!, x.targets!, d.losses!, 0);
        return { logits: dLogits };
      }
      // Chunk by chunk into [T, width] gradients, assembled on the CPU into [T, V].
      const full = new Float32Array(T * V);
      for (const [start, width] of chunks) {
        const part = ctx.upload([T, width], columns(c.logits, T, V, start, width));
        const dPart = ctx.zeros([T, width]);
        crossEntropyChunkBackward(ctx, dPart, part, out.stats!, x.targets!, d.losses!, start);
        const got = await ctx.readF32(dPart);
        for (let t = 0; t < T; t++) for (let k = 0; k < width; k++) full[t * V + start + k] = got[t * width + k]!;
        part.release();
        dPart.release();
      }
      const one: Tensors = { dLogits: ctx.zeros([T, V]) };
      crossEntropyChunkBackward(ctx, one.dLogits!, x.logits!, out.stats!, x.targets!, d.losses!, 0);
      expectClose(`${c.name}: chunked vs single-chunk dLogits`, full, await ctx.readF32(one.dLogits!), { atol: 1e-7, rtol: 1e-5 });
      one.dLogits!.release();
      return { logits: ctx.upload([T, V], full) };
    },
    forwardTol: fwdTol,
    backwardTol: bwdTol(V),
  });
}

describe('cross-entropy, one chunk', () => {
  // [T, V, logit scale]: odd vocabularies, a real one (49152), many tokens, several tokens per workgroup.
  const cases: [number, number, number][] = [
    [3, 7, 2],
    [6, 176, 3],
    [4, 1000, 3],
    [2, 49152, 3],
    [2000, 64, 3],
    [131, 5, 2],
  ];
  for (const [T, V, scale] of cases) {
    it(`[${T}×${V}]`, async () => {
      const rng = new Rng(T * 7919 + V);
      await checkCrossEntropy({ name: `cross-entropy [${T}×${V}]`, T, V, logits: rng.tensor(T * V, scale), targets: randomTargets(rng, T, V) });
    });
  }

  it('[300×64] on a 2-D grid (limit 7 per dimension)', async () => {
    const rng = new Rng(77);
    const [T, V] = [300, 64];
    await checkCrossEntropy({ name: 'cross-entropy [300×64] 2-D', T, V, logits: rng.tensor(T * V, 3), targets: randomTargets(rng, T, V), gridLimit: 7 });
  });
});

describe('cross-entropy, chunked over the vocabulary', () => {
  // Targets: ignored, in the last partial chunk (the very last column and one inside it), in the first
  // chunk, on both sides of a chunk boundary, ignored again.
  const V = 1000;
  const targets = Float64Array.from([IGNORE, V - 1, 0, 384, 383, 800, IGNORE, 767, 768]);
  const T = targets.length;

  it('V = 1000 in chunks of 384 (384 + 384 + 232)', async () => {
    const rng = new Rng(1000);
    await checkCrossEntropy({ name: 'cross-entropy 1000 / 384', T, V, logits: rng.tensor(T * V, 3), targets, chunk: 384 });
  });

  it('V = 1000 in chunks of 97 (11 chunks, the last of 30)', async () => {
    const rng = new Rng(97);
    await checkCrossEntropy({ name: 'cross-entropy 1000 / 97', T, V, logits: rng.tensor(T * V, 3), targets, chunk: 97 });
  });

  it('V = 13 in chunks of 1', async () => {
    const rng = new Rng(13);
    const t13 = Float64Array.from([3, IGNORE, 0, 12, 7, 12, IGNORE, 1]);
    await checkCrossEntropy({ name: 'cross-entropy 13 / 1', T: t13.length, V: 13, logits: rng.tensor(t13.length * 13, 3), targets: t13, chunk: 1 });
  });

  it('logits around ±80, one chunk and in chunks of 384', async () => {
    // Rows: random signs (so the max is ≈ +80 and targets sit at ±80), all ≈ +80, all ≈ −80; losses reach
    // ≈ 160 and exp would overflow f32 without the max taken out.
    const rng = new Rng(80);
    const logits = new Float64Array(T * V);
    for (let t = 0; t < T; t++) {
      for (let v = 0; v < V; v++) {
        const sign = t === 2 ? 1 : t === 3 ? -1 : rng.next() < 0.5 ? -1 : 1;
        logits[t * V + v] = Math.fround(sign * 80 + rng.normal());
      }
    }
    await checkCrossEntropy({ name: 'cross-entropy ±80', T, V, logits, targets });
    await checkCrossEntropy({ name: 'cross-entropy ±80 / 384', T, V, logits, targets, chunk: 384 });
  });
});

describe('cross-entropy wrappers', () => {
  it('backward accumulates into dLogits', async () => {
    const ctx = await testContext();
    const rng = new Rng(3);
    const [T, V] = [5, 40];
    const logitsData = rng.tensor(T * V, 2);
    const targetsData = randomTargets(rng, T, V);
    const dLossData = rng.tensor(T);
    const prior = rng.tensor(T * V);
    const logits = ctx.upload([T, V], Float32Array.from(logitsData));
    const targets = ctx.upload([T], Int32Array.from(targetsData));
    const dLoss = ctx.upload([T], Float32Array.from(dLossData));
    const losses = ctx.empty([T]);
    const stats = ctx.empty([T, 2]);
    const targetLogit = ctx.empty([T]);
    crossEntropyForward(ctx, losses, stats, targetLogit, logits, targets);
    const dLogits = ctx.upload([T, V], Float32Array.from(prior));
    crossEntropyChunkBackward(ctx, dLogits, logits, stats, targets, dLoss, 0);
    crossEntropyChunkBackward(ctx, dLogits, logits, stats, targets, dLoss, 0);
    const once = crossEntropyBackwardRef(dLossData, logitsData, targetsData, T, V);
    expectClose('accumulated dLogits', await ctx.readF32(dLogits), prior.map((p, i) => p + 2 * once[i]!), bwdTol(V));
    // The finish leaves stats usable: a second finish gives the same losses.
    const again = ctx.empty([T]);
    crossEntropyFinish(ctx, again, stats, targetLogit, targets);
    expectClose('second finish', await ctx.readF32(again), await ctx.readF32(losses), { atol: 0, rtol: 0 });
    for (const t of [logits, targets, dLoss, losses, stats, targetLogit, dLogits, again]) t.release();
  });

  it('rejects mismatched shapes and dtypes', async () => {
    const ctx = await testContext();
    const made: Tensor[] = [];
    const mk = (shape: number[], dtype: 'f32' | 'i32' = 'f32') => {
      const t = ctx.empty(shape, dtype);
      made.push(t);
      return t;
    };
    const logits = mk([4, 10]);
    expect(() => crossEntropyForward(ctx, mk([4]), mk([4, 2]), mk([4]), logits, mk([4]))).toThrow(
      /crossEntropyChunk: targets is f32, expected i32/,
    );
    expect(() => crossEntropyChunk(ctx, mk([3, 2]), mk([4]), logits, mk([4], 'i32'), 0)).toThrow(
      /crossEntropyChunk: stats \[3, 2\] should be \[4, 2\]/,
    );
    expect(() => crossEntropyChunkBackward(ctx, mk([4, 11]), logits, mk([4, 2]), mk([4], 'i32'), mk([4]), 0)).toThrow(
      /crossEntropyChunkBackward: dLogits \[4, 11\] does not match logits \[4, 10\]/,
    );
    expect(() => crossEntropyChunk(ctx, mk([4, 2]), mk([4]), logits, mk([4], 'i32'), -1)).toThrow(/vocabStart -1/);
    for (const t of made) t.release();
  });
});
