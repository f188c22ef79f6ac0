// The AdamW optimizer step with PyTorch's semantics (torch.optim.AdamW, amsgrad=False, maximize=False).
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import src from '../../../shaders/adamw.wgsl?raw';
import gateSrc from '../../../shaders/step_gate.wgsl?raw';

const WG = 256;

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** The step number, counting from 1 (PyTorch's state['step'] after its increment). */
  step: number;
}

const PARAMS = [
  ['n', 'u32'],
  ['decay', 'f32'],
  ['beta1', 'f32'],
  ['oneMinusBeta1', 'f32'],
  ['beta2', 'f32'],
  ['oneMinusBeta2', 'f32'],
  ['stepSize', 'f32'],
  ['bc2Sqrt', 'f32'],
  ['eps', 'f32'],
] as const;

const BINDINGS = [rw('param'), ro('grad'), rw('m'), rw('v')] as const;

const plainSpec: KernelSpec = {
  name: 'adamw',
  source: src,
  bindings: BINDINGS,
  params: PARAMS,
  defines: { WG, GRAD_SCALE: '1.0', GATE: '' },
};

const scaledSpec: KernelSpec = {
  name: 'adamw_scaled',
  source: src,
  bindings: [...BINDINGS, ro('gradScale')],
  params: PARAMS,
  defines: { WG, GRAD_SCALE: 'gradScale[0]', GATE: '' },
};

const gatedSpec: KernelSpec = {
  name: 'adamw_gated',
  source: src,
  bindings: [...BINDINGS, ro('gradScale'), ro('gate', 'u32')],
  params: PARAMS,
  defines: { WG, GRAD_SCALE: 'gradScale[0]', GATE: 'if (gate[0] == 0u) { return; }' },
};

const gateSpec: KernelSpec = {
  name: 'step_gate',
  source: gateSrc,
  bindings: [rw('gate', 'u32'), ro('stats')],
  params: [
    ['lossSlot', 'u32'],
    ['normSlot', 'u32'],
    ['weightSlot', 'u32'],
  ],
};

/**
 * gate[0] (u32 [1]) = 1 when stats[lossSlot], stats[normSlot] and stats[weightSlot] are all finite, else 0: the
 * trainer's skip rule for a step, on the GPU, for adamwStep's `gate`. Recorded, not submitted.
 */
export function stepGate(ctx: GpuContext, gate: Tensor, stats: Tensor, slots: { loss: number; norm: number; weight: number }): void {
  if (gate.dtype !== 'u32' || gate.size !== 1) throw new Error(`stepGate: gate must be a u32 tensor of 1 element, got ${gate.dtype} ${shapeText(gate)}`);
  if (stats.dtype !== 'f32') throw new Error(`stepGate: stats must be f32, got ${stats.dtype}`);
  for (const [k, v] of Object.entries(slots)) {
    if (!(Number.isInteger(v) && v >= 0 && v < stats.size)) throw new Error(`stepGate: ${k} slot ${v} is outside the stats (${stats.size})`);
  }
  ctx.dispatch(ctx.kernel(gateSpec), { gate, stats }, { lossSlot: slots.loss, normSlot: slots.norm, weightSlot: slots.weight }, [1]);
}

function checkHyper(h: AdamWHyper): void {
  const bad = (what: string): never => {
    throw new Error(`adamwStep: ${what}`);
  };
  if (!(Number.isFinite(h.lr) && h.lr >= 0)) bad(`lr ${h.lr} must be a finite number ≥ 0`);
  if (!(h.beta1 >= 0 && h.beta1 < 1)) bad(`beta1 ${h.beta1} must be in [0, 1)`);
  if (!(h.beta2 >= 0 && h.beta2 < 1)) bad(`beta2 ${h.beta2} must be in [0, 1)`);
  if (!(Number.isFinite(h.eps) && h.eps >= 0)) bad(`eps ${h.eps} must be a finite number ≥ 0`);
  if (!(Number.isFinite(h.weightDecay) && h.weightDecay >= 0)) bad(`weightDecay ${h.weightDecay} must be a finite number ≥ 0`);
  if (!(Number.isInteger(h.step) && h.step >= 1)) bad(`step ${h.step} must be an integer ≥ 1 (steps count from 1)`);
}

/**
 * One AdamW step on param[n] with its gradient grad[n] and moments m[n], v[n] (all f32, updated in place
 * except grad). With gradScale (f32 [1], e.g. from clipCoefficient) the gradient is grad · gradScale[0],
 * read on the GPU, so clipping needs no readback. With gate (u32 [1], from stepGate; needs gradScale) the step
 * is done only where gate[0] ≠ 0, with the same arithmetic as without.
 */
export function adamwStep(
  ctx: GpuContext,
  param: Tensor,
  grad: Tensor,
  m: Tensor,
  v: Tensor,
  h: AdamWHyper,
  gradScale?: Tensor,
  gate?: Tensor,
): void {
  const named: [string, Tensor][] = [
    ['param', param],
    ['grad', grad],
    ['m', m],
    ['v', v],
  ];
  const n = param.size;
  for (const [name, t] of named) {
    if (t.dtype !== 'f32') throw new Error(`adamwStep: ${name} must be f32, got ${t.dtype}`);
  }
  if (named.some(([, t]) => t.size !== n)) {
    throw new Error(`adamwStep: element counts differ: ${named.map(([k, t]) => `${k} ${shapeText(t)}`).join(', ')}`);
  }
  if (gradScale) {
    if (gradScale.dtype !== 'f32' || gradScale.size !== 1) {
      throw new Error(`adamwStep: gradScale must be an f32 tensor of 1 element, got ${gradScale.dtype} ${shapeText(gradScale)}`);
    }
    named.push(['gradScale', gradScale]);
  }
  if (gate) {
    if (!gradScale) throw new Error('adamwStep: a gate needs a gradScale');
    if (gate.dtype !== 'u32' || gate.size !== 1) throw new Error(`adamwStep: gate must be a u32 tensor of 1 element, got ${gate.dtype} ${shapeText(gate)}`);
    named.push(['gate', gate]);
  }
  for (let a = 0; a < named.length; a++) {
    for (let b = a + 1; b < named.length; b++) {
      if (named[a]![1].buffer === named[b]![1].buffer) {
        throw new Error(`adamwStep: ${named[a]![0]} and ${named[b]![0]} are the same buffer; each needs its own tensor`);
      }
    }
  }
  checkHyper(h);
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  const values = {
    n,
    decay: 1 - h.lr * h.weightDecay,
    beta1: h.beta1,
    oneMinusBeta1: 1 - h.beta1,
    beta2: h.beta2,
    oneMinusBeta2: 1 - h.beta2,
    stepSize: h.lr / bc1,
    bc2Sqrt: Math.sqrt(bc2),
    eps: h.eps,
  };
  if (gradScale && gate) {
    ctx.dispatch(ctx.kernel(gatedSpec), { param, grad, m, v, gradScale, gate }, values, grid1d(n, WG));
  } else if (gradScale) {
    ctx.dispatch(ctx.kernel(scaledSpec), { param, grad, m, v, gradScale }, values, grid1d(n, WG));
  } else {
    ctx.dispatch(ctx.kernel(plainSpec), { param, grad, m, v }, values, grid1d(n, WG));
  }
}
