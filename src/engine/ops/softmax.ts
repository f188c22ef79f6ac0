// Softmax over the last dim (attention probabilities): out = exp(x − max) / Σ exp(x − max), row by row.
import type { GpuContext } from '../context';
import { grid1d, rowLayout } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import forwardSrc from '../../../shaders/softmax_forward.wgsl?raw';
import backwardSrc from '../../../shaders/softmax_backward.wgsl?raw';

/** Threads per workgroup of the row kernels (see ops/norm.ts for why 64). */
const WG = 64;

const forwardSpec: KernelSpec = {
  name: 'softmax_forward',
  source: forwardSrc,
  bindings: [rw('out'), ro('x')],
  params: [
    ['rows', 'u32'],
    ['C', 'u32'],
  ],
  defines: { W: WG, R: 1, WG },
};

const backwardSpec: KernelSpec = {
  name: 'softmax_backward',
  source: backwardSrc,
  bindings: [rw('dx'), ro('dOut'), ro('out')],
  params: [
    ['rows', 'u32'],
    ['C', 'u32'],
  ],
  defines: { W: WG, R: 1, WG },
};

/** The row count and width of a [..., C] f32 tensor; throws naming `op` when `others` do not match it. */
function rowsOf(op: string, x: Tensor, others: Record<string, Tensor>): { rows: number; C: number } {
  const C = x.shape[x.shape.length - 1] ?? 1;
  const rows = C === 0 ? 0 : x.size / C;
  for (const [name, t] of Object.entries({ x, ...others })) {
    if (t.dtype !== 'f32') throw new Error(`${op}: ${name} is ${t.dtype}, expected f32`);
    if (t.size !== x.size || (t.shape[t.shape.length - 1] ?? 1) !== C) {
      throw new Error(`${op}: ${name} ${shapeText(t)} does not match x ${shapeText(x)}`);
    }
  }
  return { rows, C };
}

/** out[rows, C] = softmax(x[rows, C]) over the last dim. */
export function softmaxForward(ctx: GpuContext, out: Tensor, x: Tensor): void {
  const { rows, C } = rowsOf('softmaxForward', x, { out });
  if (rows === 0) return;
  const L = rowLayout(C, WG);
  const k = ctx.kernel(forwardSpec, L);
  ctx.dispatch(k, { out, x }, { rows, C }, grid1d(Math.ceil(rows / L.R), 1, ctx.limits.maxComputeWorkgroupsPerDimension));
}

/** dx[rows, C] += out ⊙ (dOut − Σ_c dOut ⊙ out), with out the forward's output (accumulates; zero dx first). */
export function softmaxBackward(ctx: GpuContext, dx: Tensor, dOut: Tensor, out: Tensor): void {
  const { rows, C } = rowsOf('softmaxBackward', out, { dx, dOut });
  if (rows === 0) return;
  const L = rowLayout(C, WG);
  const k = ctx.kernel(backwardSpec, L);
  ctx.dispatch(k, { dx, dOut, out }, { rows, C }, grid1d(Math.ceil(rows / L.R), 1, ctx.limits.maxComputeWorkgroupsPerDimension));
}
