// The tiled (flash) attention kernels against the float64 reference. Both variants run here: the one this
// adapter uses (register-blocked on SwiftShader, tiled on GPUs) on every case, the other on the cases whose
// head dim is 16 plus the largest head dim and odd blocks (every head dim and block size is a compile of three
// kernels, seconds each on SwiftShader, so the two share head dims where they can).
import { describe, expect, it } from 'vitest';
import { attentionBackward, attentionForward } from '../../bench/row-attention';
import {
  flashAttentionBackward,
  flashAttentionConfig,
  flashAttentionForward,
  flashAttentionVariant,
  type FlashAttentionConfig,
  type FlashVariant,
} from '../../src/engine/ops/flash-attention';
import type { AttentionShape } from '../../src/engine/ref/attention';
import type { GpuContext } from '../../src/engine/context';
import { expectClose } from '../harness/checkOp';
import {
  ATTENTION_CASES,
  caseInputs,
  checkAttentionCase,
  checkEmptyRows,
  checkSingleKey,
  expectShapeErrors,
  type AttentionKernels,
  type AttnCase,
} from '../helpers/attention';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

interface FlashCase extends AttnCase {
  /** Block sizes other than the adapter's (for both variants unless `variants` narrows). */
  config?: Partial<FlashAttentionConfig>;
  /** Run both variants (default: only when D is 16); one variant only when given. */
  variants?: FlashVariant[];
}

// The default blocks the boundary cases below straddle (asserted in a test of their own):
//   register: 16 query rows per workgroup (16 keys per dk/dv workgroup), steps of 16;
//   tiled: forward BR 32 × BC 32, dq BR 32 × BC 16, dk/dv BC 32 × BR 16.
const CASES: FlashCase[] = [
  // The cases of attention.test.ts.
  ...ATTENTION_CASES,
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
  // Sliding-window attention (Gemma's local layers): windows shorter than a block and spanning blocks, with
  // padding, and over a KV cache (queries the last positions of S).
  { name: 'sliding window 5: B2 T23 H2 Hkv1 D16, padded', B: 2, T: 23, S: 23, H: 2, Hkv: 1, D: 16, window: 5, fdSamples: 4, mask: (b, s) => (b === 1 && s >= 19 ? 0 : 1) },
  { name: 'sliding window 20 over a cache: B1 T5 S41 H4 Hkv2 D16', B: 1, T: 5, S: 41, H: 4, Hkv: 2, D: 16, window: 20, fdSamples: 4 },
  // Gemma 3's head dim (256), sliding, on this adapter's variant.
  { name: 'head dim 256, window 6: B1 T11 S11 H2 Hkv1 D256', B: 1, T: 11, S: 11, H: 2, Hkv: 1, D: 256, window: 6, fdSamples: 2 },
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
function variantsOf(ctx: GpuContext, c: FlashCase): FlashVariant[] {
  const mine = flashAttentionVariant(ctx);
  const other: FlashVariant = mine === 'register' ? 'tiled' : 'register';
  return c.variants ?? (c.D === 16 ? [mine, other] : [mine]);
}

/** The flash kernels of one variant (and blocks, and sliding window), as the checks in test/helpers/attention.ts call them. */
function flash(config?: Partial<FlashAttentionConfig>, window = 0): AttentionKernels {
  return {
    forward: (ctx, out, lse, q, k, v, m, scale) => flashAttentionForward(ctx, out, lse, q, k, v, m, scale, config, window),
    backward: (ctx, dq, dk, dv, dOut, q, k, v, out, lse, m, scale) => flashAttentionBackward(ctx, dq, dk, dv, dOut, q, k, v, out, lse, m, scale, config, window),
  };
}

describe('flash attention', () => {
  for (const c of CASES) {
    it(`forward and backward: ${c.name}`, async () => {
      const ctx = await testContext();
      const inputs = caseInputs(c);
      for (const [i, variant] of variantsOf(ctx, c).entries()) {
        // The finite differences only check the float64 reference: once per case is enough.
        await checkAttentionCase(ctx, c, flash({ ...c.config, variant }, c.window), { name: `flash attention (${variant}) ${c.name}`, inputs, skipFiniteDifferences: i > 0 });
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
    const run = async (kernels: AttentionKernels) => {
      const o = { out: ctx.empty(qShape), lse: ctx.empty([s.B, s.H, s.T]), dq: ctx.zeros(qShape), dk: ctx.zeros(kShape), dv: ctx.zeros(kShape) };
      kernels.forward(ctx, o.out, o.lse, q, k, v, keyMask, scale);
      kernels.backward(ctx, o.dq, o.dk, o.dv, dOut, q, k, v, o.out, o.lse, keyMask, scale);
      const got: Record<string, Float32Array> = {};
      for (const [name, t] of Object.entries(o)) {
        got[name] = await ctx.readF32(t);
        t.release();
      }
      return got;
    };
    const want = await run({ forward: attentionForward, backward: attentionBackward });
    for (const variant of VARIANTS) {
      const got = await run(flash({ variant }));
      expectClose(`${variant} out`, got.out!, want.out!, { atol: 1e-5, rtol: 1e-4 });
      expectClose(`${variant} lse`, got.lse!, want.lse!, { atol: 1e-5, rtol: 1e-4 });
      for (const g of ['dq', 'dk', 'dv']) expectClose(`${variant} ${g}`, got[g]!, want[g]!, { atol: 1e-4, rtol: 1e-3 });
    }
    for (const t of [q, k, v, dOut, keyMask]) t.release();
  });

  it('tiny B1 T1 S1 H1 D2: out = v, lse = score, dv += dOut, dq = dk = 0', async () => {
    const ctx = await testContext();
    await checkSingleKey(ctx, flash({ variant: flashAttentionVariant(ctx) }));
  });

  for (const variant of VARIANTS) {
    it(`(${variant}) a query with no visible key: out exactly 0, lse EMPTY_ROW_LSE, zero dq; gradients accumulate`, async () => {
      await checkEmptyRows(await testContext(), flash({ variant }), 16);
    });
  }

  it('rejects mismatched shapes', async () => {
    const ctx = await testContext();
    const kernels = flash();
    expectShapeErrors(ctx, kernels, 'flashAttentionForward');
    const wide = ctx.empty([1, 2, 1, 264]);
    expect(() => kernels.forward(ctx, ctx.empty([1, 2, 1, 264]), ctx.empty([1, 1, 2]), wide, wide, wide, null, 0.1)).toThrow(/head dim 264 above 256/);
    const q = ctx.empty([1, 2, 1, 8]);
    expect(() => flashAttentionForward(ctx, ctx.empty([1, 2, 1, 8]), ctx.empty([1, 1, 2]), q, q, q, null, 0.1, undefined, -1)).toThrow(/sliding window must be a whole number/);
    await ctx.sync();
  });
});
