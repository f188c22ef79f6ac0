import { describe, expect, it } from 'vitest';
import { add, addInPlace, scale, scaleInPlace } from '../../src/engine/ops/elementwise';
import { addRef, scaleRef } from '../../src/engine/ref/elementwise';
import { checkOp, expectClose } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

const SHAPES = [[1], [7, 13], [3, 70001]];
const ALPHA = -0.7071;

describe('elementwise', () => {
  for (const shape of SHAPES) {
    const n = shape.reduce((a, b) => a * b, 1);

    it(`add and addInPlace (as add's backward) on [${shape.join('×')}]`, async () => {
      const ctx = await testContext();
      const rng = new Rng(n);
      await checkOp(ctx, {
        name: `add [${shape}]`,
        inputs: { a: { shape, data: rng.tensor(n) }, b: { shape, data: rng.tensor(n, 3) } },
        ref: (x) => ({ out: addRef(x.a!, x.b!) }),
        gpu: (ctx, x) => {
          const out = ctx.empty(shape);
          add(ctx, out, x.a!, x.b!);
          return { out };
        },
        refBackward: (_x, d) => ({ a: d.out!, b: d.out! }),
        gpuBackward: (ctx, _x, _out, d) => {
          const da = ctx.zeros(shape);
          const db = ctx.zeros(shape);
          addInPlace(ctx, da, d.out!);
          addInPlace(ctx, db, d.out!);
          return { a: da, b: db };
        },
      });
    });

    it(`addInPlace on [${shape.join('×')}]`, async () => {
      const ctx = await testContext();
      const rng = new Rng(n + 1);
      await checkOp(ctx, {
        name: `addInPlace [${shape}]`,
        inputs: { acc: { shape, data: rng.tensor(n) }, x: { shape, data: rng.tensor(n) } },
        ref: (x) => ({ out: addRef(x.acc!, x.x!) }),
        gpu: (ctx, x) => {
          const acc = ctx.empty(shape);
          ctx.copy(x.acc!, acc);
          addInPlace(ctx, acc, x.x!);
          return { out: acc };
        },
      });
    });

    it(`scale and scaleInPlace on [${shape.join('×')}]`, async () => {
      const ctx = await testContext();
      const rng = new Rng(n + 2);
      await checkOp(ctx, {
        name: `scale [${shape}]`,
        inputs: { x: { shape, data: rng.tensor(n) } },
        ref: (x) => ({ out: scaleRef(x.x!, ALPHA), inPlace: scaleRef(x.x!, ALPHA * ALPHA) }),
        gpu: (ctx, x) => {
          const out = ctx.empty(shape);
          scale(ctx, out, x.x!, ALPHA);
          const inPlace = ctx.empty(shape);
          ctx.copy(out, inPlace);
          scaleInPlace(ctx, inPlace, ALPHA);
          return { out, inPlace };
        },
        gradOutputs: ['out'],
        refBackward: (_x, d) => ({ x: scaleRef(d.out!, ALPHA) }),
        gpuBackward: (ctx, _x, _out, d) => {
          // dx += alpha·dOut, composed from scale and addInPlace.
          const dx = ctx.zeros(shape);
          const t = ctx.empty(shape);
          scale(ctx, t, d.out!, ALPHA);
          addInPlace(ctx, dx, t);
          t.release();
          return { x: dx };
        },
      });
    });
  }

  it('a 2-D grid (more than 65535 workgroups) reaches every element', async () => {
    const ctx = await testContext();
    const n = 65535 * 256 + 77;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (i % 2001) - 1000;
    const x = ctx.upload([n], data);
    scaleInPlace(ctx, x, 0.5);
    const got = await ctx.readF32(x);
    let bad = 0;
    for (let i = 0; i < n; i++) if (got[i] !== data[i]! * 0.5) bad++;
    expect(bad).toBe(0);
    x.release();
  });

  it('aliasing and mismatches throw plain Errors naming the op', async () => {
    const ctx = await testContext();
    const a = ctx.zeros([4, 3]);
    const b = ctx.zeros([12]);
    const c = ctx.zeros([5]);
    expect(() => add(ctx, a, a, b)).toThrow(/add: out and a are the same buffer; use addInPlace/);
    expect(() => add(ctx, a, b, c)).toThrow(/add: element counts differ: out \[4, 3\], a \[12\], b \[5\]/);
    expect(() => addInPlace(ctx, a, a)).toThrow(/addInPlace/);
    expect(() => scale(ctx, a, b, NaN)).toThrow(/scale: alpha NaN/);
    add(ctx, a, b, b); // equal element counts with different shapes are fine
    expectClose('add of zeros', await ctx.readF32(a), new Float64Array(12), { atol: 0, rtol: 0 });
    for (const t of [a, b, c]) t.release();
  });
});
