import { describe, expect, it } from 'vitest';
import { createRopeTable, ropeBackward, ropeForward, ropeInvFreq, type RopeScaling, type RopeTable } from '../../src/engine/ops/rope';
import { ropeBackwardRef, ropeForwardRef } from '../../src/engine/ref/rope';
import type { GpuContext } from '../../src/engine/context';
import { checkOp, expectClose } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

const LLAMA3: RopeScaling = { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };

interface RopeCase {
  name: string;
  B: number;
  T: number;
  H: number;
  D: number;
  theta: number;
  scaling?: RopeScaling;
  maxPositions: number;
  positions: (b: number, t: number, rng: Rng) => number;
  inPlace?: boolean;
  /** Upload positions flat, [B·T], as a training batch does. */
  flatPositions?: boolean;
}

const CASES: RopeCase[] = [
  { name: 'tiny B1 T1 H1 D2', B: 1, T: 1, H: 1, D: 2, theta: 10000, maxPositions: 8, positions: () => 3 },
  // Row 1 starts at position 100, as a batch row continuing a long document would.
  { name: 'B2 T7 H3 D16, offset rows', B: 2, T: 7, H: 3, D: 16, theta: 10000, maxPositions: 128, positions: (b, t) => b * 100 + t },
  // Positions beyond the original 8192 context and across the whole low/medium/high frequency range.
  {
    name: 'llama3 scaling, B2 T5 H4 D64, random positions up to 16k',
    B: 2,
    T: 5,
    H: 4,
    D: 64,
    theta: 500000,
    scaling: LLAMA3,
    maxPositions: 16384,
    positions: (_b, _t, rng) => rng.int(0, 16384),
  },
  { name: 'odd B1 T13 H5 D16, in place, flat positions', B: 1, T: 13, H: 5, D: 16, theta: 10000, maxPositions: 64, positions: (_b, t) => 40 + t, inPlace: true, flatPositions: true },
  // 153 600 pairs: 600 workgroups.
  { name: 'B2 T300 H8 D64', B: 2, T: 300, H: 8, D: 64, theta: 10000, maxPositions: 1024, positions: (b, t) => b * 517 + t },
];

async function runCase(ctx: GpuContext, c: RopeCase): Promise<void> {
  const rng = new Rng(c.B * 131 + c.T * 17 + c.H * 5 + c.D);
  const shape = [c.B, c.T, c.H, c.D];
  const n = c.B * c.T * c.H * c.D;
  const pos = new Float64Array(c.B * c.T);
  for (let b = 0; b < c.B; b++) for (let t = 0; t < c.T; t++) pos[b * c.T + t] = c.positions(b, t, rng);
  const inv = ropeInvFreq(c.D, c.theta, c.scaling);
  const dims = { B: c.B, T: c.T, H: c.H, D: c.D };
  const table = createRopeTable(ctx, c.D, c.maxPositions, c.theta, c.scaling);
  try {
    await checkOp(ctx, {
      name: `rope ${c.name}`,
      inputs: {
        x: { shape, data: rng.tensor(n) },
        positions: { shape: c.flatPositions ? [c.B * c.T] : [c.B, c.T], data: pos, dtype: 'i32', grad: false },
      },
      ref: (x) => ({ out: ropeForwardRef(x.x!, x.positions!, dims, inv) }),
      gpu: (ctx, x) => {
        const out = ctx.empty(shape);
        if (c.inPlace) {
          ctx.copy(x.x!, out);
          ropeForward(ctx, out, out, x.positions!, table);
        } else {
          ropeForward(ctx, out, x.x!, x.positions!, table);
        }
        return { out };
      },
      refBackward: (x, d) => ({ x: ropeBackwardRef(d.out!, x.positions!, dims, inv) }),
      gpuBackward: (ctx, x, _out, d) => {
        const dx = ctx.zeros(shape);
        ropeBackward(ctx, dx, d.out!, x.positions!, table);
        return { x: dx };
      },
    });
  } finally {
    table.cos.release();
    table.sin.release();
  }
}

describe('ropeInvFreq', () => {
  it('default: 1 / theta^(2i/d)', () => {
    const inv = ropeInvFreq(16, 10000);
    expect(inv.length).toBe(8);
    expect(inv[0]).toBe(1);
    expect(inv[2]).toBeCloseTo(0.1, 15); // 10000^(−4/16)
    expect(inv[4]).toBeCloseTo(0.01, 15); // 10000^(−8/16)
    expect(inv[6]).toBeCloseTo(0.001, 15); // 10000^(−12/16)
    for (let i = 0; i < 8; i++) expect(inv[i]).toBeCloseTo(Math.pow(10000, -(2 * i) / 16), 15);
  });

  it('llama3 (factor 32, low 1, high 4, original 8192, theta 500000, D 64) matches HF _compute_llama3_parameters', () => {
    const inv = ropeInvFreq(64, 500000, LLAMA3);
    // Worked by hand from the HF rule: inv0 = 500000^(−2i/64), wavelen = 2π/inv0;
    // wavelen < 8192/4 = 2048 → inv0; wavelen > 8192/1 → inv0/32;
    // otherwise s = (8192/wavelen − 1)/3, (1 − s)·inv0/32 + s·inv0.
    const expected: [number, number][] = [
      [0, 1], // wavelen 6.28: high frequency, unchanged
      [1, 0.6636012376960885],
      [13, 0.004839421345719893], // wavelen 1298
      [14, 0.0032114459947525913], // wavelen 1956.5 < 2048: still unchanged
      [15, 0.001290547928209264], // wavelen 2948: s = 0.5929, inv0 = 0.0021311195369119653
      [16, 0.00042955679655936815], // wavelen 4442.9: s = 0.28129, inv0 = 1/sqrt(500000)
      [17, 9.70828780262767e-5], // wavelen 6695: s = 0.07452
      [18, 1.9461638184831125e-5], // wavelen 10089 > 8192: 0.000622772421914596 / 32
      [31, 9.418306725434909e-8], // 3.0138581521391708e-06 / 32
    ];
    expect(inv.length).toBe(32);
    for (const [i, v] of expected) {
      expect(Math.abs(inv[i]! - v) / v, `inv_freq[${i}] = ${inv[i]}, expected ${v}`).toBeLessThan(1e-13);
    }
    // The scaled frequencies never exceed the unscaled ones and decrease monotonically.
    const plain = ropeInvFreq(64, 500000);
    for (let i = 0; i < 32; i++) {
      expect(inv[i]!).toBeLessThanOrEqual(plain[i]!);
      if (i > 0) expect(inv[i]!).toBeLessThan(inv[i - 1]!);
    }
  });

  it('rejects an odd head_dim and bad scaling', () => {
    expect(() => ropeInvFreq(15, 10000)).toThrow(/headDim/);
    expect(() => ropeInvFreq(16, 10000, { ...LLAMA3, highFreqFactor: 1 })).toThrow(/llama3/);
  });
});

