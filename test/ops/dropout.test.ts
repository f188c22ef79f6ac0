import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { dropoutBackward, dropoutForward } from '../../src/engine/ops/dropout';
import { dropoutBackwardRef, dropoutForwardRef, dropoutMaskRef, philox4x32 } from '../../src/engine/ref/dropout';
import { checkOp } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

/** The GPU's mask, read through the forward of a tensor of ones (kept elements become 1/(1 − p)). */
async function gpuMask(ctx: GpuContext, n: number, p: number, seed: number, offset: number): Promise<Uint8Array> {
  const x = ctx.upload([n], new Float32Array(n).fill(1));
  const out = ctx.empty([n]);
  dropoutForward(ctx, out, x, p, seed, offset);
  const got = await ctx.readF32(out);
  x.release();
  out.release();
  const keep = Math.fround(1 / (1 - p));
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (got[i] === keep) mask[i] = 1;
    else if (got[i] !== 0) throw new Error(`dropout of ones gave ${got[i]} at ${i}, expected 0 or ${keep}`);
  }
  return mask;
}

function countKept(mask: Uint8Array): number {
  let k = 0;
  for (const m of mask) k += m;
  return k;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe('dropout', () => {
  it('the CPU Philox-4x32-10 matches the Random123 known-answer vectors', () => {
    const hex = (w: number[]): string => w.map((v) => v.toString(16).padStart(8, '0')).join(' ');
    expect(hex(philox4x32(0, 0, 0, 0, 0, 0))).toBe('6627e8d5 e169c58d bc57ac4c 9b00dbd8');
    const f = 0xffffffff;
    expect(hex(philox4x32(f, f, f, f, f, f))).toBe('408f276d 41c83b0e a20bc7c6 6d5451fd');
    expect(hex(philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0))).toBe(
      'd16cfe09 94fdcceb 5001e420 24126ea1',
    );
  });

  // Seeds and offsets above 2^32 exercise the high key word and the carry of offset + i into the high counter word.
  for (const [p, seed, offset] of [
    [0.1, 1234, 0],
    [0.5, 2 ** 40 + 7, 2 ** 32 - 50_000],
    [0.9, 0, 3 * 2 ** 32 + 11],
  ] as const) {
    it(`GPU mask equals dropoutMaskRef exactly, kept fraction ≈ 1 − p (p=${p}, seed=${seed}, offset=${offset})`, async () => {
      const ctx = await testContext();
      const n = 100_000;
      const got = await gpuMask(ctx, n, p, seed, offset);
      const want = dropoutMaskRef(n, p, seed, offset);
      expect(firstDifference(got, want)).toBe(-1);
      // Binomial(n, 1 − p): within 5 standard deviations.
      const sd = Math.sqrt(n * p * (1 - p));
      expect(Math.abs(countKept(got) - n * (1 - p))).toBeLessThan(5 * sd);
    });
  }

  it('same seed → same mask; different offset or seed → different mask; the mask only depends on offset + i', async () => {
    const ctx = await testContext();
    const n = 20_000;
    const p = 0.3;
    const a = await gpuMask(ctx, n, p, 42, 1000);
    const again = await gpuMask(ctx, n, p, 42, 1000);
    expect(firstDifference(a, again)).toBe(-1);
    // Independent masks agree on a fraction p² + (1 − p)² = 0.58 of the elements, far from 1.
    const agreement = (x: Uint8Array, y: Uint8Array): number => x.reduce((s, v, i) => s + (v === y[i] ? 1 : 0), 0) / n;
    const otherOffset = await gpuMask(ctx, n, p, 42, 1000 + n);
    const otherSeed = await gpuMask(ctx, n, p, 43, 1000);
    expect(agreement(a, otherOffset)).toBeLessThan(0.65);
    expect(agreement(a, otherSeed)).toBeLessThan(0.65);
    // Element i of a call at offset o is element i + k of a call at offset o − k.
    const shifted = await gpuMask(ctx, n, p, 42, 1000 - 123);
    expect(firstDifference(a.subarray(0, n - 123), shifted.subarray(123))).toBe(-1);
  });

  for (const shape of [[5], [7, 13], [3, 70001]]) {
    it(`forward and backward on [${shape.join('×')}] against the reference with the same mask`, async () => {
      const ctx = await testContext();
      const n = shape.reduce((a, b) => a * b, 1);
      const rng = new Rng(n);
      const p = 0.25;
      const seed = 777;
      const offset = 31;
      const mask = dropoutMaskRef(n, p, seed, offset);
      await checkOp(ctx, {
        name: `dropout [${shape}]`,
        inputs: { x: { shape, data: rng.tensor(n) } },
        ref: (x) => ({ out: dropoutForwardRef(x.x!, mask, p) }),
        gpu: (ctx, x) => {
          const out = ctx.empty(shape);
          dropoutForward(ctx, out, x.x!, p, seed, offset);
          return { out };
        },
        refBackward: (_x, d) => ({ x: dropoutBackwardRef(d.out!, mask, p) }),
        gpuBackward: (ctx, _x, _out, d) => {
          const dx = ctx.zeros(shape);
          dropoutBackward(ctx, dx, d.out!, p, seed, offset);
          return { x: dx };
        },
      });
    });
  }

  it('backward accumulates; p = 0 is the identity, p = 1 gives zeros', async () => {
    const ctx = await testContext();
    const rng = new Rng(3);
    const n = 1001;
    const xData = Float32Array.from(rng.tensor(n));
    const x = ctx.upload([n], xData);
    const out = ctx.empty([n]);
    dropoutForward(ctx, out, x, 0, 5, 0);
    expect(Array.from(await ctx.readF32(out))).toEqual(Array.from(xData));
    dropoutForward(ctx, out, x, 1, 5, 0);
    expect((await ctx.readF32(out)).every((v) => v === 0)).toBe(true);
    // dx starts at x; dx += mask·x/(1 − p).
    const dx = ctx.upload([n], xData);
    dropoutBackward(ctx, dx, x, 0.5, 9, 100);
    const mask = dropoutMaskRef(n, 0.5, 9, 100);
    const got = await ctx.readF32(dx);
    for (let i = 0; i < n; i++) expect(got[i]).toBe(Math.fround(xData[i]! + (mask[i] ? xData[i]! * 2 : 0)));
    for (const t of [x, out, dx]) t.release();
  });

  it('bad arguments throw plain Errors naming the op', async () => {
    const ctx = await testContext();
    const a = ctx.zeros([4]);
    const b = ctx.zeros([5]);
    expect(() => dropoutForward(ctx, a, b, 0.1, 1, 0)).toThrow(/dropoutForward: element counts differ/);
    expect(() => dropoutForward(ctx, a, a, 0.1, 1, 0)).toThrow(/different tensors/);
    const c = ctx.zeros([4]);
    expect(() => dropoutForward(ctx, c, a, 1.5, 1, 0)).toThrow(/p = 1.5 must be in \[0, 1\]/);
    expect(() => dropoutForward(ctx, c, a, 0.1, -1, 0)).toThrow(/seed -1/);
    expect(() => dropoutBackward(ctx, c, a, 0.1, 1, 0.5)).toThrow(/dropoutBackward: offset 0.5/);
    for (const t of [a, b, c]) t.release();
  });
});
