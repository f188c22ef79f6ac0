// Sums that land in a small stats buffer, so that a training step reads back one buffer (loss sums, the
// gradient norm, per-task loss sums) instead of one per value. Both kernels are one workgroup per output: a
// strided pass per invocation, then workgroupSum's tree (shaders/lib/workgroup_sum.wgsl): no float atomics,
// a fixed order of additions, NaN and Inf propagate. What they sum (losses, a norm) is logged and never
// differentiated, so these have no backward.
import type { GpuContext } from '../context';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import sumIntoSrc from '../../../shaders/sum_into.wgsl?raw';
import segmentSumSrc from '../../../shaders/segment_sum_into.wgsl?raw';

const WG = 256;

const sumIntoSpec: KernelSpec = {
  name: 'sum_into',
  source: sumIntoSrc,
  bindings: [rw('acc'), ro('x')],
  params: [
    ['n', 'u32'],
    ['slot', 'u32'],
  ],
  defines: { WG },
};

const segmentSumSpec: KernelSpec = {
  name: 'segment_sum_into',
  source: segmentSumSrc,
  bindings: [rw('acc'), ro('x'), ro('seg', 'i32')],
  params: [
    ['n', 'u32'],
    ['base', 'u32'],
  ],
  defines: { WG },
};

/** acc[slot] += Σ x (f32; acc [..] holds the slot, x [n] any shape). acc and x must be different tensors. */
export function sumInto(ctx: GpuContext, acc: Tensor, slot: number, x: Tensor): void {
  if (acc.dtype !== 'f32' || x.dtype !== 'f32') throw new Error('sumInto: acc and x must be f32');
  if (!Number.isInteger(slot) || slot < 0 || slot >= acc.size) throw new Error(`sumInto: slot ${slot} is outside acc ${shapeText(acc)}`);
  if (acc.buffer === x.buffer) throw new Error('sumInto: acc and x must be different tensors');
  ctx.dispatch(ctx.kernel(sumIntoSpec), { acc, x }, { n: x.size, slot }, [1]);
}

/**
 * acc[base + k] += Σ_{i : seg[i] = k} x[i] for k in [0, segments) (f32 x [n], i32 seg [n]; seg −1 or ≥
 * segments: in none). acc and x must be different tensors.
 */
export function segmentSumInto(ctx: GpuContext, acc: Tensor, base: number, x: Tensor, seg: Tensor, segments: number): void {
  if (acc.dtype !== 'f32' || x.dtype !== 'f32' || seg.dtype !== 'i32') throw new Error('segmentSumInto: acc and x must be f32, seg i32');
  if (seg.size !== x.size) throw new Error(`segmentSumInto: seg ${shapeText(seg)} and x ${shapeText(x)} differ in size`);
  if (!Number.isInteger(segments) || segments < 1 || !Number.isInteger(base) || base < 0 || base + segments > acc.size) {
    throw new Error(`segmentSumInto: slots ${base}..${base + segments - 1} are outside acc ${shapeText(acc)}`);
  }
  if (acc.buffer === x.buffer) throw new Error('segmentSumInto: acc and x must be different tensors');
  ctx.dispatch(ctx.kernel(segmentSumSpec), { acc, x, seg }, { n: x.size, base }, [segments]);
}
