// Bias of a linear layer: out[..., N] += bias[N], and its gradient dBias[N] += Σ over rows of dOut[..., N].
// The gradient is a column reduction, done without float atomics: per chunk of rows a workgroup sums its
// columns (a strided walk, then a workgroup tree), and when there is more than one chunk a second pass adds
// the chunks' sums. Few rows (e.g. 3×1000) take one pass; many rows of few columns (e.g. 5000×7) spread the
// rows over up to MAX_CHUNKS workgroups.
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import addSrc from '../../../shaders/bias_add.wgsl?raw';
import partialSrc from '../../../shaders/bias_backward_partial.wgsl?raw';
import reduceSrc from '../../../shaders/bias_backward_reduce.wgsl?raw';

const WG = 256;
/** Columns per workgroup and rows walked in parallel by the partial-sum kernel. */
const CW = 32;
const RW = 8;
/** Rows each chunk should have at least (16 per thread) before the rows are split over more chunks. */
const MIN_CHUNK_ROWS = 16 * RW;
const MAX_CHUNKS = 256;
/** Cap on the partial buffer, in floats (16 MiB). */
const MAX_PARTIAL = 4 << 20;

const addSpec: KernelSpec = {
  name: 'bias_add',
  source: addSrc,
  bindings: [rw('out'), ro('bias')],
  params: [
    ['n', 'u32'],
    ['N', 'u32'],
  ],
  defines: { WG },
};

const partialSpec: KernelSpec = {
  name: 'bias_backward_partial',
  source: partialSrc,
  bindings: [rw('dst'), ro('dOut')],
  params: [
    ['R', 'u32'],
    ['N', 'u32'],
    ['chunk', 'u32'],
    ['c0', 'u32'],
    ['accumulate', 'u32'],
  ],
  defines: { CW, RW },
};

const reduceSpec: KernelSpec = {
  name: 'bias_backward_reduce',
  source: reduceSrc,
  bindings: [rw('dBias'), ro('partial')],
  params: [
    ['n', 'u32'],
    ['S', 'u32'],
  ],
  defines: { WG },
};


function checkBias(op: string, bias: Tensor, other: Tensor, otherName: string): number {
  const N = bias.shape[0]!;
  if (bias.shape.length !== 1 || other.shape.length < 1 || other.shape[other.shape.length - 1] !== N) {
    throw new Error(`${op}: ${otherName} ${shapeText(other, '×')} and bias ${shapeText(bias, '×')} do not match (want [..., N] and [N])`);
  }
  if (bias.dtype !== 'f32' || other.dtype !== 'f32') throw new Error(`${op}: only f32 is supported`);
  return N;
}

/** out[..., N] += bias[N]   (in place) */
export function biasAdd(ctx: GpuContext, out: Tensor, bias: Tensor): void {
  const N = checkBias('biasAdd', bias, out, 'out');
  const n = out.size;
  if (n === 0) return;
  ctx.dispatch(ctx.kernel(addSpec), { out, bias }, { n, N }, grid1d(n, WG, ctx.limits.maxComputeWorkgroupsPerDimension));
}

export interface BiasBackwardOptions {
  /** Largest grid dimension to use (default: the device's); tests lower it to exercise split grids. */
  maxWorkgroupsPerDimension?: number;
}

/** dBias[N] += Σ over all rows of dOut[..., N]   (accumulates) */
export function biasBackward(ctx: GpuContext, dBias: Tensor, dOut: Tensor, opts: BiasBackwardOptions = {}): void {
  const N = checkBias('biasBackward', dBias, dOut, 'dOut');
  const R = N === 0 ? 0 : dOut.size / N;
  if (N === 0 || R === 0) return;
  const max = Math.min(opts.maxWorkgroupsPerDimension ?? Infinity, ctx.limits.maxComputeWorkgroupsPerDimension);
  const S = Math.max(1, Math.min(Math.ceil(R / MIN_CHUNK_ROWS), MAX_CHUNKS, Math.floor(MAX_PARTIAL / N), max));
  const chunk = Math.ceil(R / S);
  const chunks = Math.ceil(R / chunk);
  const partial = chunks > 1 ? ctx.empty([chunks, N], 'f32', { label: 'bias gradient partial sums' }) : undefined;
  const k = ctx.kernel(partialSpec);
  const groups = Math.ceil(N / CW);
  for (let g0 = 0; g0 < groups; g0 += max) {
    ctx.dispatch(
      k,
      { dst: partial ?? dBias, dOut },
      { R, N, chunk, c0: g0 * CW, accumulate: partial ? 0 : 1 },
      [Math.min(max, groups - g0), chunks, 1],
    );
  }
  if (partial) {
    ctx.dispatch(ctx.kernel(reduceSpec), { dBias, partial }, { n: N, S: chunks }, grid1d(N, WG, max));
    // Safe before the GPU ran: the pool hands the buffer out again only to work recorded after these dispatches.
    partial.release();
  }
}
