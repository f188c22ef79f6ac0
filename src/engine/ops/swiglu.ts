// SwiGLU activation of Llama/Qwen MLPs: out = silu(gate) ⊙ up.
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import type { Tensor } from '../tensor';
import forwardSrc from '../../../shaders/swiglu_forward.wgsl?raw';
import backwardSrc from '../../../shaders/swiglu_backward.wgsl?raw';

const WG = 256;

const forwardSpec: KernelSpec = {
  name: 'swiglu_forward',
  source: forwardSrc,
  bindings: [rw('out'), ro('gate'), ro('up')],
  params: [['n', 'u32']],
  defines: { WG },
};

const backwardSpec: KernelSpec = {
  name: 'swiglu_backward',
  source: backwardSrc,
  bindings: [rw('dGate'), rw('dUp'), ro('dOut'), ro('gate'), ro('up')],
  params: [['n', 'u32']],
  defines: { WG },
};

/** out[n] = silu(gate[n]) · up[n] */
export function swigluForward(ctx: GpuContext, out: Tensor, gate: Tensor, up: Tensor): void {
  const n = out.size;
  ctx.dispatch(ctx.kernel(forwardSpec), { out, gate, up }, { n }, grid1d(n, WG));
}

/** dGate[n] += ∂out/∂gate · dOut, dUp[n] += ∂out/∂up · dOut (accumulates; zero the grads first). */
export function swigluBackward(ctx: GpuContext, dGate: Tensor, dUp: Tensor, dOut: Tensor, gate: Tensor, up: Tensor): void {
  const n = dOut.size;
  ctx.dispatch(ctx.kernel(backwardSpec), { dGate, dUp, dOut, gate, up }, { n }, grid1d(n, WG));
}
