import { describe, expect, it } from 'vitest';
import { EMPTY_ROW_LSE, attentionBackward, attentionForward } from '../../bench/row-attention';
import { attentionBackwardRef, attentionForwardRef, type AttentionShape } from '../../src/engine/ref/attention';
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
}

const CASES: AttnCase[] = [
  // (B1 T1 S1 has dq = dk = 0 identically, which checkOp refuses; it has its own test below.)
  { name: 'tiny decode step B1 T1 S3 H1 D2', B: 1, T: 1, S: 3, H: 1, Hkv: 1, D: 2 },
  { name: 'tiny-llama B2 T20 H4 Hkv2 D16', B: 2, T: 20, S: 20, H: 4, Hkv: 2, D: 16 },
  { name: 'odd B2 T13 H6 Hkv3 D8', B: 2, T: 13, S: 13, H: 6, Hkv: 3, D: 8, qScale: 3 },
  { name: 'MHA B2 T9 H3 Hkv3 D12', B: 2, T: 9, S: 9, H: 3, Hkv: 3, D: 12 },
  // Queries are the last 5 of 17 positions; one masked key in the cached part.
  { name: 'KV cache B2 T5 S17 H4 Hkv1 D16', B: 2, T: 5, S: 17, H: 4, Hkv: 1, D: 16, mask: (b, s) => (b === 1 && s === 3 ? 0 : 1) },
  // Right padding as in training batches: row lengths 11, 7 and 3.
  { name: 'right padding B3 T11 H4 Hkv2 D16', B: 3, T: 11, S: 11, H: 4, Hkv: 2, D: 16, mask: (b, s) => (s < [11, 7, 3][b]! ? 1 : 0) },
  // Left padding: the first 4 queries of row 1 see only masked keys (out 0, lse EMPTY_ROW_LSE, no gradient).
  { name: 'left padding B2 T10 H2 Hkv1 D8', B: 2, T: 10, S: 10, H: 2, Hkv: 1, D: 8, mask: (b, s) => (b === 1 && s < 4 ? 0 : 1) },
  // Head dim above the workgroup size (64) and not a power of two.
  { name: 'wide heads B1 T7 H2 Hkv1 D80', B: 1, T: 7, S: 7, H: 2, Hkv: 1, D: 80 },
  // Rows longer than a workgroup: several chunks per row and per key.
  // (The finite differences only check the float64 reference, which the small cases cover; keep them few.)
  { name: 'long B1 T300 H2 Hkv1 D64', B: 1, T: 300, S: 300, H: 2, Hkv: 1, D: 64, fdSamples: 2 },
];

function maskData(c: AttnCase): Float64Array | null {
  if (!c.mask) return null;
  const m = new Float64Array(c.B * c.S);
  for (let b = 0; b < c.B; b++) for (let s = 0; s < c.S; s++) m[b * c.S + s] = c.mask(b, s);
  return m;
}

