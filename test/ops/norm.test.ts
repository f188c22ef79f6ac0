import { describe, expect, it } from 'vitest';
import { sizeClass } from '../../src/engine/context';
import { layernormBackward, layernormForward, rmsnormBackward, rmsnormForward } from '../../src/engine/ops/norm';
import { layernormBackwardRef, layernormForwardRef, rmsnormBackwardRef, rmsnormForwardRef } from '../../src/engine/ref/norm';
import { checkOp, expectClose } from '../harness/checkOp';
import { testContext, withGridLimit } from '../helpers/gpu';
import { Rng } from '../helpers/rng';
import type { Tensor } from '../../src/engine/tensor';

// [rows, C, eps]: C = 1, odd widths, Llama/Qwen hidden sizes, per-head norms (rows = tokens × heads with
// C = head_dim 16..128, several rows per workgroup), many rows (several blocks in the dWeight reduction,
// the last one partial).
const cases: [number, number, number][] = [
  [1, 1, 1e-5],
  [5, 1, 1e-6],
  [3, 7, 1e-6],
  [5, 176, 1e-5],
  [4, 1000, 1e-6],
  [3, 4864, 1e-5],
  [2000, 64, 1e-5],
  [12 * 16, 16, 1e-6],
  [9 * 8, 128, 1e-6],
  [301, 257, 1e-5],
];
// Shapes run with the device's grid limit lowered (see withGridLimit), so that they need a 2-D grid with
// more workgroups than rows: [rows, C, eps, limit].
const gridCases: [number, number, number, number][] = [
  [300, 64, 1e-5, 7],
  [301, 16, 1e-6, 5],
];

/** x ~ N(offset, scale²) with outliers; weights around 1 as in a trained model. */
function inputs(rows: number, C: number, seed: number, offset = 0) {
  const rng = new Rng(seed);
  const x = rng.tensor(rows * C, 1.5).map((v) => Math.fround(v + offset));
  const weight = rng.tensor(C, 0.3).map((v) => Math.fround(1 + v));
  const bias = rng.tensor(C, 0.5);
  return { x, weight, bias };
}

async function checkRms(rows: number, C: number, eps: number, gridLimit?: number, plusOne = false): Promise<void> {
  const base = await testContext();
  const ctx = gridLimit ? withGridLimit(base, gridLimit) : base;
  const shape = [rows, C];
  const { x, weight: w } = inputs(rows, C, rows * 7919 + C);
  // Gemma's (1 + w): the weight is stored as the offset from 1, so small values around 0.
  const weight = plusOne ? w.map((v) => Math.fround(v - 1)) : w;
  const gain = (a: Float64Array) => (plusOne ? a.map((v) => 1 + v) : a);
  const opts = { plusOne };
  await checkOp(ctx, {
    name: `rmsnorm${plusOne ? ' (1 + w)' : ''} [${shape}] eps ${eps}`,
    inputs: { x: { shape, data: x }, weight: { shape: [C], data: weight } },
    ref: (a) => rmsnormForwardRef(a.x!, gain(a.weight!), rows, C, eps),
    gpu: (ctx, t) => {
      const out = ctx.empty(shape);
      const rstd = ctx.empty([rows]);
      rmsnormForward(ctx, out, rstd, t.x!, t.weight!, eps, opts);
      return { out, rstd };
    },
    gradOutputs: ['out'],
    refBackward: (a, d) => {
      const { dx, dWeight } = rmsnormBackwardRef(d.out!, a.x!, gain(a.weight!), rows, C, eps);
      return { x: dx, weight: dWeight };
    },
    gpuBackward: (ctx, t, out, d) => {
      const dx = ctx.zeros(shape);
      const dWeight = ctx.zeros([C]);
      rmsnormBackward(ctx, dx, dWeight, d.out!, t.x!, t.weight!, out.rstd!, opts);
      return { x: dx, weight: dWeight };
    },
    // dWeight sums `rows` terms of size ~1: its absolute error grows like √rows · ε·|term|.
    backwardTol: { atol: 1e-4 * Math.max(1, Math.sqrt(rows / 100)), rtol: 1e-3 },
  });
}

