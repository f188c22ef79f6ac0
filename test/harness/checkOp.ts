// One harness for every op (after tinygrad's test_ops.py):
//  1. seeded inputs (with outliers) go to the float64 CPU reference and to the GPU kernel;
//     every output must satisfy |gpu − ref| ≤ atol + rtol·|ref|;
//  2. with a random upstream gradient dOut, the reference backward is checked against central finite
//     differences of the reference forward (on the scalar Σ out·dOut), at sampled elements;
//  3. the GPU backward is checked against the reference backward with the same tolerance rule.
// A case whose reference output or gradient is identically zero fails: a test that cannot fail is no test.
import { expect } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import type { Tensor } from '../../src/engine/tensor';
import { Rng } from '../helpers/rng';

export type Arrays = Record<string, Float64Array>;
export type Tensors = Record<string, Tensor>;

export interface InputSpec {
  shape: number[];
  data: Float64Array;
  /** 'i32' inputs (ids, labels) are uploaded as integers and never differentiated. */
  dtype?: 'f32' | 'i32' | 'u32';
  /** Whether the gradient with respect to this input is checked (default: true for f32). */
  grad?: boolean;
}

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface OpCase {
  name: string;
  inputs: Record<string, InputSpec>;
  /** Float64 reference forward. */
  ref: (x: Arrays) => Arrays;
  /** GPU forward; must return a tensor for every output named in `compare` (default: all ref outputs). */
  gpu: (ctx: GpuContext, x: Tensors) => Tensors | Promise<Tensors>;
  /** Which outputs to compare (default: every output of ref). */
  compare?: string[];
  /** Outputs that carry gradient (default: `compare`). */
  gradOutputs?: string[];
  /** Float64 reference backward: gradients of the differentiable inputs, given output gradients. */
  refBackward?: (x: Arrays, dOut: Arrays) => Arrays;
  /** GPU backward; gets the input tensors, the forward's output tensors and the output gradients. */
  gpuBackward?: (ctx: GpuContext, x: Tensors, out: Tensors, dOut: Tensors) => Tensors | Promise<Tensors>;
  forwardTol?: Tolerance;
  backwardTol?: Tolerance;
  /** Elements sampled per input for finite differences (default 16; the largest-magnitude one is always in). */
  fdSamples?: number;
  /** Finite-difference step relative to max(1, |x|) (default 1e-5). */
  fdStep?: number;
  /** Skip finite differences for ops that are not differentiable everywhere at these inputs. */
  skipFiniteDifferences?: boolean;
  seed?: number;
}

const DEFAULT_FWD: Tolerance = { atol: 1e-5, rtol: 1e-4 };
const DEFAULT_BWD: Tolerance = { atol: 1e-4, rtol: 1e-3 };

/** Asserts |actual − expected| ≤ atol + rtol·|expected| everywhere, reporting the worst element. */
export function expectClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let bad = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const excess = Math.abs(a - e) - (tol.atol + tol.rtol * Math.abs(e));
    if (!(excess <= 0)) {
      bad++;
      if (!(excess <= worstExcess)) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  if (bad > 0) {
    throw new Error(
      `${what}: ${bad} of ${expected.length} elements outside atol ${tol.atol} + rtol ${tol.rtol}; worst at [${worst}]: got ${actual[worst]}, expected ${expected[worst]}`,
    );
  }
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function dot(outs: Arrays, dOut: Arrays, names: string[]): number {
  let s = 0;
  for (const n of names) {
    const o = outs[n]!;
    const d = dOut[n]!;
    for (let i = 0; i < o.length; i++) s += o[i]! * d[i]!;
  }
  return s;
}

async function upload(ctx: GpuContext, inputs: Record<string, InputSpec>): Promise<Tensors> {
  const t: Tensors = {};
  for (const [name, spec] of Object.entries(inputs)) {
    const dt = spec.dtype ?? 'f32';
    const data = dt === 'i32' ? Int32Array.from(spec.data) : dt === 'u32' ? Uint32Array.from(spec.data) : Float32Array.from(spec.data);
    t[name] = ctx.upload(spec.shape, data, dt);
  }
  return t;
}

async function readAll(ctx: GpuContext, t: Tensors, names: string[], what: string): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const n of names) {
    const tensor = t[n];
    if (!tensor) throw new Error(`${what} did not return ${n}`);
    const v = await ctx.read(tensor);
    out[n] = v instanceof Float32Array ? v : Float32Array.from(v);
  }
  return out;
}

