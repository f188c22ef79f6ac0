// Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2020): a small residual MLP after a sublayer's output
// projection, its forward and accumulating backward, placements, tensor names and initialisation: docs/model.md
// ("Bottleneck adapters").
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { reluBackward, reluForward, siluBackward, siluForward } from '../engine/ops/activation';
import { biasBackward } from '../engine/ops/bias';
import { addInPlace } from '../engine/ops/elementwise';
import { geluBackward, geluForward } from '../engine/ops/gelu';
import { matmulNN, matmulNT, matmulTN } from '../engine/ops/matmul';

export type BottleneckPlacement = 'houlsby' | 'pfeiffer';
export type BottleneckNonLinearity = 'relu' | 'silu' | 'gelu';
/** Where in a layer an adapter sits: after the attention output, or after the MLP output. */
export type BottleneckSite = 'attn' | 'mlp';

export const BOTTLENECK_PLACEMENTS: readonly BottleneckPlacement[] = ['houlsby', 'pfeiffer'];
export const BOTTLENECK_NON_LINEARITIES: readonly BottleneckNonLinearity[] = ['relu', 'silu', 'gelu'];

/** One adapter's tensors on the GPU. */
export interface BottleneckModule {
  downWeight: Tensor; // [m, H]
  downBias: Tensor; // [m]
  upWeight: Tensor; // [H, m]
  upBias: Tensor; // [H]
}

export interface BottleneckAdapter {
  kind: 'bottleneck';
  name: string;
  placement: BottleneckPlacement;
  reductionFactor: number;
  /** m = hidden_size / reduction_factor. */
  size: number;
  nonLinearity: BottleneckNonLinearity;
  /** Keyed by bottleneckKey(layer, site), e.g. 'layers.0.mlp_adapter'. */
  modules: Map<string, BottleneckModule>;
}

/** The sites a placement adapts in each layer. */
export function placementSites(placement: BottleneckPlacement): BottleneckSite[] {
  return placement === 'houlsby' ? ['attn', 'mlp'] : ['mlp'];
}

/** 'layers.<l>.<site>_adapter'. */
export function bottleneckKey(layer: number, site: BottleneckSite): string {
  return `layers.${layer}.${site}_adapter`;
}

/** The tensor name of one part: 'layers.<l>.<site>_adapter.<down|up>.<weight|bias>'. */
export function bottleneckParamName(key: string, proj: 'down' | 'up', what: 'weight' | 'bias'): string {
  return `${key}.${proj}.${what}`;
}

/** The bottleneck size for a hidden size and reduction factor; throws when it does not divide into a whole ≥ 1. */
export function bottleneckSize(hiddenSize: number, reductionFactor: number): number {
  const m = hiddenSize / reductionFactor;
  if (!Number.isInteger(m) || m < 1) {
    throw new Error(`reduction_factor ${reductionFactor} does not divide the hidden size ${hiddenSize} into a whole bottleneck size; choose a divisor of ${hiddenSize}`);
  }
  return m;
}

/** Every tensor of the adapter as [name, tensor] pairs, layer by layer (attn before mlp), down then up. */
export function bottleneckParameters(adapter: BottleneckAdapter): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  for (const [key, m] of adapter.modules) {
    out.push(
      [bottleneckParamName(key, 'down', 'weight'), m.downWeight],
      [bottleneckParamName(key, 'down', 'bias'), m.downBias],
      [bottleneckParamName(key, 'up', 'weight'), m.upWeight],
      [bottleneckParamName(key, 'up', 'bias'), m.upBias],
    );
  }
  return out;
}

/** Frees the adapter's GPU tensors. */
export function releaseBottleneck(adapter: BottleneckAdapter): void {
  for (const [, t] of bottleneckParameters(adapter)) t.release();
  adapter.modules.clear();
}

/**
 * Checks an adapter against a model of `numLayers` layers and hidden size H: the sites its placement names, in
 * every layer, with tensors of the right shapes. Throws an Error that names the first mismatch.
 */
