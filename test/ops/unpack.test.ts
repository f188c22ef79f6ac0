import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { bf16BitsToF32, f16BitsToF32 } from '../../src/engine/half';
import { unpackBf16, unpackF16 } from '../../src/engine/ops/unpack';
import { packHalves, unpackBf16Ref, unpackF16Ref } from '../../src/engine/ref/unpack';
import { checkOp } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

type Unpack = typeof unpackF16;

const FORMATS = [
  { name: 'f16', op: unpackF16, ref: unpackF16Ref, toF32: f16BitsToF32, expMask: 0x7c00 },
  { name: 'bf16', op: unpackBf16, ref: unpackBf16Ref, toF32: bf16BitsToF32, expMask: 0x7f80 },
] as const;

async function gpuUnpack(ctx: GpuContext, op: Unpack, halves: Uint16Array): Promise<Float32Array> {
  const packed = ctx.upload([Math.ceil(halves.length / 2)], packHalves(halves));
  const out = ctx.empty([halves.length]);
  op(ctx, out, packed);
  const got = await ctx.readF32(out);
  packed.release();
  out.release();
  return got;
}

/** Same value, same sign of zero; any NaN matches any NaN. Returns the first mismatch as text. */
function firstMismatch(halves: Uint16Array, got: Float32Array, toF32: (h: number) => number): string | undefined {
  for (let i = 0; i < halves.length; i++) {
    const want = Math.fround(toF32(halves[i]!));
    const ok = Number.isNaN(want) ? Number.isNaN(got[i]) : Object.is(got[i], want);
    if (!ok) return `[${i}] bits 0x${halves[i]!.toString(16)}: got ${got[i]}, expected ${want}`;
  }
  return undefined;
}

describe('unpack', () => {
  for (const f of FORMATS) {
    for (const n of [1, 8, 70_001]) {
      it(`${f.name}: random finite values, n = ${n}, through checkOp`, async () => {
        const ctx = await testContext();
        const rng = new Rng(n);
        const halves = new Uint16Array(n);
        for (let i = 0; i < n; i++) {
          let h: number;
          do h = rng.int(0, 0x10000);
          while ((h & f.expMask) === f.expMask); // finite only here; Inf/NaN are checked bit by bit below
          halves[i] = h;
        }
        const words = packHalves(halves);
        await checkOp(ctx, {
          name: `unpack ${f.name} n=${n}`,
          inputs: { packed: { shape: [words.length], data: Float64Array.from(words), dtype: 'u32', grad: false } },
          forwardTol: { atol: 0, rtol: 0 },
          ref: (x) => ({ out: f.ref(x.packed!, n) }),
          gpu: (ctx, x) => {
            const out = ctx.empty([n]);
            f.op(ctx, out, x.packed!);
            return { out };
          },
        });
      });
    }

    it(`${f.name}: every one of the 65536 bit patterns (odd n) matches half.ts, incl. ±0, subnormals, ±Inf, NaN`, async () => {
      const ctx = await testContext();
      const halves = new Uint16Array(65_537);
      for (let i = 0; i < 65_536; i++) halves[i] = i;
      halves[65_536] = 0x8001; // the odd last value sits alone in the low half of the last word
      const got = await gpuUnpack(ctx, f.op, halves);
      expect(firstMismatch(halves, got, f.toF32)).toBeUndefined();
    });
  }

  it('named special values', async () => {
    const ctx = await testContext();
    const f16 = Uint16Array.of(0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xffff);
    const got16 = await gpuUnpack(ctx, unpackF16, f16);
    const max16 = 65504;
    expect(Array.from(got16.subarray(0, 10))).toEqual([0, -0, 2 ** -24, -(2 ** -24), 1023 * 2 ** -24, 2 ** -14, max16, -max16, Infinity, -Infinity]);
    expect(Object.is(got16[1], -0)).toBe(true);
    expect(Array.from(got16.subarray(10)).every(Number.isNaN)).toBe(true);

    const bf16 = Uint16Array.of(0x0000, 0x8000, 0x0001, 0x007f, 0x0080, 0x7f7f, 0xff7f, 0x7f80, 0xff80, 0x3f80, 0x7fc0, 0x7f81, 0xffff);
    const got = await gpuUnpack(ctx, unpackBf16, bf16);
    const maxBf16 = (2 - 2 ** -7) * 2 ** 127;
    expect(Array.from(got.subarray(0, 10))).toEqual([0, -0, 2 ** -133, 127 * 2 ** -133, 2 ** -126, maxBf16, -maxBf16, Infinity, -Infinity, 1]);
    expect(Object.is(got[1], -0)).toBe(true);
    expect(Array.from(got.subarray(10)).every(Number.isNaN)).toBe(true);
  });

  it('size mismatches throw plain Errors naming the op', async () => {
    const ctx = await testContext();
    const out = ctx.empty([5]);
    const packed = ctx.zeros([2], 'u32');
    const wrong = ctx.zeros([3]);
    expect(() => unpackF16(ctx, out, packed)).toThrow(/unpackF16: 5 values need 3 u32 words/);
    expect(() => unpackBf16(ctx, out, wrong)).toThrow(/unpackBf16: packed must be a u32 tensor/);
    for (const t of [out, packed, wrong]) t.release();
  });
});
