// The matmul autotuner: on first use of a shape on a device, a handful of plan candidates (kernel, tile, split-K)
// are run on random operands of that shape and timed on the GPU (timestamp queries where the adapter has them,
// else wall-clock around a sync); the fastest is installed on the context (setMatmulChoices) and kept in a cache
// per adapter and shape (IndexedDB in the browser, a JSON file in the Node cache folder: TuneCache). Also the
// occupancy probe that measures the device's size for split-K and the tile choice. docs/kernels.md ("Matmul
// plans", "The autotuner").
import { isSwiftShader } from './adapter-info';
import type { GpuContext } from './context';
import { f32ToBf16Bits, f32ToF16Bits } from './half';
import { fmaPeak } from './ops/fma-peak';
import {
  deviceSize,
  matmulNN,
  matmulNT,
  matmulPlan,
  matmulShapeKey,
  matmulTN,
  matmulVariant,
  planLabel,
  setDeviceSize,
  setMatmulChoices,
  subgroupMatrixConfig,
  type MatmulConfig,
  type MatmulShape,
} from './ops/matmul';
import { quantizeWeight } from './quantize';
import type { Tensor } from './tensor';
import { uploadQuantized, type WeightTensor } from './weight';
import { seededValues as values } from './seeded';

/** What the cache keeps for one shape on one adapter. */
export interface TuneEntry {
  config: MatmulConfig;
  /** The chosen plan in words (planLabel). */
  label: string;
  /** GPU nanoseconds of one run of the chosen plan, and of every candidate. */
  ns: number;
  candidates: { label: string; ns: number; config: MatmulConfig }[];
  /** 'timestamps' (GPU time) or 'wall' (no timestamp-query: wall-clock around a sync). */
  timing: 'timestamps' | 'wall';
  tunedAt: number;
}

/** Where tuned plans are kept: get/put by key (`tuneKey`). */
export interface TuneCache {
  get(key: string): Promise<TuneEntry | undefined>;
  put(key: string, entry: TuneEntry): Promise<void>;
  /** Every entry (the Bench screen lists them). */
  entries?(): Promise<[string, TuneEntry][]>;
}

/** A cache in memory (tests; a page without IndexedDB). */
export class MemoryTuneCache implements TuneCache {
  readonly map = new Map<string, TuneEntry>();
  async get(key: string): Promise<TuneEntry | undefined> {
    return this.map.get(key);
  }
  async put(key: string, entry: TuneEntry): Promise<void> {
    this.map.set(key, entry);
  }
  async entries(): Promise<[string, TuneEntry][]> {
    return [...this.map];
  }
}

/** The adapter's part of a cache key: a plan tuned on one device (or driver) says nothing about another. */
export function adapterKey(ctx: GpuContext): string {
  const a = ctx.adapter;
  return [a.vendor, a.architecture, a.device, a.description].join('/');
}

/** The cache key of a shape on this context's adapter. */
export function tuneKey(ctx: GpuContext, shape: MatmulShape): string {
  return `${adapterKey(ctx)}|${matmulShapeKey(shape)}`;
}

export interface TuneOptions {
  /** Let the opt-in f16 path (and f16 subgroup matrices) compete: reduced precision. Default false. */
  half?: boolean;
  /** GPU (or wall) milliseconds each candidate's timed runs should fill at least (default 20). */
  targetMs?: number;
  /** At most this many timed runs a candidate (default 20). */
  maxRuns?: number;
  log?: (line: string) => void;
}

/**
 * The handful of candidates for a shape on this adapter: the rule's plan first, then the other kernels and tile
 * shapes worth trying there, and split-K where the tiles are too few to fill the device.
 */