export function checkBottleneck(adapter: BottleneckAdapter, numLayers: number, H: number): void {
  const where = `Bottleneck adapter ${adapter.name}`;
  const m = adapter.size;
  if (!BOTTLENECK_NON_LINEARITIES.includes(adapter.nonLinearity)) throw new Error(`${where}: non-linearity "${adapter.nonLinearity}" is not one of ${BOTTLENECK_NON_LINEARITIES.join(', ')}`);
  if (adapter.size * adapter.reductionFactor !== H) {
    throw new Error(
      `${where} was made for hidden size ${adapter.size * adapter.reductionFactor} (bottleneck ${adapter.size} × reduction_factor ${adapter.reductionFactor}); this model's hidden size is ${H}`,
    );
  }
  const want = new Set<string>();
  for (let l = 0; l < numLayers; l++) for (const s of placementSites(adapter.placement)) want.add(bottleneckKey(l, s));
  for (const key of adapter.modules.keys()) {
    if (!want.has(key)) throw new Error(`${where} has ${key}, which a ${adapter.placement} adapter on a model of ${numLayers} layers does not have`);
  }
  for (const key of want) {
    const t = adapter.modules.get(key);
    if (!t) throw new Error(`${where} lacks ${key} (a ${adapter.placement} adapter needs one in each of the ${numLayers} layers)`);
    const shapes: [string, Tensor, number[]][] = [
      ['down.weight', t.downWeight, [m, H]],
      ['down.bias', t.downBias, [m]],
      ['up.weight', t.upWeight, [H, m]],
      ['up.bias', t.upBias, [H]],
    ];
    for (const [part, tensor, shape] of shapes) {
      if (tensor.shape.join(',') !== shape.join(',')) {
        throw new Error(`${where}: ${key}.${part} is [${tensor.shape.join(', ')}]; this model needs [${shape.join(', ')}] (hidden ${H}, bottleneck ${m})`);
      }
    }
  }
}

/** The shape of an adapter, as its adapter_config.json records it. */
export interface BottleneckConfig {
  placement: BottleneckPlacement;
  reductionFactor: number;
  /** m = hiddenSize / reductionFactor. */
  size: number;
  nonLinearity: BottleneckNonLinearity;
  hiddenSize: number;
  numLayers: number;
}

/** An adapter on the CPU: its config and every tensor by name (bottleneckParamName), row-major float32. */
export interface CpuBottleneckAdapter {
  config: BottleneckConfig;
  tensors: Map<string, Float32Array>;
}

/** The adapter sites of a model in order: layer by layer, attn before mlp. */
export function bottleneckKeys(config: Pick<BottleneckConfig, 'placement' | 'numLayers'>): string[] {
  const keys: string[] = [];
  for (let l = 0; l < config.numLayers; l++) for (const s of placementSites(config.placement)) keys.push(bottleneckKey(l, s));
  return keys;
}

/** The shape of each tensor of an adapter with this config, by name, in bottleneckKeys order (down, then up). */
export function bottleneckShapes(config: BottleneckConfig): Map<string, number[]> {
  const { size: m, hiddenSize: H } = config;
  const out = new Map<string, number[]>();
  for (const key of bottleneckKeys(config)) {
    out.set(bottleneckParamName(key, 'down', 'weight'), [m, H]);
    out.set(bottleneckParamName(key, 'down', 'bias'), [m]);
    out.set(bottleneckParamName(key, 'up', 'weight'), [H, m]);
    out.set(bottleneckParamName(key, 'up', 'bias'), [H]);
  }
  return out;
}

/** Uploads a CPU adapter (every tensor its config needs must be there, with its shape's size). */
export function uploadBottleneck(ctx: GpuContext, cpu: CpuBottleneckAdapter, name: string): BottleneckAdapter {
  const { config } = cpu;
  const made: Tensor[] = [];
  const up = (param: string, shape: number[]): Tensor => {
    const data = cpu.tensors.get(param);
    if (!data || data.length !== shape.reduce((a, b) => a * b, 1)) {
      for (const t of made) t.release();
      throw new Error(`Bottleneck adapter ${name}: ${param} is ${data ? `${data.length} values` : 'missing'}; it needs [${shape.join(', ')}]`);
    }
    const t = ctx.upload(shape, data, 'f32', { persistent: true, label: `${name} ${param}` });
    made.push(t);
    return t;
  };
  const { size: m, hiddenSize: H } = config;
  const modules = new Map<string, BottleneckModule>();
  for (const key of bottleneckKeys(config)) {
    modules.set(key, {
      downWeight: up(bottleneckParamName(key, 'down', 'weight'), [m, H]),
      downBias: up(bottleneckParamName(key, 'down', 'bias'), [m]),
      upWeight: up(bottleneckParamName(key, 'up', 'weight'), [H, m]),
      upBias: up(bottleneckParamName(key, 'up', 'bias'), [H]),
    });
  }
  return { kind: 'bottleneck', name, placement: config.placement, reductionFactor: config.reductionFactor, size: m, nonLinearity: config.nonLinearity, modules };
}

