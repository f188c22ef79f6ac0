// GELU with the tanh approximation (GPT-2's gelu_new; PyTorch's gelu(approximate='tanh')). The specs, checks
// and dispatch it shares with ReLU and SiLU are unary.ts.
import type { GpuContext } from '../context';
import type { Tensor } from '../tensor';
import { unaryActivation } from './unary';
import forwardSrc from '../../../shaders/gelu_forward.wgsl?raw';
import backwardSrc from '../../../shaders/gelu_backward.wgsl?raw';

const gelu = unaryActivation('gelu', forwardSrc, backwardSrc);

/** out[n] = gelu(x[n]) (any shape; out and x have the same number of elements). */
export function geluForward(ctx: GpuContext, out: Tensor, x: Tensor): void {
  gelu.forward(ctx, out, x);
}

/** dx[n] += gelu'(x[n]) · dOut[n] (accumulates; zero dx first). */
export function geluBackward(ctx: GpuContext, dx: Tensor, dOut: Tensor, x: Tensor): void {
  gelu.backward(ctx, dx, dOut, x);
}
