// GpuContext's recording contract (src/engine/context.ts): a write while work is recorded is ordered with that
// work without submitting it (staged copies), pooled buffers are reused, and the memory statistics count what
// is allocated and what is in use, with peaks per window.
import { describe, expect, it } from 'vitest';
import { UPLOAD_CHUNK, UPLOAD_STAGING_MAX, sizeClass } from '../../src/engine/context';
import { scale, scaleInPlace } from '../../src/engine/ops/elementwise';
import { testContext } from '../helpers/gpu';

describe('GpuContext writes while work is recorded', () => {
  it('orders a staged write between the dispatches recorded before and after it, in one submit', async () => {
    const ctx = await testContext();
    await ctx.sync();
    const a = ctx.upload([6], Float32Array.of(1, 2, 3, 4, 5, 6));
    const before = ctx.empty([6]);
    const after = ctx.empty([6]);
    const s0 = { ...ctx.stats };
    scale(ctx, before, a, 10); // reads the old contents of a
    ctx.write(a, Float32Array.of(-1, -2, -3)); // first three elements only
    ctx.write(a, Float32Array.of(7), 5); // at an element offset
    scale(ctx, after, a, 10); // reads the new contents
    scaleInPlace(ctx, a, 2); // a = 2a, after the writes
    expect(ctx.stats.submits - s0.submits, 'writes recorded, nothing submitted yet').toBe(0);
    expect(ctx.stats.stagedWrites - s0.stagedWrites).toBe(2);
    const first = await ctx.readF32(before);
    expect(ctx.stats.submits - s0.submits, 'one submit: the read').toBe(1);
    const got = [...first, ...(await ctx.readF32(after)), ...(await ctx.readF32(a))];
    expect(got).toEqual([10, 20, 30, 40, 50, 60, -10, -20, -30, 40, 50, 70, -2, -4, -6, 8, 10, 14]);
    for (const t of [a, before, after]) t.release();
  });

  it('pads a write of an odd number of f16 values and keeps the tensor bytes after it', async () => {
    const ctx = await testContext();
    const t = ctx.upload([4], Uint16Array.of(0x3c00, 0x4000, 0x4200, 0x4400)); // 1, 2, 3, 4 in f16
    const copy = ctx.empty([4], 'f16');
    ctx.copy(t, copy);
    ctx.write(copy, Uint16Array.of(0xbc00, 0xc000)); // -1, -2: 4 bytes, no padding needed
    expect([...(await ctx.read(copy))]).toEqual([-1, -2, 3, 4]);
    ctx.copy(t, copy);
    ctx.write(copy, Uint16Array.of(0xc200)); // -3: 2 bytes padded to 4 with zeros, as a direct write is
    expect([...(await ctx.read(copy))]).toEqual([-3, 0, 3, 4]);
    t.release();
    copy.release();
  });

  it('falls back to submit-then-write beyond the staging budget, with the same results', async () => {
    const ctx = await testContext();
    await ctx.sync();
    const n = UPLOAD_CHUNK / 4 + 1; // one write larger than a chunk
    const big = ctx.zeros([n]);
    const data = Float32Array.from({ length: n }, (_, i) => i);
    const s0 = { ...ctx.stats };
    ctx.write(big, data);
    expect(ctx.stats.stagedWrites - s0.stagedWrites).toBe(0);
    expect(ctx.stats.submits - s0.submits, 'the zeroing was submitted first').toBe(1);
    expect((await ctx.readF32(big))[n - 1]).toBe(n - 1);
    big.release();

    // Many chunk-sized writes in one recording: staged up to UPLOAD_STAGING_MAX, then one submit to make room.
    const m = UPLOAD_CHUNK / 4;
    const parts = Array.from({ length: UPLOAD_STAGING_MAX / UPLOAD_CHUNK + 1 }, () => ctx.zeros([m]));
    const s1 = { ...ctx.stats };
    parts.forEach((p, i) => ctx.write(p, new Float32Array(m).fill(i + 1)));
    expect(ctx.stats.stagedWrites - s1.stagedWrites).toBe(parts.length - 1);
    expect(ctx.stats.submits - s1.submits).toBe(1);
    for (const [i, p] of parts.entries()) {
      const v = await ctx.readF32(p);
      expect([v[0], v[m - 1]]).toEqual([i + 1, i + 1]);
      p.release();
    }
  });
});

describe('GpuContext memory statistics', () => {
  it('counts allocated and in-use bytes, and peaks per window', async () => {
    const ctx = await testContext();
    await ctx.sync();
    ctx.trimPool();
    ctx.resetPeaks();
    const s = ctx.stats;
    const base = { alloc: s.bytesAllocated, use: s.bytesInUse };
    const bytes = sizeClass(1000 * 4);
    const t = ctx.zeros([1000]);
    expect(s.bytesAllocated - base.alloc).toBe(bytes);
    expect(s.bytesInUse - base.use).toBe(bytes);
    t.release(); // back to the pool: still allocated, no longer in use
    expect(s.bytesAllocated - base.alloc).toBe(bytes);
    expect(s.bytesInUse - base.use).toBe(0);
    expect(s.peakBytesInUse - base.use).toBe(bytes);
    const created = s.buffersCreated;
    const again = ctx.zeros([990]); // the same size class: the pooled buffer, nothing created
    expect(s.buffersCreated).toBe(created);
    expect(s.bytesInUse - base.use).toBe(bytes);
    const persistent = ctx.zeros([10], 'f32', { persistent: true });
    expect(s.peakBytesInUse - base.use).toBe(bytes + 48); // 40 bytes rounded up to 16
    persistent.release(); // destroyed
    again.release();
    ctx.empty([5000]).release(); // two more free buffers of other size classes in the pool
    ctx.empty([3000]).release();
    ctx.resetPeaks();
    expect(s.peakBytesInUse).toBe(s.bytesInUse);
    const peak = s.peakBytesInUse;
    ctx.trimPool(); // frees the pool's buffers: nothing in use changes, so neither does the peak
    expect(s.bytesAllocated).toBe(s.bytesInUse);
    expect(s.peakBytesInUse).toBe(peak);
  });
});
