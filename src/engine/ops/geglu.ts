// GeGLU activation of Gemma's MLPs: out = gelu_tanh(gate) ⊙ up (transformers' gelu_pytorch_tanh).
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import forwardSrc from '../../../shaders/geglu_forward.wgsl?raw';
import backwardSrc from '../../../shaders/geglu_backward.wgsl?raw';

const WG = 256;

const forwardSpec: KernelSpec = {
  name: 'geglu_forward',
  source: forwardSrc,
  bindings: [rw('out'), ro('gate'), ro('up')],
  params: [['n', 'u32']],
  defines: { WG },
};

const backwardSpec: KernelSpec = {
  name: 'geglu_backward',
  source: backwardSrc,
  bindings: [rw('dGate'), rw('dUp'), ro('dOut'), ro('gate'), ro('up')],
  params: [['n', 'u32']],
  defines: { WG },
};

function same(op: string, ts: Record<string, Tensor>): number {
  const entries = Object.entries(ts);
  const n = entries[0]![1].size;
  for (const [name, t] of entries) {
    if (t.size !== n || t.dtype !== 'f32') throw new Error(`${op}: ${name} ${shapeText(t)} ${t.dtype} must be f32 with ${n} values like the others`);
  }
  return n;
}

/** out[n] = gelu_tanh(gate[n]) · up[n] */
export function gegluForward(ctx: GpuContext, out: Tensor, gate: Tensor, up: Tensor): void {
  const n = same('gegluForward', { out, gate, up });
  ctx.dispatch(ctx.kernel(forwardSpec), { out, gate, up }, { n }, grid1d(n, WG));
}

/** dGate[n] += ∂out/∂gate · dOut, dUp[n] += ∂out/∂up · dOut (accumulates; zero the grads first). */
export function gegluBackward(ctx: GpuContext, dGate: Tensor, dUp: Tensor, dOut: Tensor, gate: Tensor, up: Tensor): void {
  const n = same('gegluBackward', { dOut, dGate, dUp, gate, up });
  ctx.dispatch(ctx.kernel(backwardSpec), { dGate, dUp, dOut, gate, up }, { n }, grid1d(n, WG));
}
