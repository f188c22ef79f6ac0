// GPU time from timestamp queries (GpuContext.startProfile / stopProfile): every dispatch of a profile is timed
// in a compute pass of its own, named by its kernel, across several submits; the results are the same bits as
// without the profile. SwiftShader offers timestamp-query; an adapter without it refuses loudly.
import { describe, expect, it } from 'vitest';
import { matmulNT, matmulPlan } from '../../src/engine/ops/matmul';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

describe('GPU profile', () => {
  it('times every dispatch by kernel across submits, and changes no result', async () => {
    const ctx = await testContext();
    if (!ctx.hasTimestamps) {
      expect(() => ctx.startProfile()).toThrow(/timestamp-query/);
      return;
    }
    const rng = new Rng(3);
    const a = ctx.upload([40, 36], Float32Array.from(rng.tensor(40 * 36)));
    const b = ctx.upload([24, 36], Float32Array.from(rng.tensor(24 * 36)));
    const plain = ctx.empty([40, 24]);
    matmulNT(ctx, plain, a, b);
    const want = await ctx.readF32(plain);

    ctx.startProfile();
    const out = ctx.empty([40, 24]);
    matmulNT(ctx, out, a, b);
    const got = await ctx.readF32(out); // a submit inside the profile
    matmulNT(ctx, out, a, b, { splitK: 2 }); // two dispatches: the chunks and their sum
    expect(() => ctx.startProfile()).toThrow(/running already/);
    const timed = await ctx.stopProfile();
    expect(Array.from(got)).toEqual(Array.from(want));
    const kernel = matmulPlan(ctx, { transA: false, transB: true, M: 40, N: 24, K: 36 }).kernel;
    expect(timed.map((t) => t.kernel)).toEqual([kernel, kernel, 'matmul_splitk_reduce']);
    expect(timed.every((t) => Number.isFinite(t.ns) && t.ns >= 0)).toBe(true);
    expect(timed.some((t) => t.ns > 0)).toBe(true);
    expect(ctx.profilingActive).toBe(false);
    await expect(ctx.stopProfile()).rejects.toThrow(/no GPU profile/);
  });
});