describe('attention', () => {
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
      await checkOp(ctx, {
        name: `attention ${c.name}`,
        inputs,
        fdSamples: c.fdSamples ?? 16,
        ref: (x) => attentionForwardRef(x.q!, x.k!, x.v!, x.keyMask ?? null, c, scale),
        gpu: (ctx, x) => {
          const out = ctx.empty(qShape);
          const lse = ctx.empty([c.B, c.H, c.T]);
          attentionForward(ctx, out, lse, x.q!, x.k!, x.v!, x.keyMask ?? null, scale);
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
          attentionBackward(ctx, dq, dk, dv, d.out!, x.q!, x.k!, x.v!, o.out!, o.lse!, x.keyMask ?? null, scale);
          return { q: dq, k: dk, v: dv };
        },
      });
    });
  }

  it('tiny B1 T1 S1 H1 D2: out = v, lse = score, dv += dOut, dq = dk = 0', async () => {
    const ctx = await testContext();
    const shape = [1, 1, 1, 2];
    const q = ctx.upload(shape, Float32Array.from([0.5, -1.5]));
    const k = ctx.upload(shape, Float32Array.from([2, 0.25]));
    const v = ctx.upload(shape, Float32Array.from([-3, 7]));
    const out = ctx.empty(shape);
    const lse = ctx.empty([1, 1, 1]);
    attentionForward(ctx, out, lse, q, k, v, null, Math.SQRT1_2);
    expect(Array.from(await ctx.readF32(out))).toEqual([-3, 7]);
    expectClose('lse', await ctx.readF32(lse), [Math.SQRT1_2 * (0.5 * 2 - 1.5 * 0.25)], { atol: 1e-6, rtol: 1e-6 });
    const dOut = ctx.upload(shape, Float32Array.from([0.75, -2]));
    const [dq, dk, dv] = [ctx.zeros(shape), ctx.zeros(shape), ctx.zeros(shape)];
    attentionBackward(ctx, dq, dk, dv, dOut, q, k, v, out, lse, null, Math.SQRT1_2);
    expectClose('dq', await ctx.readF32(dq), [0, 0], { atol: 1e-6, rtol: 0 });
    expectClose('dk', await ctx.readF32(dk), [0, 0], { atol: 1e-6, rtol: 0 });
    expect(Array.from(await ctx.readF32(dv))).toEqual([0.75, -2]);
    for (const t of [q, k, v, out, lse, dOut, dq, dk, dv]) t.release();
  });

  it('a query with no visible key: out exactly 0, lse EMPTY_ROW_LSE, zero dq; gradients accumulate', async () => {
    const ctx = await testContext();
    const rng = new Rng(4242);
    const s: AttentionShape = { B: 1, T: 6, S: 6, H: 2, Hkv: 1, D: 8 };
    const qShape = [1, 6, 2, 8];
    const kShape = [1, 6, 1, 8];
    const qd = rng.tensor(96);
    const kd = rng.tensor(48);
    const vd = rng.tensor(48);
    const dOd = rng.tensor(96);
    const maskd = [0, 0, 1, 1, 0, 1]; // queries 0 and 1 see only padding
    const q = ctx.upload(qShape, Float32Array.from(qd));
    const k = ctx.upload(kShape, Float32Array.from(kd));
    const v = ctx.upload(kShape, Float32Array.from(vd));
    const dOut = ctx.upload(qShape, Float32Array.from(dOd));
    const keyMask = ctx.upload([6], Int32Array.from(maskd)); // flat [B·S], as a training batch uploads it
    const out = ctx.empty(qShape);
    const lse = ctx.empty([1, 2, 6]);
    attentionForward(ctx, out, lse, q, k, v, keyMask, 0.25);
    const gotOut = await ctx.readF32(out);
    const gotLse = await ctx.readF32(lse);
    for (const h of [0, 1]) {
      for (const t of [0, 1]) {
        expect(gotLse[h * 6 + t]).toBe(Math.fround(EMPTY_ROW_LSE));
        for (let d = 0; d < 8; d++) expect(gotOut[(t * 2 + h) * 8 + d]).toBe(0);
      }
      expect(Number.isFinite(gotLse[h * 6 + 2]!) && gotLse[h * 6 + 2]! > -1e3).toBe(true);
    }

    // Two backward calls into non-zero gradients add twice the gradient.
    const init = { q: rng.tensor(96), k: rng.tensor(48), v: rng.tensor(48) };
    const dq = ctx.upload(qShape, Float32Array.from(init.q));
    const dk = ctx.upload(kShape, Float32Array.from(init.k));
    const dv = ctx.upload(kShape, Float32Array.from(init.v));
    for (let i = 0; i < 2; i++) attentionBackward(ctx, dq, dk, dv, dOut, q, k, v, out, lse, keyMask, 0.25);
    const ref = attentionBackwardRef(dOd, qd, kd, vd, maskd, s, 0.25);
    const tol = { atol: 1e-4, rtol: 1e-3 };
    const gotDq = await ctx.readF32(dq);
    expectClose('dq', gotDq, init.q.map((x, i) => x + 2 * ref.dq[i]!), tol);
    expectClose('dk', await ctx.readF32(dk), init.k.map((x, i) => x + 2 * ref.dk[i]!), tol);
    expectClose('dv', await ctx.readF32(dv), init.v.map((x, i) => x + 2 * ref.dv[i]!), tol);
    for (let i = 0; i < 32; i++) expect(gotDq[i]).toBe(Math.fround(init.q[i]!)); // queries 0 and 1: untouched
    for (const t of [q, k, v, dOut, keyMask, out, lse, dq, dk, dv]) t.release();
  });

  it('rejects mismatched shapes', async () => {
    const ctx = await testContext();
    const q = ctx.empty([2, 5, 4, 8]);
    const k = ctx.empty([2, 5, 2, 8]);
    const out = ctx.empty([2, 5, 4, 8]);
    const lse = ctx.empty([2, 4, 5]);
    const fwd = (o: Parameters<typeof attentionForward>): (() => void) => () => attentionForward(...o);
    expect(fwd([ctx, out, lse, q, k, k, null, 0.1])).not.toThrow();
    expect(fwd([ctx, out, lse, q, ctx.empty([2, 5, 3, 8]), ctx.empty([2, 5, 3, 8]), null, 0.1])).toThrow(/multiple of Hkv/);
    expect(fwd([ctx, out, lse, q, ctx.empty([2, 5, 2, 4]), ctx.empty([2, 5, 2, 4]), null, 0.1])).toThrow(/attentionForward.*k \[2, 5, 2, 4\]/);
    expect(fwd([ctx, out, lse, q, ctx.empty([2, 4, 2, 8]), ctx.empty([2, 4, 2, 8]), null, 0.1])).toThrow(/S 4 < T 5/);
    expect(fwd([ctx, out, ctx.empty([2, 5, 4]), q, k, k, null, 0.1])).toThrow(/lse/);
    expect(fwd([ctx, out, lse, q, k, k, ctx.empty([2, 4], 'i32'), 0.1])).toThrow(/keyMask/);
    expect(fwd([ctx, out, lse, q, k, k, ctx.empty([2, 5]), 0.1])).toThrow(/keyMask/);
    expect(fwd([ctx, q, lse, q, k, k, null, 0.1])).toThrow(/different/);
    expect(() => attentionBackward(ctx, q, k, ctx.empty([2, 5, 2, 8]), out, q, k, k, out, lse, null, 0.1)).toThrow(/different/);
    expect(() => attentionBackward(ctx, out, k, k, out, q, k, k, out, lse, null, 0.1)).toThrow(/different/);
  });
});
