// Element-wise activations ReLU and SiLU, forward and backward (float64 references in ref/activation.ts).
// GELU (tanh approximation) is gelu.ts; SwiGLU, which multiplies silu(gate) by up, is swiglu.ts. The specs,
// checks and dispatch they share are unary.ts.
import type { GpuContext } from '../context';
import type { Tensor } from '../tensor';
import { unaryActivation } from './unary';
import reluForwardSrc from '../../../shaders/relu_forward.wgsl?raw';
import reluBackwardSrc from '../../../shaders/relu_backward.wgsl?raw';
import siluForwardSrc from '../../../shaders/silu_forward.wgsl?raw';
import siluBackwardSrc from '../../../shaders/silu_backward.wgsl?raw';

const relu = unaryActivation('relu', reluForwardSrc, reluBackwardSrc);
const silu = unaryActivation('silu', siluForwardSrc, siluBackwardSrc);

/** out[n] = max(x[n], 0) (any shape; out and x have the same number of elements). */
export function reluForward(ctx: GpuContext, out: Tensor, x: Tensor): void {
  relu.forward(ctx, out, x);
}

/** dx[n] += (x[n] > 0 ? dOut[n] : 0) (accumulates; zero dx first). */
export function reluBackward(ctx: GpuContext, dx: Tensor, dOut: Tensor, x: Tensor): void {
  relu.backward(ctx, dx, dOut, x);
}

/** out[n] = x[n]·sigmoid(x[n]). */
export function siluForward(ctx: GpuContext, out: Tensor, x: Tensor): void {
  silu.forward(ctx, out, x);
}

/** dx[n] += silu'(x[n]) · dOut[n] (accumulates; zero dx first). */
export function siluBackward(ctx: GpuContext, dx: Tensor, dOut: Tensor, x: Tensor): void {
  silu.backward(ctx, dx, dOut, x);
}
