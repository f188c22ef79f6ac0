// Dropout with a counter-based generator (Philox-4x32-10): the keep decision for element i depends only on
// (seed, offset + i), so the backward regenerates the forward's mask instead of storing it, a run is
// reproducible for a seed, and the CPU reference (dropoutMaskRef) gives the identical mask.
// Use a fresh offset range per call site and step (e.g. advance offset by the element count after each
// use) so that masks do not repeat.
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import { dropoutParams } from '../dropout-params';
import forwardSrc from '../../../shaders/dropout_forward.wgsl?raw';
import backwardSrc from '../../../shaders/dropout_backward.wgsl?raw';

const WG = 256;

const PARAMS = [
  ['n', 'u32'],
  ['threshold', 'u32'],
  ['keepScale', 'f32'],
  ['seedLo', 'u32'],
  ['seedHi', 'u32'],
  ['offsetLo', 'u32'],
  ['offsetHi', 'u32'],
] as const;

const forwardSpec: KernelSpec = {
  name: 'dropout_forward',
  source: forwardSrc,
  bindings: [rw('out'), ro('x')],
  params: PARAMS,
  defines: { WG },
};

const backwardSpec: KernelSpec = {
  name: 'dropout_backward',
  source: backwardSrc,
  bindings: [rw('dx'), ro('dOut')],
  params: PARAMS,
  defines: { WG },
};

function check(op: string, a: [string, Tensor], b: [string, Tensor]): number {
  for (const [name, t] of [a, b]) if (t.dtype !== 'f32') throw new Error(`${op}: ${name} must be f32, got ${t.dtype}`);
  if (a[1].size !== b[1].size) {
    throw new Error(`${op}: element counts differ: ${a[0]} ${shapeText(a[1])}, ${b[0]} ${shapeText(b[1])}`);
  }
  if (a[1].buffer === b[1].buffer) throw new Error(`${op}: ${a[0]} and ${b[0]} must be different tensors`);
  return a[1].size;
}

/** Dispatches a dropout kernel over `n` elements with the mask of (p, seed, offset). */
function dispatchDropout(ctx: GpuContext, op: string, spec: KernelSpec, tensors: Record<string, Tensor>, n: number, p: number, seed: number, offset: number): void {
  const { threshold, keepScale, seedLo, seedHi, offsetLo, offsetHi } = dropoutParams(op, p, seed, offset);
  ctx.dispatch(ctx.kernel(spec), tensors, { n, threshold, keepScale, seedLo, seedHi, offsetLo, offsetHi }, grid1d(n, WG));
}

/**
 * out[n] = x[n] / (1 − p) where kept, else 0. p ∈ [0, 1] (p = 0: identity, p = 1: zeros); seed and offset
 * are integers in [0, 2^53); element i's decision depends only on (seed, offset + i).
 */
export function dropoutForward(ctx: GpuContext, out: Tensor, x: Tensor, p: number, seed: number, offset: number): void {
  const n = check('dropoutForward', ['out', out], ['x', x]);
  dispatchDropout(ctx, 'dropoutForward', forwardSpec, { out, x }, n, p, seed, offset);
}

/** dx[n] += mask · dOut[n] / (1 − p), with the mask of dropoutForward for the same (p, seed, offset). */
export function dropoutBackward(ctx: GpuContext, dx: Tensor, dOut: Tensor, p: number, seed: number, offset: number): void {
  const n = check('dropoutBackward', ['dx', dx], ['dOut', dOut]);
  dispatchDropout(ctx, 'dropoutBackward', backwardSpec, { dx, dOut }, n, p, seed, offset);
}
