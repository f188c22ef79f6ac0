// GELU with the tanh approximation (GPT-2's gelu_new; PyTorch's gelu(approximate='tanh')).
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import type { KernelSpec } from '../kernel';
import type { Tensor } from '../tensor';
import forwardSrc from '../../../shaders/gelu_forward.wgsl?raw';
import backwardSrc from '../../../shaders/gelu_backward.wgsl?raw';

const WG = 256;

const forwardSpec: KernelSpec = {
  name: 'gelu_forward',
  source: forwardSrc,
  bindings: [
    { name: 'out', access: 'read_write', type: 'f32' },
    { name: 'x', access: 'read', type: 'f32' },
  ],
  params: [['n', 'u32']],
  defines: { WG },
};

const backwardSpec: KernelSpec = {
  name: 'gelu_backward',
  source: backwardSrc,
  bindings: [
    { name: 'dx', access: 'read_write', type: 'f32' },
    { name: 'dOut', access: 'read', type: 'f32' },
    { name: 'x', access: 'read', type: 'f32' },
  ],
  params: [['n', 'u32']],
  defines: { WG },
};

function checkSame(op: string, named: Record<string, Tensor>): number {
  const entries = Object.entries(named);
  const [, first] = entries[0]!;
  for (const [name, t] of entries) {
    if (t.dtype !== 'f32') throw new Error(`${op}: ${name} must be f32, got ${t.dtype}`);
    if (t.size !== first.size) {
      throw new Error(`${op}: sizes differ: ${entries.map(([k, v]) => `${k} [${v.shape.join(', ')}]`).join(', ')}`);
    }
  }
  return first.size;
}

/** out[n] = gelu(x[n]) (any shape; out and x have the same number of elements). */
export function geluForward(ctx: GpuContext, out: Tensor, x: Tensor): void {
  const n = checkSame('geluForward', { out, x });
  if (out.buffer === x.buffer) throw new Error('geluForward: out and x must be different tensors');
  ctx.dispatch(ctx.kernel(forwardSpec), { out, x }, { n }, grid1d(n, WG));
}

/** dx[n] += gelu'(x[n]) · dOut[n] (accumulates; zero dx first). */
export function geluBackward(ctx: GpuContext, dx: Tensor, dOut: Tensor, x: Tensor): void {
  const n = checkSame('geluBackward', { dx, dOut, x });
  if (dx.buffer === dOut.buffer || dx.buffer === x.buffer) {
    throw new Error('geluBackward: dx must be a different tensor from dOut and x');
  }
  ctx.dispatch(ctx.kernel(backwardSpec), { dx, dOut, x }, { n }, grid1d(n, WG));
}
