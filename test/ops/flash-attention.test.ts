// The tiled (flash) attention kernels against the float64 reference. Both variants run here: the one this
// adapter uses (register-blocked on SwiftShader, tiled on GPUs) on every case, the other on the cases whose
// head dim is 16 plus the largest head dim and odd blocks (every head dim and block size is a compile of three
// kernels, seconds each on SwiftShader, so the two share head dims where they can).
import { describe, expect, it } from 'vitest';
import { EMPTY_ROW_LSE, attentionBackward, attentionForward } from '../../bench/row-attention';
import {
  flashAttentionBackward,
  flashAttentionConfig,
  flashAttentionForward,
  flashAttentionVariant,
  type FlashAttentionConfig,
  type FlashVariant,
} from '../../src/engine/ops/flash-attention';
import { attentionBackwardRef, attentionForwardRef, type AttentionShape } from '../../src/engine/ref/attention';
import type { GpuContext } from '../../src/engine/context';
import { checkOp, expectClose } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

interface AttnCase extends AttentionShape {
  name: string;
  /** keyMask[b][s], or null for no mask. */
  mask?: (b: number, s: number) => number;
  /** Standard deviation of q (larger: peakier softmax). */
  qScale?: number;
  fdSamples?: number;
  /** Block sizes other than the adapter's (for both variants unless `variants` narrows). */
  config?: Partial<FlashAttentionConfig>;
  /** Run both variants (default: only when D is 16); one variant only when given. */
  variants?: FlashVariant[];
}

// The default blocks the boundary cases below straddle (asserted in a test of their own):
//   register: 16 query rows per workgroup (16 keys per dk/dv workgroup), steps of 16;
//   tiled: forward BR 32 × BC 32, dq BR 32 × BC 16, dk/dv BC 32 × BR 16.
const CASES: AttnCase[] = [
  // The cases of attention.test.ts.
  { name: 'tiny decode step B1 T1 S3 H1 D2', B: 1, T: 1, S: 3, H: 1, Hkv: 1, D: 2 },
  { name: 'tiny-llama B2 T20 H4 Hkv2 D16', B: 2, T: 20, S: 20, H: 4, Hkv: 2, D: 16 },
  { name: 'odd B2 T13 H6 Hkv3 D8', B: 2, T: 13, S: 13, H: 6, Hkv: 3, D: 8, qScale: 3 },
  { name: 'MHA B2 T9 H3 Hkv3 D12', B: 2, T: 9, S: 9, H: 3, Hkv: 3, D: 12 },
  { name: 'KV cache B2 T5 S17 H4 Hkv1 D16', B: 2, T: 5, S: 17, H: 4, Hkv: 1, D: 16, mask: (b, s) => (b === 1 && s === 3 ? 0 : 1) },
  { name: 'right padding B3 T11 H4 Hkv2 D16', B: 3, T: 11, S: 11, H: 4, Hkv: 2, D: 16, mask: (b, s) => (s < [11, 7, 3][b]! ? 1 : 0) },
  { name: 'left padding B2 T10 H2 Hkv1 D8', B: 2, T: 10, S: 10, H: 2, Hkv: 1, D: 8, mask: (b, s) => (b === 1 && s < 4 ? 0 : 1) },
  { name: 'wide heads B1 T7 H2 Hkv1 D80', B: 1, T: 7, S: 7, H: 2, Hkv: 1, D: 80 },
  { name: 'long B1 T300 H2 Hkv1 D64', B: 1, T: 300, S: 300, H: 2, Hkv: 1, D: 64, fdSamples: 2 },
  // Block boundaries: one row / key short of and past a block, for both variants' blocks.
  { name: 'T = 16 − 1: B1 T15 H2 Hkv1 D16', B: 1, T: 15, S: 15, H: 2, Hkv: 1, D: 16, fdSamples: 4 },
  { name: 'T = 16 + 1: B1 T17 H4 Hkv2 D16', B: 1, T: 17, S: 17, H: 4, Hkv: 2, D: 16, fdSamples: 4 },
  { name: 'T = 32 − 1: B1 T31 H2 Hkv1 D16', B: 1, T: 31, S: 31, H: 2, Hkv: 1, D: 16, fdSamples: 4 },
  { name: 'T = 32 + 1: B2 T33 H2 Hkv1 D16, padded', B: 2, T: 33, S: 33, H: 2, Hkv: 1, D: 16, fdSamples: 4, mask: (b, s) => (b === 1 && s >= 30 ? 0 : 1) },
  { name: 'S = 32 + 1 keys for T = 16 − 1 queries: B1 T15 S33 H3 Hkv1 D16', B: 1, T: 15, S: 33, H: 3, Hkv: 1, D: 16, fdSamples: 4 },
  { name: 'T 65 S 65: several blocks both ways, B1 H2 Hkv2 D16', B: 1, T: 65, S: 65, H: 2, Hkv: 2, D: 16, fdSamples: 2 },
  // The largest head dim. (Head dims that are not a multiple of 4: D 2 above, D 10 below.)
  // (Tiled blocks shrink to fit 32 KiB of workgroup memory at D 128.)
  { name: 'head dim 128: B1 T19 S23 H4 Hkv2 D128', B: 1, T: 19, S: 23, H: 4, Hkv: 2, D: 128, fdSamples: 4, variants: ['register', 'tiled'] },
  // Tiled blocks of odd sizes (neither a multiple of each other nor of the thread split), odd head dim.
  {
    name: 'odd tiled blocks B2 T23 S29 H4 Hkv2 D10',
    B: 2,
    T: 23,
    S: 29,
    H: 4,
    Hkv: 2,
    D: 10,
    fdSamples: 4,
    mask: (b, s) => (b === 1 && s % 5 === 2 ? 0 : 1),
    variants: ['tiled'],
    config: { forward: { BR: 5, BC: 6, TPR: 3 }, dq: { BR: 7, BC: 4, TPR: 2 }, dkdv: { BR: 9, BC: 3, TPR: 3 } },
  },
];