export function candidates(ctx: GpuContext, shape: MatmulShape, opts: TuneOptions = {}): MatmulConfig[] {
  const { M, N } = shape;
  const batch = shape.batch ?? 1;
  const list: MatmulConfig[] = [{ variant: matmulVariant(ctx) }];
  if (isSwiftShader(ctx)) {
    list.push({ variant: 'register' });
    if (ctx.hasSubgroups) list.push({ variant: 'subgroup', shape: { Q: 1 } }, { variant: 'subgroup', shape: { Q: 2 } });
    list.push({ variant: 'staged', shape: { WX: 8, WY: 8, TM: 4, TN: 4, BK: 16, STAGES: 2 } });
  } else {
    if (Math.min(M, N) >= 128) list.push({ variant: 'staged', shape: { WX: 16, WY: 16, TM: 8, TN: 8, BK: 8, STAGES: 2 } });
    if (Math.min(M, N) >= 64) {
      list.push({ variant: 'staged', shape: { WX: 16, WY: 16, TM: 4, TN: 4, BK: 16, STAGES: 2 } });
      list.push({ variant: 'staged', shape: { WX: 8, WY: 8, TM: 8, TN: 8, BK: 8, STAGES: 2 } });
    }
    list.push({ variant: 'staged', shape: { WX: 8, WY: 8, TM: 4, TN: 4, BK: 16, STAGES: 2 } });
    list.push({ variant: 'tiled' });
    if (subgroupMatrixConfig(ctx, false)) list.push({ variant: 'subgroup-matrix' });
    if (opts.half && ctx.hasF16) {
      list.push({ variant: 'staged', half: true, shape: { WX: 16, WY: 16, TM: 4, TN: 4, BK: 16, STAGES: 2 } });
      if (subgroupMatrixConfig(ctx, true)) list.push({ variant: 'subgroup-matrix', half: true });
    }
  }
  // Split-K where the rule's tiles are too few for the device and K is long.
  const rule = matmulPlan(ctx, shape);
  const tiles = Math.ceil(M / rule.tileM) * Math.ceil(N / rule.tileN);
  if (batch === 1 && shape.K >= 512 && tiles < 4 * deviceSize(ctx)) {
    for (const s of [2, 4, 8]) if (s !== rule.splitK && shape.K / s >= 128) list.push({ ...list[0]!, splitK: s });
  }
  // Distinct, and each one a plan this adapter can make.
  const seen = new Set<string>();
  return list.filter((c) => {
    const key = JSON.stringify(c);
    if (seen.has(key)) return false;
    seen.add(key);
    try {
      matmulPlan(ctx, shape, { config: c });
      return true;
    } catch {
      return false;
    }
  });
}


/** Operand b of a shape in its format (random values; a packed weight as stored). */
function operandB(ctx: GpuContext, shape: MatmulShape, dims: number[]): WeightTensor {
  const n = dims.reduce((x, y) => x * y, 1);
  const v = values(n, 7 + shape.N);
  const format = shape.format ?? 'f32';
  if (format === 'f32') return ctx.upload(dims, v);
  if (format === 'bf16' || format === 'f16') {
    const bits = Uint16Array.from(v, (x) => (format === 'bf16' ? f32ToBf16Bits(x * 0.05) : f32ToF16Bits(x * 0.05)));
    return ctx.upload(dims, bits, format);
  }
  return uploadQuantized(ctx, dims, quantizeWeight(v, format, false), 'autotune weight');
}

function release(w: WeightTensor): void {
  if ('scales' in w) {
    w.data.release();
    w.scales.release();
  } else w.release();
}

/** Times `record` (GPU work): GPU nanoseconds per run from timestamps where available, else wall-clock. */
export async function timeRuns(ctx: GpuContext, record: () => void, opts: { targetMs?: number; maxRuns?: number } = {}): Promise<{ ns: number; runs: number; timing: 'timestamps' | 'wall' }> {
  const target = (opts.targetMs ?? 20) * 1e6;
  const maxRuns = opts.maxRuns ?? 20;
  record(); // warm-up: compiles
  await ctx.sync();
  const once = async (runs: number): Promise<number> => {
    if (ctx.hasTimestamps) {
      ctx.startProfile();
      for (let i = 0; i < runs; i++) record();
      const timed = await ctx.stopProfile();
      return timed.reduce((s, t) => s + t.ns, 0);
    }
    await ctx.sync();
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) record();
    await ctx.sync();
    return (performance.now() - t0) * 1e6;
  };
  const first = await once(1);
  let runs = 1;
  let ns = first;
  if (first < target && maxRuns > 1) {
    runs = Math.min(maxRuns, Math.max(2, Math.ceil(target / Math.max(first, 1))));
    ns = Math.min(first, (await once(runs)) / runs);
  }
  return { ns, runs, timing: ctx.hasTimestamps ? 'timestamps' : 'wall' };
}