/** What one adapter's forward saves for its backward (h, its input, stays the caller's). */
export interface BottleneckSaved {
  z: Tensor; // [N, m] before the non-linearity
  a: Tensor; // [N, m] after it
}

function activationForward(ctx: GpuContext, kind: BottleneckNonLinearity, out: Tensor, x: Tensor): void {
  if (kind === 'relu') reluForward(ctx, out, x);
  else if (kind === 'silu') siluForward(ctx, out, x);
  else geluForward(ctx, out, x);
}

function activationBackward(ctx: GpuContext, kind: BottleneckNonLinearity, dx: Tensor, dOut: Tensor, x: Tensor): void {
  if (kind === 'relu') reluBackward(ctx, dx, dOut, x);
  else if (kind === 'silu') siluBackward(ctx, dx, dOut, x);
  else geluBackward(ctx, dx, dOut, x);
}

/** y [N, H] = h + up(act(down(h))) for h [N, H]. Returns z and a (the caller releases them). */
export function bottleneckForward(ctx: GpuContext, y: Tensor, h: Tensor, m: BottleneckModule, act: BottleneckNonLinearity): BottleneckSaved {
  const size = m.downWeight.shape[0]!;
  const H = m.downWeight.shape[1]!;
  const N = h.size / H;
  if (h.shape[h.shape.length - 1] !== H || y.size !== h.size) {
    throw new Error(`bottleneckForward: h [${h.shape.join('×')}] and y [${y.shape.join('×')}] do not fit an adapter over hidden size ${H}`);
  }
  const h2 = h.view([N, H]);
  const z = ctx.empty([N, size], 'f32', { label: 'bottleneck z' });
  // The biases ride in the matmuls' epilogue (added as the outputs are stored; docs/kernels.md "Fusion").
  matmulNT(ctx, z, h2, m.downWeight, { bias: m.downBias });
  const a = ctx.empty([N, size], 'f32', { label: 'bottleneck act(z)' });
  activationForward(ctx, act, a, z);
  const y2 = y.view([N, H]);
  matmulNT(ctx, y2, a, m.upWeight, { bias: m.upBias });
  addInPlace(ctx, y2, h2);
  return { z, a };
}

/** The gradients of one adapter's tensors that train (a missing one is frozen). */
export interface BottleneckGrads {
  downWeight?: Tensor | undefined;
  downBias?: Tensor | undefined;
  upWeight?: Tensor | undefined;
  upBias?: Tensor | undefined;
}

/**
 * Accumulates the backward of bottleneckForward given dy [N, H]: dh [N, H] += ∂y/∂h·dy and each gradient that
 * is given. h is the forward's input, s what it saved.
 */
export function bottleneckBackward(
  ctx: GpuContext,
  dh: Tensor,
  grads: BottleneckGrads,
  dy: Tensor,
  h: Tensor,
  s: BottleneckSaved,
  m: BottleneckModule,
  act: BottleneckNonLinearity,
): void {
  const size = m.downWeight.shape[0]!;
  const H = m.downWeight.shape[1]!;
  const N = h.size / H;
  const dy2 = dy.view([N, H]);
  const dh2 = dh.view([N, H]);
  const h2 = h.view([N, H]);
  const acc = { accumulate: true };
  addInPlace(ctx, dh2, dy2);
  if (grads.upWeight) matmulTN(ctx, grads.upWeight, dy2, s.a, acc);
  if (grads.upBias) biasBackward(ctx, grads.upBias, dy2);
  const da = ctx.empty([N, size], 'f32', { label: 'bottleneck da' });
  matmulNN(ctx, da, dy2, m.upWeight);
  const dz = ctx.zeros([N, size], 'f32', { label: 'bottleneck dz' });
  activationBackward(ctx, act, dz, da, s.z);
  da.release();
  if (grads.downWeight) matmulTN(ctx, grads.downWeight, dz, h2, acc);
  if (grads.downBias) biasBackward(ctx, grads.downBias, dz);
  matmulNN(ctx, dh2, dz, m.downWeight, acc);
  dz.release();
}