const VARIANTS: FlashVariant[] = ['register', 'tiled'];

/** The variants a case runs: this adapter's first. */
function variantsOf(ctx: GpuContext, c: AttnCase): FlashVariant[] {
  const mine = flashAttentionVariant(ctx);
  const other: FlashVariant = mine === 'register' ? 'tiled' : 'register';
  return c.variants ?? (c.D === 16 ? [mine, other] : [mine]);
}

function maskData(c: AttnCase): Float64Array | null {
  if (!c.mask) return null;
  const m = new Float64Array(c.B * c.S);
  for (let b = 0; b < c.B; b++) for (let s = 0; s < c.S; s++) m[b * c.S + s] = c.mask(b, s);
  return m;
}

describe('flash attention', () => {
  for (const c of CASES) {
    it(`forward and backward: ${c.name}`, async () => {
      const ctx = await testContext();
      const rng = new Rng(c.B * 7 + c.T * 131 + c.S * 3 + c.H * 17 + c.D);
      const qShape = [c.B, c.T, c.H, c.D];
      const kShape = [c.B, c.S, c.Hkv, c.D];
      const nq = c.B * c.T * c.H * c.D;
      const nk = c.B * c.S * c.Hkv * c.D;
      const scale = 1 / Math.sqrt(c.D);
      const mask = maskData(c);
      const inputs: Parameters<typeof checkOp>[1]['inputs'] = {
        q: { shape: qShape, data: rng.tensor(nq, c.qScale ?? 1) },
        k: { shape: kShape, data: rng.tensor(nk) },
        v: { shape: kShape, data: rng.tensor(nk) },
      };
      if (mask) inputs.keyMask = { shape: [c.B, c.S], data: mask, dtype: 'i32', grad: false };
      const variants = variantsOf(ctx, c);
      for (const [i, variant] of variants.entries()) {
        const config = { ...c.config, variant };
        await checkOp(ctx, {
          name: `flash attention (${variant}) ${c.name}`,
          inputs,
          fdSamples: c.fdSamples ?? 16,
          // The finite differences only check the float64 reference: once per case is enough.
          skipFiniteDifferences: i > 0,
          ref: (x) => attentionForwardRef(x.q!, x.k!, x.v!, x.keyMask ?? null, c, scale),
          gpu: (ctx, x) => {
            const out = ctx.empty(qShape);
            const lse = ctx.empty([c.B, c.H, c.T]);
            flashAttentionForward(ctx, out, lse, x.q!, x.k!, x.v!, x.keyMask ?? null, scale, config);
            return { out, lse };
          },
          gradOutputs: ['out'],
          refBackward: (x, d) => {
            const { dq, dk, dv } = attentionBackwardRef(d.out!, x.q!, x.k!, x.v!, x.keyMask ?? null, c, scale);
            return { q: dq, k: dk, v: dv };
          },
          gpuBackward: (ctx, x, o, d) => {
            const dq = ctx.zeros(qShape);
            const dk = ctx.zeros(kShape);
            const dv = ctx.zeros(kShape);
            flashAttentionBackward(ctx, dq, dk, dv, d.out!, x.q!, x.k!, x.v!, o.out!, o.lse!, x.keyMask ?? null, scale, config);
            return { q: dq, k: dk, v: dv };
          },
        });
      }
    });
  }

  it('the boundary cases straddle the default blocks; SwiftShader gets the register variant', async () => {
    const ctx = await testContext();
    const tiled = flashAttentionConfig(ctx, 16, { variant: 'tiled' });
    expect(tiled.forward).toEqual({ BR: 32, BC: 32, TPR: 4 });
    expect(tiled.dq).toEqual({ BR: 32, BC: 16, TPR: 4 });
    expect(tiled.dkdv).toEqual({ BR: 16, BC: 32, TPR: 4 });
    const register = flashAttentionConfig(ctx, 16, { variant: 'register' });
    expect(register.forward).toEqual({ BR: 16, BC: 16, TPR: 1 });
    expect(register.dq).toEqual({ BR: 16, BC: 16, TPR: 1 });
    expect(register.dkdv).toEqual({ BR: 16, BC: 16, TPR: 1 });
    if (ctx.adapter.architecture === 'swiftshader') expect(flashAttentionVariant(ctx)).toBe('register');
    // Head dim 128 does not fit 32-wide tiled blocks in 32 KiB of workgroup memory: they shrink to fit.
    const wide = flashAttentionConfig(ctx, 128, { variant: 'tiled' });
    expect(wide.forward.BR * wide.forward.BC).toBeLessThan(32 * 32);
    expect(() => flashAttentionConfig(ctx, 16, { variant: 'tiled', forward: { BR: 8, BC: 6, TPR: 4 } })).toThrow(/invalid blocks/);
    expect(() => flashAttentionConfig(ctx, 16, { variant: 'register', forward: { BR: 16, BC: 32, TPR: 1 } })).toThrow(/invalid blocks/);
  });

  it('agrees with the straightforward kernels on a random case (both variants)', async () => {
    const ctx = await testContext();
    const rng = new Rng(99);
    const s: AttentionShape = { B: 2, T: 45, S: 52, H: 6, Hkv: 2, D: 16 };
    const qShape = [s.B, s.T, s.H, s.D];
    const kShape = [s.B, s.S, s.Hkv, s.D];
    const up = (shape: number[], n: number, sd = 1) => ctx.upload(shape, Float32Array.from(rng.tensor(n, sd)));
    const q = up(qShape, 2 * 45 * 6 * 16, 2);
    const k = up(kShape, 2 * 52 * 2 * 16);
    const v = up(kShape, 2 * 52 * 2 * 16);
    const dOut = up(qShape, 2 * 45 * 6 * 16);
    const maskd = Int32Array.from({ length: 2 * 52 }, (_, i) => (i >= 52 + 40 || i % 11 === 4 ? 0 : 1));
    const keyMask = ctx.upload([2, 52], maskd);
    const scale = 0.2;
    const run = async (fwd: typeof attentionForward, bwd: typeof attentionBackward) => {
      const o = { out: ctx.empty(qShape), lse: ctx.empty([s.B, s.H, s.T]), dq: ctx.zeros(qShape), dk: ctx.zeros(kShape), dv: ctx.zeros(kShape) };
      fwd(ctx, o.out, o.lse, q, k, v, keyMask, scale);
      bwd(ctx, o.dq, o.dk, o.dv, dOut, q, k, v, o.out, o.lse, keyMask, scale);
      const got: Record<string, Float32Array> = {};
      for (const [name, t] of Object.entries(o)) {
        got[name] = await ctx.readF32(t);
        t.release();
      }
      return got;
    };
    const want = await run(attentionForward, attentionBackward);
    for (const variant of VARIANTS) {
      const got = await run(
        (ctx, out, lse, q, k, v, m, sc) => flashAttentionForward(ctx, out, lse, q, k, v, m, sc, { variant }),
        (ctx, dq, dk, dv, dO, q, k, v, out, lse, m, sc) => flashAttentionBackward(ctx, dq, dk, dv, dO, q, k, v, out, lse, m, sc, { variant }),
      );
      expectClose(`${variant} out`, got.out!, want.out!, { atol: 1e-5, rtol: 1e-4 });
      expectClose(`${variant} lse`, got.lse!, want.lse!, { atol: 1e-5, rtol: 1e-4 });
      for (const g of ['dq', 'dk', 'dv']) expectClose(`${variant} ${g}`, got[g]!, want[g]!, { atol: 1e-4, rtol: 1e-3 });
    }
    for (const t of [q, k, v, dOut, keyMask]) t.release();
  });

  async function tinyCase(ctx: GpuContext, variant: FlashVariant): Promise<void> {
    const shape = [1, 1, 1, 2];
    const q = ctx.upload(shape, Float32Array.from([0.5, -1.5]));
    const k = ctx.upload(shape, Float32Array.from([2, 0.25]));
    const v = ctx.upload(shape, Float32Array.from([-3, 7]));
    const out = ctx.empty(shape);
    const lse = ctx.empty([1, 1, 1]);
    flashAttentionForward(ctx, out, lse, q, k, v, null, Math.SQRT1_2, { variant });
    expect(Array.from(await ctx.readF32(out))).toEqual([-3, 7]);
    expectClose('lse', await ctx.readF32(lse), [Math.SQRT1_2 * (0.5 * 2 - 1.5 * 0.25)], { atol: 1e-6, rtol: 1e-6 });
    const dOut = ctx.upload(shape, Float32Array.from([0.75, -2]));
    const [dq, dk, dv] = [ctx.zeros(shape), ctx.zeros(shape), ctx.zeros(shape)];
    flashAttentionBackward(ctx, dq, dk, dv, dOut, q, k, v, out, lse, null, Math.SQRT1_2, { variant });
    expectClose('dq', await ctx.readF32(dq), [0, 0], { atol: 1e-6, rtol: 0 });
    expectClose('dk', await ctx.readF32(dk), [0, 0], { atol: 1e-6, rtol: 0 });
    expect(Array.from(await ctx.readF32(dv))).toEqual([0.75, -2]);
    for (const t of [q, k, v, out, lse, dOut, dq, dk, dv]) t.release();
  }

  it('tiny B1 T1 S1 H1 D2: out = v, lse = score, dv += dOut, dq = dk = 0', async () => {
    const ctx = await testContext();
    await tinyCase(ctx, flashAttentionVariant(ctx));
  });

  for (const variant of VARIANTS) {

    it(`(${variant}) a query with no visible key: out exactly 0, lse EMPTY_ROW_LSE, zero dq; gradients accumulate`, async () => {
      const ctx = await testContext();
      const rng = new Rng(4242);
      const D = 16;
      const s: AttentionShape = { B: 1, T: 6, S: 6, H: 2, Hkv: 1, D };
      const qShape = [1, 6, 2, D];
      const kShape = [1, 6, 1, D];
      const nq = 12 * D;
      const nk = 6 * D;
      const qd = rng.tensor(nq);
      const kd = rng.tensor(nk);
      const vd = rng.tensor(nk);
      const dOd = rng.tensor(nq);
      const maskd = [0, 0, 1, 1, 0, 1]; // queries 0 and 1 see only padding
      const q = ctx.upload(qShape, Float32Array.from(qd));
      const k = ctx.upload(kShape, Float32Array.from(kd));
      const v = ctx.upload(kShape, Float32Array.from(vd));
      const dOut = ctx.upload(qShape, Float32Array.from(dOd));
      const keyMask = ctx.upload([6], Int32Array.from(maskd)); // flat [B·S], as a training batch uploads it
      const out = ctx.empty(qShape);
      const lse = ctx.empty([1, 2, 6]);
      flashAttentionForward(ctx, out, lse, q, k, v, keyMask, 0.25, { variant });
      const gotOut = await ctx.readF32(out);
      const gotLse = await ctx.readF32(lse);
      for (const h of [0, 1]) {
        for (const t of [0, 1]) {
          expect(gotLse[h * 6 + t]).toBe(Math.fround(EMPTY_ROW_LSE));
          for (let d = 0; d < D; d++) expect(gotOut[(t * 2 + h) * D + d]).toBe(0);
        }
        expect(Number.isFinite(gotLse[h * 6 + 2]!) && gotLse[h * 6 + 2]! > -1e3).toBe(true);
      }

      // Two backward calls into non-zero gradients add twice the gradient.
      const init = { q: rng.tensor(nq), k: rng.tensor(nk), v: rng.tensor(nk) };
      const dq = ctx.upload(qShape, Float32Array.from(init.q));
      const dk = ctx.upload(kShape, Float32Array.from(init.k));
      const dv = ctx.upload(kShape, Float32Array.from(init.v));
      for (let i = 0; i < 2; i++) flashAttentionBackward(ctx, dq, dk, dv, dOut, q, k, v, out, lse, keyMask, 0.25, { variant });
      const ref = attentionBackwardRef(dOd, qd, kd, vd, maskd, s, 0.25);
      const tol = { atol: 1e-4, rtol: 1e-3 };
      const gotDq = await ctx.readF32(dq);
      expectClose('dq', gotDq, init.q.map((x, i) => x + 2 * ref.dq[i]!), tol);
      expectClose('dk', await ctx.readF32(dk), init.k.map((x, i) => x + 2 * ref.dk[i]!), tol);
      expectClose('dv', await ctx.readF32(dv), init.v.map((x, i) => x + 2 * ref.dv[i]!), tol);
      for (let i = 0; i < 4 * D; i++) expect(gotDq[i]).toBe(Math.fround(init.q[i]!)); // queries 0 and 1: untouched
      for (const t of [q, k, v, dOut, keyMask, out, lse, dq, dk, dv]) t.release();
    });
  }

  it('rejects mismatched shapes', async () => {
    const ctx = await testContext();
    const q = ctx.empty([2, 5, 4, 8]);
    const k = ctx.empty([2, 5, 2, 8]);
    const out = ctx.empty([2, 5, 4, 8]);
    const lse = ctx.empty([2, 4, 5]);
    const fwd = (o: Parameters<typeof attentionForward>): (() => void) => () => flashAttentionForward(...o);
    expect(fwd([ctx, out, lse, q, k, k, null, 0.1])).not.toThrow();
    expect(fwd([ctx, out, lse, q, ctx.empty([2, 5, 3, 8]), ctx.empty([2, 5, 3, 8]), null, 0.1])).toThrow(/multiple of Hkv/);
    expect(fwd([ctx, out, lse, q, ctx.empty([2, 5, 2, 4]), ctx.empty([2, 5, 2, 4]), null, 0.1])).toThrow(/flashAttentionForward.*k \[2, 5, 2, 4\]/);
    expect(fwd([ctx, out, lse, q, ctx.empty([2, 4, 2, 8]), ctx.empty([2, 4, 2, 8]), null, 0.1])).toThrow(/S 4 < T 5/);
    expect(fwd([ctx, out, ctx.empty([2, 5, 4]), q, k, k, null, 0.1])).toThrow(/lse/);
    expect(fwd([ctx, out, lse, q, k, k, ctx.empty([2, 4], 'i32'), 0.1])).toThrow(/keyMask/);
    expect(fwd([ctx, out, lse, q, k, k, ctx.empty([2, 5]), 0.1])).toThrow(/keyMask/);
    expect(fwd([ctx, q, lse, q, k, k, null, 0.1])).toThrow(/different/);
    const wide = ctx.empty([1, 2, 1, 136]);
    expect(fwd([ctx, ctx.empty([1, 2, 1, 136]), ctx.empty([1, 1, 2]), wide, wide, wide, null, 0.1])).toThrow(/head dim 136 above 128/);
    expect(() => flashAttentionBackward(ctx, q, k, ctx.empty([2, 5, 2, 8]), out, q, k, k, out, lse, null, 0.1)).toThrow(/different/);
    expect(() => flashAttentionBackward(ctx, out, k, k, out, q, k, k, out, lse, null, 0.1)).toThrow(/different/);
    await ctx.sync();
  });
});