/** Runs every candidate of one shape and returns the fastest with all the timings (installs nothing). */
export async function tuneShape(ctx: GpuContext, shape: MatmulShape, opts: TuneOptions = {}): Promise<TuneEntry> {
  const { M, N, K } = shape;
  const batch = shape.batch ?? 1;
  const layout = shape.transA ? 'TN' : shape.transB ? 'NT' : 'NN';
  const aDims = layout === 'TN' ? [K, M] : batch > 1 ? [batch, M, K] : [M, K];
  const bDims = layout === 'NT' ? [N, K] : [K, N];
  const a = ctx.upload(aDims, values(aDims.reduce((x, y) => x * y, 1), 1 + M));
  const b = operandB(ctx, shape, bDims);
  const out: Tensor = ctx.empty(layout === 'TN' ? [M, N] : batch > 1 ? [batch, M, N] : [M, N]);
  const timed: TuneEntry['candidates'] = [];
  let timing: TuneEntry['timing'] = 'wall';
  try {
    for (const config of candidates(ctx, shape, opts)) {
      const run = () => {
        if (layout === 'NT') matmulNT(ctx, out, a, b, { config });
        else if (layout === 'NN') matmulNN(ctx, out, a, b, { config });
        else matmulTN(ctx, out, a, b as Tensor, { config });
      };
      try {
        const r = await timeRuns(ctx, run, opts);
        timing = r.timing;
        timed.push({ label: planLabel(matmulPlan(ctx, shape, { config })), ns: r.ns, config });
      } catch (e) {
        // A candidate the device rejects (a limit, a compile error) is left out, never chosen.
        opts.log?.(`  ${matmulShapeKey(shape)}: ${JSON.stringify(config)} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  } finally {
    a.release();
    release(b);
    out.release();
  }
  if (timed.length === 0) throw new Error(`autotune: no candidate ran for ${matmulShapeKey(shape)}`);
  const best = timed.reduce((x, y) => (y.ns < x.ns ? y : x));
  return { config: best.config, label: best.label, ns: best.ns, candidates: timed, timing, tunedAt: Date.now() };
}

/**
 * The plans for `shapes` on this device: each from the cache when it has one, else tuned now and cached; all of
 * them installed on the context, so that products of these shapes run their plan. Returns the entries by shape key.
 */
export async function autotune(ctx: GpuContext, shapes: readonly MatmulShape[], cache: TuneCache = new MemoryTuneCache(), opts: TuneOptions = {}): Promise<Map<string, TuneEntry & { cached: boolean }>> {
  const out = new Map<string, TuneEntry & { cached: boolean }>();
  const choices = new Map<string, MatmulConfig>();
  const sizeKey = `${adapterKey(ctx)}|device size`;
  const size = await cache.get(sizeKey);
  if (size) setDeviceSize(ctx, size.ns);
  else {
    const measured = await measureDeviceSize(ctx);
    setDeviceSize(ctx, measured);
    await cache.put(sizeKey, { config: { variant: matmulVariant(ctx) }, label: `${measured} workgroups of 256 at once`, ns: measured, candidates: [], timing: ctx.hasTimestamps ? 'timestamps' : 'wall', tunedAt: Date.now() });
  }
  for (const shape of shapes) {
    const key = matmulShapeKey(shape);
    if (out.has(key)) continue;
    const full = tuneKey(ctx, shape);
    let entry = await cache.get(full);
    const cached = entry !== undefined;
    if (!entry) {
      entry = await tuneShape(ctx, shape, opts);
      await cache.put(full, entry);
    }
    opts.log?.(`${key}: ${entry.label}${cached ? ' (cached)' : ''}; ${entry.candidates.map((c) => `${c.label} ${(c.ns / 1e6).toFixed(3)} ms`).join(', ')}`);
    choices.set(key, entry.config);
    out.set(key, { ...entry, cached });
  }
  setMatmulChoices(ctx, choices);
  return out;
}

/**
 * Installs every plan the cache holds for this context's adapter (and its measured device size), tuning nothing:
 * products of those shapes then run their tuned plan. Returns how many plans were installed. (The app's worker
 * calls it on each GPU context it opens, so training in the browser runs the plans the Bench screen tuned.)
 */
export async function installCachedPlans(ctx: GpuContext, cache: TuneCache): Promise<number> {
  if (!cache.entries) return 0;
  const prefix = `${adapterKey(ctx)}|`;
  const choices = new Map<string, MatmulConfig>();
  for (const [key, entry] of await cache.entries()) {
    if (!key.startsWith(prefix)) continue;
    const shape = key.slice(prefix.length);
    if (shape === 'device size') setDeviceSize(ctx, entry.ns);
    else choices.set(shape, entry.config);
  }
  setMatmulChoices(ctx, choices);
  return choices.size;
}

/**
 * The occupancy probe: how many workgroups of 256 invocations the device runs at once. The same FMA kernel over
 * 1, 2, 4, ... workgroups takes about the same time until the device is full; the size is the largest count
 * within 1.3× of one workgroup's time (at most 4096).
 */
export async function measureDeviceSize(ctx: GpuContext): Promise<number> {
  const iters = isSwiftShader(ctx) ? 64 : 4096;
  let base = 0;
  let size = 1;
  for (let w = 1; w <= 4096; w *= 2) {
    const out = ctx.empty([w * 256]);
    try {
      const { ns } = await timeRuns(ctx, () => fmaPeak(ctx, out, iters, 0.9999, 1e-4), { targetMs: 2, maxRuns: 8 });
      if (w === 1) base = ns;
      else if (ns > 1.3 * base) break;
      size = w;
    } finally {
      out.release();
    }
  }
  return size;
}
