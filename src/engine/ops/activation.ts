// Element-wise activations ReLU and SiLU, forward and backward (float64 references in ref/activation.ts).
// GELU (tanh approximation) is gelu.ts; SwiGLU, which multiplies silu(gate) by up, is swiglu.ts.
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import type { KernelSpec } from '../kernel';
import type { Tensor } from '../tensor';
import reluForwardSrc from '../../../shaders/relu_forward.wgsl?raw';
import reluBackwardSrc from '../../../shaders/relu_backward.wgsl?raw';
import siluForwardSrc from '../../../shaders/silu_forward.wgsl?raw';
import siluBackwardSrc from '../../../shaders/silu_backward.wgsl?raw';

const WG = 256;

const forwardSpec = (name: string, source: string): KernelSpec => ({
  name,
  source,
  bindings: [
    { name: 'out', access: 'read_write', type: 'f32' },
    { name: 'x', access: 'read', type: 'f32' },
  ],
  params: [['n', 'u32']],
  defines: { WG },
});

const backwardSpec = (name: string, source: string): KernelSpec => ({
  name,
  source,
  bindings: [
    { name: 'dx', access: 'read_write', type: 'f32' },
    { name: 'dOut', access: 'read', type: 'f32' },
    { name: 'x', access: 'read', type: 'f32' },
  ],
  params: [['n', 'u32']],
  defines: { WG },
});

const SPECS = {
  relu: { forward: forwardSpec('relu_forward', reluForwardSrc), backward: backwardSpec('relu_backward', reluBackwardSrc) },
  silu: { forward: forwardSpec('silu_forward', siluForwardSrc), backward: backwardSpec('silu_backward', siluBackwardSrc) },
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

function forward(ctx: GpuContext, kind: keyof typeof SPECS, out: Tensor, x: Tensor): void {
  const op = `${kind}Forward`;
  const n = checkSame(op, { out, x });
  if (out.buffer === x.buffer) throw new Error(`${op}: out and x must be different tensors`);
  ctx.dispatch(ctx.kernel(SPECS[kind].forward), { out, x }, { n }, grid1d(n, WG));
}

function backward(ctx: GpuContext, kind: keyof typeof SPECS, dx: Tensor, dOut: Tensor, x: Tensor): void {
  const op = `${kind}Backward`;
  const n = checkSame(op, { dx, dOut, x });
  if (dx.buffer === dOut.buffer || dx.buffer === x.buffer) throw new Error(`${op}: dx must be a different tensor from dOut and x`);
  ctx.dispatch(ctx.kernel(SPECS[kind].backward), { dx, dOut, x }, { n }, grid1d(n, WG));
}

/** out[n] = max(x[n], 0) (any shape; out and x have the same number of elements). */
export function reluForward(ctx: GpuContext, out: Tensor, x: Tensor): void {
  forward(ctx, 'relu', out, x);
}

/** dx[n] += (x[n] > 0 ? dOut[n] : 0) (accumulates; zero dx first). */
export function reluBackward(ctx: GpuContext, dx: Tensor, dOut: Tensor, x: Tensor): void {
  backward(ctx, 'relu', dx, dOut, x);
}

/** out[n] = x[n]·sigmoid(x[n]). */
export function siluForward(ctx: GpuContext, out: Tensor, x: Tensor): void {
  forward(ctx, 'silu', out, x);
}

/** dx[n] += silu'(x[n]) · dOut[n] (accumulates; zero dx first). */
export function siluBackward(ctx: GpuContext, dx: Tensor, dOut: Tensor, x: Tensor): void {
  backward(ctx, 'silu', dx, dOut, x);
}