async function checkLayerNorm(rows: number, C: number, eps: number, offset: number, gridLimit?: number): Promise<void> {
  const base = await testContext();
  const ctx = gridLimit ? withGridLimit(base, gridLimit) : base;
  const shape = [rows, C];
  const { x, weight, bias } = inputs(rows, C, rows * 104729 + C, offset);
  // With C = 1, x − mean is 0: out = bias and dx = dWeight = 0 identically, which checkOp refuses as a
  // gradient; that case checks dBias through checkOp and dx, dWeight directly below.
  const degenerate = C === 1;
  await checkOp(ctx, {
    name: `layernorm [${shape}] eps ${eps} offset ${offset}`,
    inputs: {
      x: { shape, data: x, grad: !degenerate },
      weight: { shape: [C], data: weight, grad: !degenerate },
      bias: { shape: [C], data: bias },
    },
    ref: (a) => layernormForwardRef(a.x!, a.weight!, a.bias!, rows, C, eps),
    compare: degenerate ? ['out', 'mean'] : ['out', 'mean', 'rstd'],
    gpu: (ctx, t) => {
      const out = ctx.empty(shape);
      const mean = ctx.empty([rows]);
      const rstd = ctx.empty([rows]);
      layernormForward(ctx, out, mean, rstd, t.x!, t.weight!, t.bias!, eps);
      return { out, mean, rstd };
    },
    gradOutputs: ['out'],
    refBackward: (a, d) => {
      const { dx, dWeight, dBias } = layernormBackwardRef(d.out!, a.x!, a.weight!, rows, C, eps);
      return { x: dx, weight: dWeight, bias: dBias };
    },
    gpuBackward: async (ctx, t, out, d) => {
      const dx = ctx.zeros(shape);
      const dWeight = ctx.zeros([C]);
      const dBias = ctx.zeros([C]);
      layernormBackward(ctx, dx, dWeight, dBias, d.out!, t.x!, t.weight!, out.mean!, out.rstd!);
      if (degenerate) {
        // Expected exactly 0 (x − mean is computed exactly when C = 1).
        expect(Array.from(await ctx.readF32(dx)).every((v) => v === 0), 'dx is 0 when C = 1').toBe(true);
        expect(Array.from(await ctx.readF32(dWeight)).every((v) => v === 0), 'dWeight is 0 when C = 1').toBe(true);
      }
      return { x: dx, weight: dWeight, bias: dBias };
    },
    backwardTol: { atol: 1e-4 * Math.max(1, Math.sqrt(rows / 100)), rtol: 1e-3 },
  });
}

describe('rmsnorm', () => {
  for (const [rows, C, eps] of cases) {
    it(`forward and backward on [${rows}×${C}], eps ${eps}`, () => checkRms(rows, C, eps));
  }
  for (const [rows, C, eps, limit] of gridCases) {
    it(`forward and backward on [${rows}×${C}] on a 2-D grid (limit ${limit} per dimension)`, () => checkRms(rows, C, eps, limit));
  }
  // Gemma: the gain is 1 + weight (its hidden norms, and its per-head q/k norms over head_dim 256).
  for (const [rows, C] of [[7, 37], [33, 256], [5, 640]] as const) {
    it(`(1 + w) forward and backward on [${rows}×${C}]`, () => checkRms(rows, C, 1e-6, undefined, true));
  }
});

describe('layernorm', () => {
  for (const [rows, C, eps] of cases) {
    it(`forward and backward on [${rows}×${C}], eps ${eps}`, () => checkLayerNorm(rows, C, eps, 0));
  }
  it('forward and backward with a large mean (variance about the mean)', () => checkLayerNorm(7, 300, 1e-5, 40));
  for (const [rows, C, eps, limit] of gridCases) {
    it(`forward and backward on [${rows}×${C}] on a 2-D grid (limit ${limit} per dimension)`, () =>
      checkLayerNorm(rows, C, eps, 0, limit));
  }
});

