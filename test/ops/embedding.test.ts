import { describe, expect, it } from 'vitest';
import {
  buildEmbeddingGradIndex,
  embeddingBackward,
  embeddingForward,
  releaseEmbeddingGradIndex,
} from '../../src/engine/ops/embedding';
import { embeddingBackwardRef, embeddingForwardRef } from '../../src/engine/ref/embedding';
import { GpuError } from '../../src/engine/errors';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/engine/half';
import { checkOp, expectClose } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

async function checkEmbedding(name: string, ids: Float64Array, V: number, C: number, seed: number): Promise<void> {
  const ctx = await testContext();
  const rng = new Rng(seed);
  const T = ids.length;
  await checkOp(ctx, {
    name,
    seed,
    fdSamples: 8,
    inputs: {
      ids: { shape: [T], data: ids, dtype: 'i32', grad: false },
      table: { shape: [V, C], data: rng.tensor(V * C) },
    },
    ref: (x) => ({ out: embeddingForwardRef(x.ids!, x.table!, V, C) }),
    gpu: (ctx, x) => {
      const out = ctx.empty([T, C]);
      embeddingForward(ctx, out, x.ids!, x.table!);
      return { out };
    },
    refBackward: (x, d) => ({ table: embeddingBackwardRef(d.out!, x.ids!, V, C) }),
    gpuBackward: (ctx, _x, _out, d) => {
      const dTable = ctx.zeros([V, C]);
      const index = buildEmbeddingGradIndex(ctx, Int32Array.from(ids), V);
      embeddingBackward(ctx, dTable, d.out!, index);
      releaseEmbeddingGradIndex(index);
      return { table: dTable };
    },
  });
}