describe('rope', () => {
  it('createRopeTable holds cos/sin(p · invFreq) as f32', async () => {
    const ctx = await testContext();
    const table = createRopeTable(ctx, 64, 9000, 500000, LLAMA3);
    const inv = ropeInvFreq(64, 500000, LLAMA3);
    const cos = await ctx.readF32(table.cos);
    const sin = await ctx.readF32(table.sin);
    expect(table.cos.shape).toEqual([9000, 32]);
    const wantCos = new Float64Array(cos.length);
    const wantSin = new Float64Array(sin.length);
    for (let p = 0; p < 9000; p++) {
      for (let i = 0; i < 32; i++) {
        wantCos[p * 32 + i] = Math.cos(p * inv[i]!);
        wantSin[p * 32 + i] = Math.sin(p * inv[i]!);
      }
    }
    expectClose('cos table', cos, wantCos, { atol: 1e-7, rtol: 0 });
    expectClose('sin table', sin, wantSin, { atol: 1e-7, rtol: 0 });
    table.cos.release();
    table.sin.release();
  });

  for (const c of CASES) {
    it(`forward and backward: ${c.name}`, async () => {
      await runCase(await testContext(), c);
    });
  }

  it('backward accumulates into dx', async () => {
    const ctx = await testContext();
    const rng = new Rng(99);
    const shape = [2, 3, 2, 16];
    const table = createRopeTable(ctx, 16, 32, 10000);
    const positions = ctx.upload([2, 3], Int32Array.from([0, 1, 2, 7, 8, 9]));
    const dOut = ctx.upload(shape, Float32Array.from(rng.tensor(192)));
    const base = rng.tensor(192);
    const dx = ctx.upload(shape, Float32Array.from(base));
    ropeBackward(ctx, dx, dOut, positions, table);
    ropeBackward(ctx, dx, dOut, positions, table);
    const got = await ctx.readF32(dx);
    const once = ropeBackwardRef(Float64Array.from(await ctx.readF32(dOut)), [0, 1, 2, 7, 8, 9], { B: 2, T: 3, H: 2, D: 16 }, ropeInvFreq(16, 10000));
    expectClose('dx after two accumulations', got, base.map((v, i) => v + 2 * once[i]!), { atol: 1e-5, rtol: 1e-4 });
    for (const t of [positions, dOut, dx, table.cos, table.sin]) t.release();
  });

  it('a position outside the table gives NaN, not another row', async () => {
    const ctx = await testContext();
    const table: RopeTable = createRopeTable(ctx, 4, 8, 10000);
    const x = ctx.upload([1, 3, 1, 4], Float32Array.from([1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]));
    const positions = ctx.upload([1, 3], Int32Array.from([7, 8, -1]));
    const out = ctx.empty([1, 3, 1, 4]);
    ropeForward(ctx, out, x, positions, table);
    const got = await ctx.readF32(out);
    for (let i = 0; i < 4; i++) expect(Number.isFinite(got[i]!)).toBe(true);
    for (let i = 4; i < 12; i++) expect(Number.isNaN(got[i]!)).toBe(true);
    for (const t of [x, positions, out, table.cos, table.sin]) t.release();
  });

  it('rejects mismatched shapes', async () => {
    const ctx = await testContext();
    const table = createRopeTable(ctx, 16, 8, 10000);
    const x = ctx.empty([2, 3, 4, 16]);
    const pos = ctx.empty([2, 3], 'i32');
    expect(() => ropeForward(ctx, ctx.empty([2, 3, 4, 8]), x, pos, table)).toThrow(/ropeForward/);
    expect(() => ropeForward(ctx, x, ctx.empty([2, 3, 4, 8]), pos, table)).toThrow(/ropeForward.*\[2, 3, 4, 8\]/);
    expect(() => ropeForward(ctx, ctx.empty([2, 3, 4, 16]), x, ctx.empty([3, 2], 'i32'), table)).toThrow(/positions/);
    expect(() => ropeForward(ctx, ctx.empty([2, 3, 4, 16]), x, ctx.empty([2, 3]), table)).toThrow(/positions/);
    expect(() => ropeForward(ctx, ctx.empty([2, 3, 4, 16]), x, ctx.empty([5], 'i32'), table)).toThrow(/positions/);
    expect(() => ropeForward(ctx, ctx.empty([2, 3, 4, 16]), x, ctx.empty([6], 'i32'), table)).not.toThrow();
    expect(() => ropeBackward(ctx, x, x, pos, table)).toThrow(/different/);
  });
});
