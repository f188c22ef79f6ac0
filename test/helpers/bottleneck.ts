// Random bottleneck adapters for tests: the same numbers on the GPU (BottleneckAdapter) and for the float64
// reference (RefBottleneck).
import type { GpuContext } from '../../src/engine/context';
import {
  bottleneckKey,
  placementSites,
  type BottleneckAdapter,
  type BottleneckNonLinearity,
  type BottleneckPlacement,
} from '../../src/model/bottleneck';
import type { RefBottleneck } from '../model-ref/transformer';
import type { Rng } from './rng';

/** A random adapter on the GPU and the same numbers for the reference; `zeroUp` leaves up and its bias 0. */
export function randomBottleneck(
  ctx: GpuContext,
  cfg: { numLayers: number; hiddenSize: number },
  placement: BottleneckPlacement,
  nonLinearity: BottleneckNonLinearity,
  reductionFactor: number,
  rng: Rng,
  opts: { zeroUp?: boolean; scale?: number; name?: string } = {},
): { adapter: BottleneckAdapter; ref: RefBottleneck } {
  const H = cfg.hiddenSize;
  const m = H / reductionFactor;
  const scale = opts.scale ?? 0.3;
  const adapter: BottleneckAdapter = { kind: 'bottleneck', name: opts.name ?? 'test', placement, reductionFactor, size: m, nonLinearity, modules: new Map() };
  const ref: RefBottleneck = { nonLinearity, modules: new Map() };
  const up = (shape: number[], data: Float64Array) => ctx.upload(shape, Float32Array.from(data), 'f32', { persistent: true });
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const site of placementSites(placement)) {
      const down = rng.tensor(m * H, scale, 0);
      const downBias = rng.tensor(m, scale, 0);
      const upW = opts.zeroUp ? new Float64Array(H * m) : rng.tensor(H * m, scale, 0);
      const upBias = opts.zeroUp ? new Float64Array(H) : rng.tensor(H, scale, 0);
      const key = bottleneckKey(l, site);
      ref.modules.set(key, { down, downBias, up: upW, upBias, m });
      adapter.modules.set(key, { downWeight: up([m, H], down), downBias: up([m], downBias), upWeight: up([H, m], upW), upBias: up([H], upBias) });
    }
  }
  return { adapter, ref };
}