describe('embedding', () => {
  it('repeated ids and unused rows', async () => {
    // Row 3 is used four times, 0 twice, rows 1, 2, 4, 5, 6, 8 never (their gradient must stay zero).
    const ids = Float64Array.from([3, 3, 0, 7, 3, 9, 0, 3, 7]);
    await checkEmbedding('embedding V=10 C=5', ids, 10, 5, 1);
  });

  it('a vocabulary of 1000 with 300 tokens, odd width', async () => {
    const rng = new Rng(2);
    // Skewed ids (frequent small ids, like real text) so that some groups are long.
    const ids = Float64Array.from({ length: 300 }, () => Math.floor(1000 * rng.next() ** 3));
    await checkEmbedding('embedding V=1000 T=300 C=37', ids, 1000, 37, 2);
  });

  it('a row wider than one workgroup (C = 300)', async () => {
    const rng = new Rng(3);
    const ids = Float64Array.from({ length: 50 }, () => rng.int(0, 64));
    await checkEmbedding('embedding V=64 T=50 C=300', ids, 64, 300, 3);
  });

  it('70000 tokens: more unique ids than one grid dimension holds', async () => {
    // 7919·t mod 80000 takes distinct values for t < 80000; every 50th token has id 0 instead, so id 0 has a
    // group of 1401 positions and there are 68601 groups, more than one grid dimension (65535) holds.
    const V = 80000;
    const ids = Float64Array.from({ length: 70000 }, (_, t) => (t % 50 === 49 ? 0 : (7919 * t) % V));
    const ctx = await testContext();
    const index = buildEmbeddingGradIndex(ctx, Int32Array.from(ids), V);
    expect(index.count).toBeGreaterThan(ctx.limits.maxComputeWorkgroupsPerDimension);
    releaseEmbeddingGradIndex(index);
    await checkEmbedding('embedding V=80000 T=70000 C=4', ids, V, 4, 4);
  });

  it('buildEmbeddingGradIndex groups positions by id in order', async () => {
    const ctx = await testContext();
    const index = buildEmbeddingGradIndex(ctx, Int32Array.from([5, 1, 5, 2, 1, 5]), 8);
    expect(index.count).toBe(3);
    expect(Array.from(await ctx.read(index.uniqueIds))).toEqual([1, 2, 5]);
    expect(Array.from(await ctx.read(index.offsets))).toEqual([0, 2, 3, 6]);
    expect(Array.from(await ctx.read(index.positions))).toEqual([1, 4, 3, 0, 2, 5]);
    releaseEmbeddingGradIndex(index);
  });

  it('an id outside [0, V) is rejected by buildEmbeddingGradIndex with a clear message', async () => {
    const ctx = await testContext();
    for (const bad of [-1, 1000, 123456]) {
      const ids = Int32Array.from([1, 2, bad, 3]);
      expect(() => buildEmbeddingGradIndex(ctx, ids, 1000)).toThrow(
        new RegExp(`token id ${bad} at position 2 is outside the vocabulary \\[0, 1000\\).*tokenizer`),
      );
    }
    expect(() => buildEmbeddingGradIndex(ctx, Int32Array.from([0]), 0)).toThrow(/vocabulary size/);
  });

  it('the kernel writes zeros for ids outside [0, V)', async () => {
    const ctx = await testContext();
    const V = 6;
    const C = 3;
    const table = Float64Array.from({ length: V * C }, (_, i) => i + 1);
    const ids = Int32Array.from([2, -1, 6, 5, 2147483647, 0]);
    const out = ctx.empty([ids.length, C]);
    const idsT = ctx.upload([ids.length], ids);
    const tableT = ctx.upload([V, C], Float32Array.from(table));
    embeddingForward(ctx, out, idsT, tableT);
    const got = await ctx.readF32(out);
    expectClose('embedding out-of-range', got, embeddingForwardRef(ids, table, V, C), { atol: 0, rtol: 0 });
    expect(Array.from(got.subarray(C, 3 * C))).toEqual([0, 0, 0, 0, 0, 0]);
    for (const t of [out, idsT, tableT]) t.release();
  });

  it('a bf16 or f16 table kept packed gives the bits of its f32 values; Gemma scaling rounds to the dtype', async () => {
    const ctx = await testContext();
    const rng = new Rng(16);
    const [V, C] = [11, 7]; // 77 values: the last u32 word holds one
    const ids = Int32Array.from([10, 0, 3, 3, 7, -1, 11]);
    const idsT = ctx.upload([ids.length], ids);
    const values = rng.tensor(V * C);
    const toBf16 = (x: number) => bf16BitsToF32(f32ToBf16Bits(x));
    const toF16 = (x: number) => f16BitsToF32(f32ToF16Bits(x));
    const sqrtH = Math.sqrt(640); // gemma-3-270m: √640 in bf16 is 25.25
    for (const [dtype, toBits, fromBits, round] of [
      ['bf16', f32ToBf16Bits, bf16BitsToF32, toBf16],
      ['f16', f32ToF16Bits, f16BitsToF32, toF16],
    ] as const) {
      const bits = Uint16Array.from(values, (v) => toBits(v));
      const widened = Float64Array.from(bits, (b) => fromBits(b));
      const packed = ctx.upload([V, C], bits, dtype);
      const out = ctx.empty([ids.length, C]);
      embeddingForward(ctx, out, idsT, packed);
      expect(Array.from(await ctx.readF32(out)), `${dtype} gather`).toEqual(Array.from(embeddingForwardRef(ids, widened, V, C), Math.fround));
      // Scaled as transformers does in the weights' dtype: round(e · round(√H)); the f32 product is exact.
      const scale = round(sqrtH);
      embeddingForward(ctx, out, idsT, packed, { scale, round: dtype });
      expect(Array.from(await ctx.readF32(out)), `${dtype} scaled gather`).toEqual(Array.from(embeddingForwardRef(ids, widened, V, C, scale, round)));
      packed.release();
      out.release();
    }
    // f32 (Gemma in f32): the product rounded to f32.
    const table = ctx.upload([V, C], Float32Array.from(values));
    const out = ctx.empty([ids.length, C]);
    embeddingForward(ctx, out, idsT, table, { scale: Math.fround(sqrtH) });
    expect(Array.from(await ctx.readF32(out))).toEqual(Array.from(embeddingForwardRef(ids, values, V, C, Math.fround(sqrtH), Math.fround)));
  });

  it('backward accumulates into dTable', async () => {
    const ctx = await testContext();
    const rng = new Rng(9);
    const V = 20;
    const C = 9;
    const ids = Int32Array.from({ length: 40 }, () => rng.int(0, V));
    const prior = rng.tensor(V * C);
    const dOut = rng.tensor(ids.length * C);
    const want = embeddingBackwardRef(dOut, ids, V, C).map((v, i) => v + prior[i]!);
    const dTable = ctx.upload([V, C], Float32Array.from(prior));
    const dOutT = ctx.upload([ids.length, C], Float32Array.from(dOut));
    const index = buildEmbeddingGradIndex(ctx, ids, V);
    embeddingBackward(ctx, dTable, dOutT, index);
    releaseEmbeddingGradIndex(index);
    expectClose('embedding backward accumulation', await ctx.readF32(dTable), want, { atol: 1e-5, rtol: 1e-5 });
    dTable.release();
    dOutT.release();
  });

  it('shape mismatches throw plain Errors naming the op', async () => {
    const ctx = await testContext();
    const table = ctx.zeros([10, 4]);
    const ids = ctx.upload([3], Int32Array.from([1, 2, 3]));
    const out = ctx.empty([3, 5]);
    expect(() => embeddingForward(ctx, out, ids, table)).toThrow(/embeddingForward: out \[3, 5\] must be \[3, 4\]/);
    expect(() => embeddingForward(ctx, out, table, table)).toThrow(/ids must be i32/);
    let err: unknown;
    try {
      embeddingForward(ctx, out, ids, table);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(GpuError);
    for (const t of [table, ids, out]) t.release();
  });
});