export async function checkOp(ctx: GpuContext, c: OpCase): Promise<void> {
  const x: Arrays = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, v.data]));
  const ref = c.ref(x);
  const compare = c.compare ?? Object.keys(ref);
  const fwdTol = c.forwardTol ?? DEFAULT_FWD;

  const xt = await upload(ctx, c.inputs);
  const out = await c.gpu(ctx, xt);
  const got = await readAll(ctx, out, compare, `${c.name} forward`);
  for (const n of compare) {
    expect(maxAbs(ref[n]!), `${c.name}: reference output ${n} is identically zero`).toBeGreaterThan(0);
    expectClose(`${c.name} forward ${n}`, got[n]!, ref[n]!, fwdTol);
  }

  if (c.refBackward) {
    const rng = new Rng((c.seed ?? 1) * 7919 + 17);
    const gradOutputs = c.gradOutputs ?? compare;
    const dOut: Arrays = {};
    for (const n of gradOutputs) dOut[n] = rng.tensor(ref[n]!.length, 1, 0);
    const grads = c.refBackward(x, dOut);
    const diffInputs = Object.entries(c.inputs)
      .filter(([, s]) => (s.grad ?? (s.dtype ?? 'f32') === 'f32'))
      .map(([k]) => k);

    // (2) reference backward against finite differences of the reference forward.
    if (!c.skipFiniteDifferences) {
      for (const name of diffInputs) {
        const g = grads[name];
        if (!g) throw new Error(`${c.name}: refBackward returned no gradient for ${name}`);
        const base = x[name]!;
        const samples = new Set<number>();
        let big = 0;
        for (let i = 1; i < base.length; i++) if (Math.abs(g[i]!) > Math.abs(g[big]!)) big = i;
        samples.add(big);
        const want = Math.min(c.fdSamples ?? 16, base.length);
        while (samples.size < want) samples.add(rng.int(0, base.length));
        const scale = maxAbs(g);
        for (const i of samples) {
          const orig = base[i]!;
          const h = (c.fdStep ?? 1e-5) * Math.max(1, Math.abs(orig));
          const xp = { ...x, [name]: Float64Array.from(base) };
          xp[name]![i] = orig + h;
          const lp = dot(c.ref(xp), dOut, gradOutputs);
          xp[name]![i] = orig - h;
          const lm = dot(c.ref(xp), dOut, gradOutputs);
          const fd = (lp - lm) / (2 * h);
          const tol = 1e-6 * (1 + scale) + 1e-4 * Math.abs(g[i]!);
          if (!(Math.abs(fd - g[i]!) <= tol)) {
            throw new Error(`${c.name}: reference d${name}[${i}] = ${g[i]} but finite difference gives ${fd}`);
          }
        }
      }
    }

    // (3) GPU backward against the reference backward.
    if (!c.gpuBackward) throw new Error(`${c.name}: refBackward given without gpuBackward`);
    const dOutT: Tensors = {};
    for (const n of gradOutputs) dOutT[n] = ctx.upload(out[n]?.shape ?? [ref[n]!.length], Float32Array.from(dOut[n]!));
    const gpuGrads = await c.gpuBackward(ctx, xt, out, dOutT);
    const gotGrads = await readAll(ctx, gpuGrads, diffInputs, `${c.name} backward`);
    for (const n of diffInputs) {
      expect(maxAbs(grads[n]!), `${c.name}: reference gradient d${n} is identically zero`).toBeGreaterThan(0);
      expectClose(`${c.name} backward d${n}`, gotGrads[n]!, grads[n]!, c.backwardTol ?? DEFAULT_BWD);
    }
    for (const t of Object.values(dOutT)) t.release();
    for (const t of Object.values(gpuGrads)) t.release();
  }
  for (const t of Object.values(xt)) t.release();
  for (const t of Object.values(out)) t.release();
}
