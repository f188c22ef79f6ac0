// Kernel specs, checks and dispatch shared by the element-wise activations (ReLU, SiLU in activation.ts; GELU in
// gelu.ts). Each activation f is two WGSL kernels over n f32 elements of any shape:
//   forward:  out[i] = f(x[i])
//   backward: dx[i] += f'(x[i]) · dOut[i]   (accumulates, per docs/kernels.md: the caller zeroes dx)
// Both bind the output first, take one param n and run on a 1-D grid of WG-wide workgroups.
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';

const WG = 256;

export interface UnaryActivation {
  forward(ctx: GpuContext, out: Tensor, x: Tensor): void;
  backward(ctx: GpuContext, dx: Tensor, dOut: Tensor, x: Tensor): void;
}

function checkSame(op: string, named: Record<string, Tensor>): number {
  const entries = Object.entries(named);
  const [, first] = entries[0]!;
  for (const [name, t] of entries) {
    if (t.dtype !== 'f32') throw new Error(`${op}: ${name} must be f32, got ${t.dtype}`);
    if (t.size !== first.size) {
      throw new Error(`${op}: sizes differ: ${entries.map(([k, v]) => `${k} ${shapeText(v)}`).join(', ')}`);
    }
  }
  return first.size;
}

/**
 * The forward and backward of activation `name` (kernels `${name}_forward` / `${name}_backward`, errors name the
 * ops `${name}Forward` / `${name}Backward`) from their WGSL sources.
 */
export function unaryActivation(name: string, forwardSource: string, backwardSource: string): UnaryActivation {
  const forwardSpec: KernelSpec = {
    name: `${name}_forward`,
    source: forwardSource,
    bindings: [rw('out'), ro('x')],
    params: [['n', 'u32']],
    defines: { WG },
  };
  const backwardSpec: KernelSpec = {
    name: `${name}_backward`,
    source: backwardSource,
    bindings: [rw('dx'), ro('dOut'), ro('x')],
    params: [['n', 'u32']],
    defines: { WG },
  };
  const forwardOp = `${name}Forward`;
  const backwardOp = `${name}Backward`;
  return {
    forward(ctx, out, x) {
      const n = checkSame(forwardOp, { out, x });
      if (out.buffer === x.buffer) throw new Error(`${forwardOp}: out and x must be different tensors`);
      ctx.dispatch(ctx.kernel(forwardSpec), { out, x }, { n }, grid1d(n, WG));
    },
    backward(ctx, dx, dOut, x) {
      const n = checkSame(backwardOp, { dx, dOut, x });
      if (dx.buffer === dOut.buffer || dx.buffer === x.buffer) {
        throw new Error(`${backwardOp}: dx must be a different tensor from dOut and x`);
      }
      ctx.dispatch(ctx.kernel(backwardSpec), { dx, dOut, x }, { n }, grid1d(n, WG));
    },
  };
}
