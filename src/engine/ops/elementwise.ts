// Element-wise arithmetic on f32 tensors of equal element count (shapes may differ, e.g. [B·S, C] and [B, S, C]):
// the residual add and scaling. The in-place forms bind their target once (WebGPU forbids binding one buffer
// twice in a dispatch when one binding is writable), so `add(ctx, a, a, b)` must be `addInPlace(ctx, a, b)`.
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import addSrc from '../../../shaders/add.wgsl?raw';
import addInPlaceSrc from '../../../shaders/add_inplace.wgsl?raw';
import scaleSrc from '../../../shaders/scale.wgsl?raw';
import scaleInPlaceSrc from '../../../shaders/scale_inplace.wgsl?raw';

const WG = 256;

const addSpec: KernelSpec = {
  name: 'add',
  source: addSrc,
  bindings: [rw('out'), ro('a'), ro('b')],
  params: [['n', 'u32']],
  defines: { WG },
};

const addInPlaceSpec: KernelSpec = {
  name: 'add_inplace',
  source: addInPlaceSrc,
  bindings: [rw('acc'), ro('x')],
  params: [['n', 'u32']],
  defines: { WG },
};

const scaleSpec: KernelSpec = {
  name: 'scale',
  source: scaleSrc,
  bindings: [rw('out'), ro('x')],
  params: [
    ['n', 'u32'],
    ['alpha', 'f32'],
  ],
  defines: { WG },
};

const scaleInPlaceSpec: KernelSpec = {
  name: 'scale_inplace',
  source: scaleInPlaceSrc,
  bindings: [rw('x')],
  params: [
    ['n', 'u32'],
    ['alpha', 'f32'],
  ],
  defines: { WG },
};

/** Checks dtype and element counts; `written` must not share a buffer with the others. Returns n. */
function check(op: string, written: [string, Tensor], read: [string, Tensor][], inPlaceHint?: string): number {
  const all = [written, ...read];
  const n = written[1].size;
  for (const [name, t] of all) {
    if (t.dtype !== 'f32') throw new Error(`${op}: ${name} must be f32, got ${t.dtype}`);
  }
  if (all.some(([, t]) => t.size !== n)) {
    throw new Error(`${op}: element counts differ: ${all.map(([k, t]) => `${k} ${shapeText(t)}`).join(', ')}`);
  }
  for (const [name, t] of read) {
    if (t.buffer === written[1].buffer) {
      throw new Error(`${op}: ${written[0]} and ${name} are the same buffer${inPlaceHint ? `; use ${inPlaceHint}` : ''}`);
    }
  }
  return n;
}

function checkAlpha(op: string, alpha: number): void {
  if (!Number.isFinite(alpha)) throw new Error(`${op}: alpha ${alpha} is not finite`);
}

/** out[n] = a[n] + b[n] (the residual add). */
export function add(ctx: GpuContext, out: Tensor, a: Tensor, b: Tensor): void {
  const n = check('add', ['out', out], [['a', a], ['b', b]], 'addInPlace(ctx, acc, x)');
  ctx.dispatch(ctx.kernel(addSpec), { out, a, b }, { n }, grid1d(n, WG));
}

/** acc[n] += x[n]. */
export function addInPlace(ctx: GpuContext, acc: Tensor, x: Tensor): void {
  const n = check('addInPlace', ['acc', acc], [['x', x]], 'scaleInPlace(ctx, acc, 2) to double a tensor');
  ctx.dispatch(ctx.kernel(addInPlaceSpec), { acc, x }, { n }, grid1d(n, WG));
}

/** out[n] = alpha · x[n]. */
export function scale(ctx: GpuContext, out: Tensor, x: Tensor, alpha: number): void {
  const n = check('scale', ['out', out], [['x', x]], 'scaleInPlace(ctx, x, alpha)');
  checkAlpha('scale', alpha);
  ctx.dispatch(ctx.kernel(scaleSpec), { out, x }, { n, alpha }, grid1d(n, WG));
}

/** x[n] *= alpha. */
export function scaleInPlace(ctx: GpuContext, x: Tensor, alpha: number): void {
  const n = check('scaleInPlace', ['x', x], []);
  checkAlpha('scaleInPlace', alpha);
  ctx.dispatch(ctx.kernel(scaleInPlaceSpec), { x }, { n, alpha }, grid1d(n, WG));
}