describe('norm backward', () => {
  it('accumulates into dx, dWeight and dBias', async () => {
    const ctx = await testContext();
    const [rows, C, eps] = [70, 24, 1e-5];
    const { x, weight, bias } = inputs(rows, C, 3);
    const rng = new Rng(4);
    const dOutData = rng.tensor(rows * C);
    const priorX = rng.tensor(rows * C);
    const priorW = rng.tensor(C);
    const priorB = rng.tensor(C);
    const xt = ctx.upload([rows, C], Float32Array.from(x));
    const wt = ctx.upload([C], Float32Array.from(weight));
    const bt = ctx.upload([C], Float32Array.from(bias));
    const dOut = ctx.upload([rows, C], Float32Array.from(dOutData));
    const tol = { atol: 2e-4, rtol: 1e-3 };
    const twice = (prior: Float64Array, g: Float64Array) => prior.map((p, i) => p + 2 * g[i]!);

    const out = ctx.empty([rows, C]);
    const rstd = ctx.empty([rows]);
    rmsnormForward(ctx, out, rstd, xt, wt, eps);
    let dx = ctx.upload([rows, C], Float32Array.from(priorX));
    let dW = ctx.upload([C], Float32Array.from(priorW));
    rmsnormBackward(ctx, dx, dW, dOut, xt, wt, rstd);
    rmsnormBackward(ctx, dx, dW, dOut, xt, wt, rstd);
    const rms = rmsnormBackwardRef(dOutData, x, weight, rows, C, eps);
    expectClose('rmsnorm accumulated dx', await ctx.readF32(dx), twice(priorX, rms.dx), tol);
    expectClose('rmsnorm accumulated dWeight', await ctx.readF32(dW), twice(priorW, rms.dWeight), tol);
    dx.release();
    dW.release();

    const mean = ctx.empty([rows]);
    layernormForward(ctx, out, mean, rstd, xt, wt, bt, eps);
    dx = ctx.upload([rows, C], Float32Array.from(priorX));
    dW = ctx.upload([C], Float32Array.from(priorW));
    const dB = ctx.upload([C], Float32Array.from(priorB));
    layernormBackward(ctx, dx, dW, dB, dOut, xt, wt, mean, rstd);
    layernormBackward(ctx, dx, dW, dB, dOut, xt, wt, mean, rstd);
    const ln = layernormBackwardRef(dOutData, x, weight, rows, C, eps);
    expectClose('layernorm accumulated dx', await ctx.readF32(dx), twice(priorX, ln.dx), tol);
    expectClose('layernorm accumulated dWeight', await ctx.readF32(dW), twice(priorW, ln.dWeight), tol);
    expectClose('layernorm accumulated dBias', await ctx.readF32(dB), twice(priorB, ln.dBias), tol);
    for (const t of [xt, wt, bt, dOut, out, rstd, mean, dx, dW, dB]) t.release();
  });

  it('reads nothing past the end of its tensors (dWeight blocks with a partial last block)', async () => {
    // Pooled buffers are rounded up to a size class; here every input's padding is filled with NaN first
    // (a released buffer of the same class is reused), so a kernel that reads past the last row or column
    // turns the results into NaN. 70 rows = blocks of 32 + 32 + 6; C = 24 is not a multiple of 64.
    const ctx = await testContext();
    const [rows, C, eps] = [70, 24, 1e-6];
    const { x, weight, bias } = inputs(rows, C, 9);
    const dOutData = new Rng(10).tensor(rows * C);
    const poisoned = (shape: number[], data?: Float64Array): Tensor => {
      const n = sizeClass(shape.reduce((a, b) => a * b, 1) * 4) / 4;
      const junk = ctx.upload([n], new Float32Array(n).fill(NaN));
      const buffer = junk.buffer;
      junk.release();
      const t = data ? ctx.upload(shape, Float32Array.from(data)) : ctx.empty(shape);
      expect(t.buffer, 'the poisoned buffer is reused').toBe(buffer);
      return t;
    };
    const xt = poisoned([rows, C], x);
    const wt = poisoned([C], weight);
    const bt = poisoned([C], bias);
    const dOut = poisoned([rows, C], dOutData);
    const out = poisoned([rows, C]);
    const mean = poisoned([rows]);
    const rstd = poisoned([rows]);
    const tol = { atol: 1e-4, rtol: 1e-3 };

    rmsnormForward(ctx, out, rstd, xt, wt, eps);
    const rf = rmsnormForwardRef(x, weight, rows, C, eps);
    expectClose('rmsnorm out', await ctx.readF32(out), rf.out, tol);
    let dx = ctx.zeros([rows, C]);
    let dW = ctx.zeros([C]);
    rmsnormBackward(ctx, dx, dW, dOut, xt, wt, rstd);
    const rb = rmsnormBackwardRef(dOutData, x, weight, rows, C, eps);
    expectClose('rmsnorm dx', await ctx.readF32(dx), rb.dx, tol);
    expectClose('rmsnorm dWeight', await ctx.readF32(dW), rb.dWeight, tol);
    dx.release();
    dW.release();

    layernormForward(ctx, out, mean, rstd, xt, wt, bt, eps);
    const lf = layernormForwardRef(x, weight, bias, rows, C, eps);
    expectClose('layernorm out', await ctx.readF32(out), lf.out, tol);
    dx = ctx.zeros([rows, C]);
    dW = ctx.zeros([C]);
    const dB = ctx.zeros([C]);
    layernormBackward(ctx, dx, dW, dB, dOut, xt, wt, mean, rstd);
    const lb = layernormBackwardRef(dOutData, x, weight, rows, C, eps);
    expectClose('layernorm dx', await ctx.readF32(dx), lb.dx, tol);
    expectClose('layernorm dWeight', await ctx.readF32(dW), lb.dWeight, tol);
    expectClose('layernorm dBias', await ctx.readF32(dB), lb.dBias, tol);
    for (const t of [xt, wt, bt, dOut, out, mean, rstd, dx, dW, dB]) t.release();
  });

  it('rejects mismatched shapes', async () => {
    const ctx = await testContext();
    const x = ctx.empty([4, 8]);
    const out = ctx.empty([4, 8]);
    const rstd = ctx.empty([3]);
    const weight = ctx.empty([8]);
    expect(() => rmsnormForward(ctx, out, rstd, x, weight, 1e-5)).toThrow(/rmsnormForward: rstd \[3\] should hold one value per row/);
    const w7 = ctx.empty([7]);
    const mean = ctx.empty([4]);
    const rstd4 = ctx.empty([4]);
    expect(() => layernormForward(ctx, out, mean, rstd4, x, w7, weight, 1e-5)).toThrow(/layernormForward: weight \[7\] should hold C = 8/);
    for (const t of [x, out, rstd, weight, w7, mean, rstd4]) t.release();
  });
});
