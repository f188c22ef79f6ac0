// The global L2 norm of all gradients and the clipping coefficient (torch.nn.utils.clip_grad_norm_), on the GPU
// without readback and without float atomics: pass 1 writes per-workgroup partial sums of squares for every
// tensor into one scratch buffer, pass 2 reduces them in one workgroup. The coefficient goes to adamwStep
// as its gradScale, so the step's one readback (of the norm, to log it and to detect NaN/Inf) can come later.
import type { GpuContext } from '../context';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import partialSrc from '../../../shaders/grad_norm_partial.wgsl?raw';
import reduceSrc from '../../../shaders/grad_norm_reduce.wgsl?raw';
import clipSrc from '../../../shaders/grad_norm_clip.wgsl?raw';

const WG = 256;
/** At least this many elements per invocation in pass 1, so small tensors use few partials. */
const MIN_PER_THREAD = 4;
/** At most this many workgroups (partials) per tensor. */
const MAX_GROUPS = 1024;

const partialSpec: KernelSpec = {
  name: 'grad_norm_partial',
  source: partialSrc,
  bindings: [rw('partials'), ro('src')],
  params: [
    ['n', 'u32'],
    ['groups', 'u32'],
    ['base', 'u32'],
  ],
  defines: { WG },
};

const reduceSpec: KernelSpec = {
  name: 'grad_norm_reduce',
  source: reduceSrc,
  bindings: [rw('norm'), ro('partials')],
  params: [['count', 'u32']],
  defines: { WG },
};

const clipSpec: KernelSpec = {
  name: 'grad_norm_clip',
  source: clipSrc,
  bindings: [rw('clipScale'), ro('norm')],
  params: [['maxNorm', 'f32']],
};

function checkScalar(op: string, name: string, t: Tensor): void {
  if (t.dtype !== 'f32' || t.size !== 1) {
    throw new Error(`${op}: ${name} must be an f32 tensor of 1 element, got ${t.dtype} ${shapeText(t)}`);
  }
}

/** norm[1] = sqrt(Σ over all tensors and elements of g²) (f32 gradients of any sizes). NaN/Inf propagate. */
export function gradNorm(ctx: GpuContext, norm: Tensor, grads: readonly Tensor[]): void {
  checkScalar('gradNorm', 'norm', norm);
  const groups = grads.map((g, i) => {
    if (g.dtype !== 'f32') throw new Error(`gradNorm: gradient ${i} must be f32, got ${g.dtype}`);
    if (g.buffer === norm.buffer) throw new Error(`gradNorm: norm must not be one of the gradients (gradient ${i})`);
    return g.size === 0 ? 0 : Math.min(MAX_GROUPS, Math.ceil(g.size / (WG * MIN_PER_THREAD)));
  });
  const count = groups.reduce((a, b) => a + b, 0);
  const partials = ctx.empty([Math.max(count, 1)], 'f32', { label: 'gradient norm partial sums' });
  const k = ctx.kernel(partialSpec);
  let base = 0;
  grads.forEach((src, i) => {
    const g = groups[i]!;
    if (g === 0) return;
    ctx.dispatch(k, { partials, src }, { n: src.size, groups: g, base }, [g]);
    base += g;
  });
  ctx.dispatch(ctx.kernel(reduceSpec), { norm, partials }, { count }, [1]);
  // Safe before the recorded work has run: later users of the pooled buffer are recorded after it.
  partials.release();
}

/**
 * clipScale[1] = min(1, maxNorm / (norm[0] + 1e-6)), or 1 when maxNorm ≤ 0 or infinite (clipping off);
 * torch.nn.utils.clip_grad_norm_'s coefficient. Pass clipScale to adamwStep as gradScale.
 */
export function clipCoefficient(ctx: GpuContext, clipScale: Tensor, norm: Tensor, maxNorm: number): void {
  checkScalar('clipCoefficient', 'clipScale', clipScale);
  checkScalar('clipCoefficient', 'norm', norm);
  if (Number.isNaN(maxNorm)) throw new Error('clipCoefficient: maxNorm is NaN');
  if (clipScale.buffer === norm.buffer) throw new Error('clipCoefficient: clipScale and norm must be different tensors');
  const m = maxNorm > 0 && Number.isFinite(maxNorm) ? maxNorm : 0;
  ctx.dispatch(ctx.kernel(clipSpec), { clipScale, norm }, { maxNorm: m }, [1]);
}
