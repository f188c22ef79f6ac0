// Matrix multiplication in the three layouts a linear layer needs (matmulNT, matmulNN, matmulTN) on the tiled,
// register, subgroup, staged and subgroup-matrix kernels, split-K, the fused epilogue and packed frozen weights;
// plans (which kernel, tile and split-K a shape runs) and the choices an autotuner installs; docs/kernels.md
// ("Matrix multiplication", "Matmul plans").
import { isSwiftShader } from '../adapter-info';
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec, type WgslEnable } from '../kernel';
import { numel, shapeText, type Tensor } from '../tensor';
import { QuantizedTensor, weightFormatOf, type WeightFormat, type WeightTensor } from '../weight';
import tiledSrc from '../../../shaders/matmul_tiled.wgsl?raw';
import registerSrc from '../../../shaders/matmul_register.wgsl?raw';
import quadSrc from '../../../shaders/matmul_quad.wgsl?raw';
import stagedSrc from '../../../shaders/matmul_staged.wgsl?raw';
import subgroupMatrixSrc from '../../../shaders/matmul_subgroup_matrix.wgsl?raw';
import reduceSrc from '../../../shaders/matmul_splitk_reduce.wgsl?raw';
import plainEpilogueSrc from '../../../shaders/matmul_epilogue_none.wgsl?raw';
import fusedEpilogueSrc from '../../../shaders/matmul_epilogue_fused.wgsl?raw';
import { biasAdd } from './bias';

export type MatmulVariant = 'tiled' | 'register' | 'subgroup' | 'staged' | 'subgroup-matrix';

/** The kernels every adapter's tests run in every layout (matmul.test.ts); 'staged' and 'subgroup-matrix' have their own (matmul-plans.test.ts). */
export const MATMUL_VARIANTS: readonly MatmulVariant[] = ['tiled', 'register', 'subgroup'];

/** Every kernel a plan may name. */
export const ALL_MATMUL_VARIANTS: readonly MatmulVariant[] = ['tiled', 'register', 'subgroup', 'staged', 'subgroup-matrix'];

/**
 * What a plan candidate fixes (the autotuner's unit, cached per adapter and shape): the kernel, its workgroup
 * shape, split-K and precision. Fields left out take the plan's own rule.
 */
export interface MatmulConfig {
  variant: MatmulVariant;
  /**
   * The kernel's shape: tiled { W } (W×W threads, 4×4 each); subgroup { Q } (Q×Q quads); staged { WX, WY, TM,
   * TN, BK, STAGES }; subgroup-matrix { FM, FN, KS } (FM×FN result matrices a workgroup, KS k steps a slice).
   */
  shape?: Readonly<Record<string, number>>;
  /** K chunks (1: no split-K). */
  splitK?: number;
  /**
   * Reduced precision (opt-in, never a default): staged with f16 staging and f16 sums over each k slice, or a
   * subgroup-matrix configuration with f16 components. Needs shader-f16.
   */
  half?: boolean;
}

export interface MatmulOptions {
  /** out += alpha·(product) instead of out = alpha·(product). */
  accumulate?: boolean;
  /** Scale of the product (default 1). */
  alpha?: number;
  /** Forces a kernel; by default `matmulVariant(ctx)`. f16 operands always run on 'tiled'. */
  variant?: MatmulVariant;
  /** Forces a whole plan candidate (kernel, shape, split-K, precision); wins over `variant` and `splitK`. */
  config?: MatmulConfig;
  /**
   * Number of K chunks (split-K): 1 turns it off, more forces it (products without a batch only). By default
   * `matmulPlan` decides from the shape and the adapter.
   */
  splitK?: number;
  /**
   * Largest grid dimension to use (default: the device's maxComputeWorkgroupsPerDimension). Bigger grids are
   * split into several dispatches; tests lower it to exercise that path on small shapes.
   */
  maxWorkgroupsPerDimension?: number;
  /**
   * A second product added to this one (matmulNT and matmulNN only): out += alpha·a2·b2, with a2 [M, K2]
   * (the same M rows as out) and b2 [N, K2] for layout 'NT' (b2ᵀ) or [K2, N] for 'NN'. Fused into the
   * product's dispatch where the kernel allows (see the file header).
   */
  addProduct?: MatmulAddProduct;
  /** out[m, n] += bias[n] after the product(s) (matmulNT and matmulNN only); fused like addProduct. */
  bias?: Tensor;
}

export interface MatmulAddProduct {
  a: Tensor;
  b: Tensor;
  layout: 'NT' | 'NN';
  /** Scale of this product (default 1); the main product's `alpha` does not apply to it. */
  alpha?: number;
}

type Elem = 'f32' | 'f16';

const PARAMS = [
  ['M', 'u32'],
  ['N', 'u32'],
  ['K', 'u32'],
  ['aBatch', 'u32'],
  ['bBatch', 'u32'],
  ['oBatch', 'u32'],
  ['m0', 'u32'],
  ['n0', 'u32'],
  ['z0', 'u32'],
  ['kStep', 'u32'],
  ['kLen', 'u32'],
  ['alpha', 'f32'],
  ['accumulate', 'u32'],
] as const;

const F32_BINDINGS = [rw('out'), ro('a'), ro('b')] as const;

/** Threads WX×WY, each a 4×4 block: 64×64 outputs per workgroup by default, K staged 16 at a time. */
const tiledSpec: KernelSpec = {
  name: 'matmul_tiled',
  source: tiledSrc + plainEpilogueSrc,
  bindings: [rw('out'), ro('a', '{{ELEM_A}}'), ro('b', '{{ELEM_B}}')],
  params: PARAMS,
  defines: { WX: 16, WY: 16, BK: 16, TRANS_A: 'false', TRANS_B: 'false', ELEM_A: 'f32', ELEM_B: 'f32', W: 'b' },
};

/** Threads WX×WY, each a 16×16 block: 32×32 outputs per workgroup by default. */
const registerSpec: KernelSpec = {
  name: 'matmul_register',
  source: registerSrc + plainEpilogueSrc,
  bindings: F32_BINDINGS,
  params: PARAMS,
  defines: { WX: 2, WY: 2, TRANS_A: 'false', TRANS_B: 'false', W: 'b', B_QUADS: 'false' },
};

/** QX×QY quads, each a 32×32 block (16×16 per invocation). Needs the subgroups feature. */
const quadSpec: KernelSpec = {
  name: 'matmul_quad',
  source: quadSrc + plainEpilogueSrc,
  bindings: F32_BINDINGS,
  params: PARAMS,
  defines: { QX: 1, QY: 1, TRANS_A: 'false', TRANS_B: 'false', W: 'b', B_QUADS: 'false' },
};

/**
 * WX×WY threads, each TM×TN outputs, k staged BK at a time in STAGES buffers (matmul_staged.wgsl). a and b are
 * bound as vec4 arrays where VEC_A / VEC_B (every 4 values a load takes start at a multiple of 4).
 */
const stagedSpec: KernelSpec = {
  name: 'matmul_staged',
  source: stagedSrc + plainEpilogueSrc,
  bindings: [rw('out'), ro('a', '{{A_T}}'), ro('b')],
  params: PARAMS,
  defines: {
    WX: 16, WY: 16, TM: 4, TN: 4, BK: 16, STAGES: 2, TRANS_A: 'false', TRANS_B: 'false', VEC_A: 'false', VEC_B: 'false',
    A_T: 'f32', A_AT: 'a[i]', A_QUAD: 'vec4(a[i], a[i + 1u], a[i + 2u], a[i + 3u])', ELEM_S: 'f32', KTILE: 'kTileDirect', W: 'b',
  },
};

/**
 * One subgroup-matrix tile (FM×FN result matrices of SM×SN) a workgroup of WG invocations (the adapter's largest
 * subgroup), k staged SK·KS at a time through workgroup memory (matmul_subgroup_matrix.wgsl).
 */
const subgroupMatrixSpec: KernelSpec = {
  name: 'matmul_subgroup_matrix',
  source: subgroupMatrixSrc,
  bindings: F32_BINDINGS,
  params: PARAMS,
  defines: { SM: 8, SN: 8, SK: 8, FM: 2, FN: 2, KS: 2, WG: 32, ELEM_T: 'f32', TRANS_A: 'false', TRANS_B: 'false', W: 'b' },
};

/** The fused kernels: the plain ones' bindings plus a2, b2 and bias, and K2 and scale2 (= alpha2 / alpha). */
const FUSED_BINDINGS = [ro('a2'), ro('b2'), ro('bias')] as const;
const FUSED_PARAMS = [...PARAMS, ['K2', 'u32'], ['scale2', 'f32']] as const;
const FUSED_DEFINES = { TRANS_B2: 'false', HAS_BIAS: 'false' };

/** A kernel's fused-epilogue build: its body with the fused epilogue, and the epilogue's bindings, params and defines. */
function withFusedEpilogue(spec: KernelSpec, name: string, body: string): KernelSpec {
  return {
    ...spec,
    name,
    source: body + fusedEpilogueSrc,
    bindings: [...spec.bindings, ...FUSED_BINDINGS],
    params: FUSED_PARAMS,
    defines: { ...spec.defines, ...FUSED_DEFINES },
  };
}

const tiledFusedSpec = withFusedEpilogue(tiledSpec, 'matmul_tiled_fused', tiledSrc);
const quadFusedSpec = withFusedEpilogue(quadSpec, 'matmul_quad_fused', quadSrc);
const stagedFusedSpec = withFusedEpilogue(stagedSpec, 'matmul_staged_fused', stagedSrc);

const FUSED_SPECS: Partial<Record<KernelName, KernelSpec>> = {
  matmul_tiled: tiledFusedSpec,
  matmul_quad: quadFusedSpec,
  matmul_staged: stagedFusedSpec,
};

const REDUCE_WG = 256;

const reduceSpec: KernelSpec = {
  name: 'matmul_splitk_reduce',
  source: reduceSrc,
  bindings: [rw('out'), ro('part')],
  params: [
    ['n', 'u32'],
    ['chunks', 'u32'],
    ['alpha', 'f32'],
    ['accumulate', 'u32'],
  ],
  defines: { WG: REDUCE_WG },
};

type KernelName = 'matmul_tiled' | 'matmul_register' | 'matmul_quad' | 'matmul_staged' | 'matmul_subgroup_matrix';

const SPECS: Record<KernelName, KernelSpec> = {
  matmul_tiled: tiledSpec,
  matmul_register: registerSpec,
  matmul_quad: quadSpec,
  matmul_staged: stagedSpec,
  matmul_subgroup_matrix: subgroupMatrixSpec,
};

const VARIANT_KERNEL: Record<MatmulVariant, KernelName> = {
  tiled: 'matmul_tiled',
  register: 'matmul_register',
  subgroup: 'matmul_quad',
  staged: 'matmul_staged',
  'subgroup-matrix': 'matmul_subgroup_matrix',
};

export { isSwiftShader };

/**
 * How a kernel reads operand b: 'f32' (f32, or array<f16> on the tiled kernel with shader-f16: the binding's
 * ELEM_B says which), or a packed weight format, read as array<u32> through lib/weight_<format>.wgsl.
 */
type OperandB = 'f32' | 'f32x4' | Exclude<WeightFormat, 'f32'>;

const variantSpecs = new Map<string, KernelSpec>();

/**
 * The kernel spec of `kernel` (plain or fused) reading b as `fmt`: the weight reader appended, b's binding typed
 * ('f32x4': an f32 b bound as vec4<f32>, the staged kernel's aligned loads).
 */
function specFor(kernel: KernelName, fused: boolean, fmt: OperandB): KernelSpec {
  const key = `${kernel}|${fused}|${fmt}`;
  let spec = variantSpecs.get(key);
  if (spec) return spec;
  const base = fused ? FUSED_SPECS[kernel]! : SPECS[kernel];
  const packed = fmt !== 'f32' && fmt !== 'f32x4';
  const quantized = fmt === 'nf4' || fmt === 'fp4' || fmt === 'int8';
  const bindings = base.bindings.map((b) => (b.name === 'b' && packed ? ro('b', 'u32') : b.name === 'b' && fmt === 'f32x4' ? ro('b', 'vec4<f32>') : b));
  if (quantized) bindings.splice(bindings.findIndex((b) => b.name === 'b') + 1, 0, ro('b_scales'));
  spec = {
    ...base,
    name: packed ? `${base.name}_${fmt}` : base.name,
    source: `${base.source}\n{{include:weight_${fmt}}}\n`,
    bindings,
  };
  variantSpecs.set(key, spec);
  return spec;
}

/** Operand b's bindings: the tensor, or a quantized weight's codes and scales. */
function bBindings(b: WeightTensor): Record<string, Tensor> {
  return b instanceof QuantizedTensor ? { b: b.data, b_scales: b.scales } : { b };
}

/**
 * The matmul kernel this adapter runs by default: on SwiftShader the register-blocked one, with quads sharing
 * loads where it has subgroups (it does); the staged one (workgroup memory, double-buffered) on GPUs.
 */
export function matmulVariant(ctx: GpuContext): MatmulVariant {
  if (!isSwiftShader(ctx)) return 'staged';
  return ctx.hasSubgroups ? 'subgroup' : 'register';
}

/** The shape of one product as the kernels see it. */
export interface MatmulShape {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  /** Independent products (grid z); 1 by default. */
  batch?: number;
  /** How b is stored (default f32): a packed weight narrows the plans that can read it. */
  format?: WeightFormat;
}

/** What `matmulPlan` chose for a product. */
export interface MatmulPlan {
  variant: MatmulVariant;
  kernel: KernelName;
  /** Element types of a and b. */
  elemA: Elem;
  elemB: Elem;
  /** Outputs per workgroup along M and N. */
  tileM: number;
  tileN: number;
  /** The kernel's workgroup-shape defines (WX/WY, QX/QY, the staged kernel's TM/TN/BK/STAGES, ...). */
  defines: Record<string, number | string>;
  enables: WgslEnable[];
  /** K chunks (1 = no split-K) and their length. */
  splitK: number;
  kChunk: number;
  /** Workgroups of the main pass. */
  workgroups: number;
  /** Reduced precision (MatmulConfig.half). */
  half: boolean;
  /** Where the plan came from: the default rule, a forced config, or the autotuner's choice for this shape. */
  source: 'rule' | 'forced' | 'tuned';
  /** Why a requested kernel was replaced, when it was (e.g. subgroup-matrix with a packed weight it cannot stage). */
  fallback?: string;
}

const ceil = (x: number, y: number): number => Math.ceil(x / y);

/** Workgroups the device runs at once, measured by the autotuner's occupancy probe (per context). */
const measuredSize = new WeakMap<GpuContext, number>();
/** The autotuner's choices, by shape key (`matmulShapeKey`), per context. */
const tunedChoices = new WeakMap<GpuContext, Map<string, MatmulConfig>>();

/** Records the device's size (workgroups of 256 invocations it runs at once) as the occupancy probe measured it. */
export function setDeviceSize(ctx: GpuContext, workgroups: number): void {
  if (!(workgroups >= 1)) throw new Error(`setDeviceSize: ${workgroups} workgroups`);
  measuredSize.set(ctx, Math.round(workgroups));
}

/**
 * How many workgroups fill the device: what split-K and the tile size aim for. SwiftShader: 8 (a few per CPU
 * core, fixed so that pinned results do not depend on the machine's core count); a GPU: what the autotuner's
 * occupancy probe measured, else 64 until it has run.
 */
export function deviceSize(ctx: GpuContext): number {
  if (isSwiftShader(ctx)) return 8;
  return measuredSize.get(ctx) ?? 64;
}

/** The key of a product's shape in the autotuner's cache (with the adapter's key in front: autotune.ts). */
export function matmulShapeKey(shape: MatmulShape): string {
  const layout = shape.transA ? 'TN' : shape.transB ? 'NT' : 'NN';
  return `${layout} ${shape.M}x${shape.N}x${shape.K}${(shape.batch ?? 1) > 1 ? ` b${shape.batch}` : ''} ${shape.format ?? 'f32'}`;
}

/** Installs the autotuner's choices: products of these shapes run them (unless a call forces a kernel). */
export function setMatmulChoices(ctx: GpuContext, choices: ReadonlyMap<string, MatmulConfig>): void {
  const map = tunedChoices.get(ctx) ?? new Map<string, MatmulConfig>();
  for (const [k, v] of choices) map.set(k, v);
  tunedChoices.set(ctx, map);
}

/** The autotuner's choices installed on this context. */
export function matmulChoices(ctx: GpuContext): ReadonlyMap<string, MatmulConfig> {
  return tunedChoices.get(ctx) ?? new Map();
}

/** The adapter's subgroup-matrix configuration with f32 results (f16 components only when `half`), if any. */
export function subgroupMatrixConfig(ctx: GpuContext, half: boolean): { M: number; N: number; K: number; componentType: 'f32' | 'f16' } | undefined {
  if (!ctx.hasSubgroupMatrix) return undefined;
  const configs = ctx.adapter.subgroupMatrixConfigs.filter((c) => c.resultComponentType === 'f32' && (c.componentType === 'f32' || (half && c.componentType === 'f16' && ctx.hasF16)));
  const c = configs.find((x) => x.componentType === 'f32') ?? configs[0];
  return c && { M: c.M, N: c.N, K: c.K, componentType: c.componentType as 'f32' | 'f16' };
}

/** Whether a staged shape is whole: every thread moves whole vec4 units of the A and B slices. */
export function stagedShapeValid(d: Readonly<Record<string, number>>): boolean {
  const { WX, WY, TM, TN, BK, STAGES } = d as Record<string, number>;
  const threads = WX! * WY!;
  const ok = (x: number) => [4, 8].includes(x);
  return ok(TM!) && ok(TN!) && BK! % 4 === 0 && BK! > 0 && (STAGES === 1 || STAGES === 2) && threads <= 256 &&
    (TM! * WY! * BK!) / 4 >= threads / 4 && (TN! * WX! * BK!) / 4 >= threads / 4;
}

/** The staged kernel's default shape for a product: 128×128 (8×8 a thread) when that fills the device, else 64×64, else 32×32. */
function stagedDefault(M: number, N: number, batch: number, size: number): Record<string, number> {
  if (Math.min(M, N) >= 128 && ceil(M, 128) * ceil(N, 128) * batch >= size) return { WX: 16, WY: 16, TM: 8, TN: 8, BK: 8, STAGES: 2 };
  if (Math.min(M, N) >= 64 && ceil(M, 64) * ceil(N, 64) * batch >= size / 2) return { WX: 16, WY: 16, TM: 4, TN: 4, BK: 16, STAGES: 2 };
  return { WX: 8, WY: 8, TM: 4, TN: 4, BK: 16, STAGES: 2 };
}

/**
 * The kernel, workgroup shape and split-K for a product on this adapter (docs/kernels.md, "Matmul plans"):
 * - the kernel: `opts.config`, else `opts.variant`, else the autotuner's choice for this shape (when one is
 *   installed), else `matmulVariant(ctx)`; f16 operands need 'tiled' and shader-f16;
 * - the workgroup: the tiled kernel takes 64×64 tiles, or 32×32 when that gives too few workgroups or M or N
 *   is below 64; the quad kernel 2×2 quads (64×64) when there are many tiles and M, N ≥ 64, else one quad
 *   (32×32) per workgroup; the staged kernel 128×128 (8×8 a thread) when those tiles fill the device, else
 *   64×64 or 32×32 (4×4 a thread);
 * - split-K, for products without a batch: when the tiles are too few to fill the device (`deviceSize`) and K
 *   is long (≥ 1024), K is cut into chunks of at least 256 (a multiple of 32) until there are enough workgroups.
 */
export function matmulPlan(
  ctx: GpuContext,
  shape: MatmulShape,
  opts: Pick<MatmulOptions, 'variant' | 'splitK' | 'config'> & { elemA?: Elem; elemB?: Elem } = {},
  op = 'matmul',
): MatmulPlan {
  const elemA = opts.elemA ?? 'f32';
  let source: MatmulPlan['source'] = opts.config || opts.variant ? 'forced' : 'rule';
  let config = opts.config;
  if (!config && !opts.variant && elemA === 'f32' && opts.elemB !== 'f16') {
    const tuned = tunedChoices.get(ctx)?.get(matmulShapeKey(shape));
    if (tuned) {
      config = tuned;
      source = 'tuned';
    }
  }
  const forcedVariant = config?.variant ?? opts.variant;
  // An f16 b (a frozen weight) is read as array<f16> only where that is possible: shader-f16 and the tiled
  // kernel (forced, or needed by an f16 a). Otherwise it stays packed in u32 words (any kernel, no feature).
  const elemB = opts.elemB === 'f16' && ctx.hasF16 && (elemA === 'f16' || forcedVariant === undefined || forcedVariant === 'tiled') ? 'f16' : 'f32';
  const wide16 = elemA === 'f16' || elemB === 'f16';
  if (elemA === 'f16' && !ctx.hasF16) {
    throw new Error(`${op}: an f16 operand a needs the shader-f16 feature, which this adapter (${ctx.adapter.description || ctx.adapter.architecture}) lacks; widen it to f32 first (unpackF16)`);
  }
  let variant = forcedVariant ?? (wide16 ? 'tiled' : matmulVariant(ctx));
  if (!(variant in VARIANT_KERNEL)) throw new Error(`${op}: unknown variant ${String(variant)}`);
  if (wide16 && variant !== 'tiled') throw new Error(`${op}: f16 operands run on the 'tiled' kernel only, not '${variant}'`);
  if (variant === 'subgroup' && !ctx.hasSubgroups) {
    throw new Error(`${op}: the 'subgroup' kernel needs the subgroups feature, which this adapter lacks`);
  }
  const half = config?.half === true;
  if (half && !ctx.hasF16) throw new Error(`${op}: the f16 path (half) needs the shader-f16 feature, which this adapter lacks`);
  if (half && variant !== 'staged' && variant !== 'subgroup-matrix') throw new Error(`${op}: the f16 path runs on the 'staged' and 'subgroup-matrix' kernels, not '${variant}'`);
  let fallback: string | undefined;
  let sgm: ReturnType<typeof subgroupMatrixConfig>;
  if (variant === 'subgroup-matrix') {
    sgm = subgroupMatrixConfig(ctx, half);
    if (!sgm) {
      throw new Error(`${op}: the 'subgroup-matrix' kernel needs the chromium-experimental-subgroup-matrix feature with an f32-result configuration${half ? '' : ' of f32 components (or half: true for f16 ones)'}, which this adapter lacks`);
    }
    if (shape.transA && shape.transB) {
      fallback = 'subgroup-matrix: both operands transposed';
    }
  }
  if (fallback) variant = 'staged';
  const kernel = VARIANT_KERNEL[variant];
  const { M, N, K } = shape;
  const batch = shape.batch ?? 1;
  const size = deviceSize(ctx);
  const few = size;
  let defines: Record<string, number | string>;
  let tileM: number;
  let tileN: number;
  // 64×64 tiles only where both sides fill them: a thin side (LoRA's rank) would leave most of a tile idle.
  const wide = Math.min(M, N) >= 64;
  const given = config?.shape;
  if (kernel === 'matmul_tiled') {
    const big = wide && ceil(M, 64) * ceil(N, 64) * batch >= few;
    const w = given?.W ?? (big ? 16 : 8);
    defines = { WX: w, WY: w };
    tileM = tileN = 4 * w;
  } else if (kernel === 'matmul_register') {
    defines = { WX: 2, WY: 2 };
    tileM = tileN = 32;
  } else if (kernel === 'matmul_quad') {
    const big = wide && ceil(M, 64) * ceil(N, 64) * batch >= 4 * few;
    const q = given?.Q ?? (big ? 2 : 1);
    defines = { QX: q, QY: q };
    tileM = tileN = 32 * q;
  } else if (kernel === 'matmul_staged') {
    const d = given && !fallback ? { ...stagedDefault(M, N, batch, size), ...given } : stagedDefault(M, N, batch, size);
    if (!stagedShapeValid(d)) throw new Error(`${op}: staged shape ${JSON.stringify(d)} is not whole (TM, TN of 4 or 8; BK a multiple of 4; at most 256 threads; every thread a whole vec4 of each slice)`);
    defines = { ...d, ELEM_S: half ? 'f16' : 'f32', KTILE: half ? 'kTileSliced' : 'kTileDirect' };
    tileM = d.TM! * d.WY!;
    tileN = d.TN! * d.WX!;
  } else {
    const c = sgm!;
    const d = { FM: 2, FN: 2, KS: 2, ...(given ?? {}) };
    defines = { SM: c.M, SN: c.N, SK: c.K, FM: d.FM, FN: d.FN, KS: d.KS, WG: ctx.adapter.subgroupMaxSize || 32, ELEM_T: c.componentType };
    tileM = d.FM * c.M;
    tileN = d.FN * c.N;
  }
  const enables: WgslEnable[] = [];
  if (wide16 || half || (kernel === 'matmul_subgroup_matrix' && sgm!.componentType === 'f16')) enables.push('f16');
  if (kernel === 'matmul_quad') enables.push('subgroups');
  if (kernel === 'matmul_subgroup_matrix') enables.push('chromium_experimental_subgroup_matrix');

  const tiles = ceil(M, tileM) * ceil(N, tileN);
  let splitK = 1;
  const wantSplit = config?.splitK ?? opts.splitK;
  if (wantSplit !== undefined) {
    if (!Number.isInteger(wantSplit) || wantSplit < 1) throw new Error(`${op}: splitK must be a positive integer, got ${wantSplit}`);
    if (wantSplit > 1 && batch > 1) throw new Error(`${op}: split-K needs a product without a batch (batch ${batch})`);
    splitK = Math.min(wantSplit, Math.max(1, K));
  } else if (batch === 1 && tiles < few && K >= 1024) {
    splitK = Math.min(ceil(few, tiles), Math.floor(K / 256), 64);
  }
  // The partial products must fit one binding.
  const maxParts = Math.floor(ctx.limits.maxStorageBufferBindingSize / (4 * Math.max(1, M * N)));
  if (splitK > 1) splitK = Math.max(1, Math.min(splitK, maxParts));
  let kChunk = K;
  if (splitK > 1) {
    const align = wantSplit !== undefined ? 8 : 32;
    kChunk = Math.max(align, ceil(ceil(K, splitK), align) * align);
    splitK = ceil(K, kChunk);
    if (splitK <= 1) kChunk = K;
  }
  return {
    variant,
    kernel,
    elemA,
    elemB,
    tileM,
    tileN,
    defines,
    enables,
    splitK: Math.max(1, splitK),
    kChunk,
    workgroups: tiles * (splitK > 1 ? splitK : batch),
    half,
    source,
    ...(fallback ? { fallback } : {}),
  };
}

/** A plan in a few words, e.g. "staged 128×128 8×8 BK8 ×2", "subgroup 64×64 split-K 4". */
export function planLabel(p: MatmulPlan): string {
  const d = p.defines;
  const shape =
    p.kernel === 'matmul_staged'
      ? ` ${d.TM}×${d.TN}/thread BK${d.BK}${d.STAGES === 2 ? ' double-buffered' : ''}`
      : p.kernel === 'matmul_subgroup_matrix'
        ? ` ${d.SM}×${d.SN}×${d.SK} ${d.ELEM_T}`
        : '';
  return `${p.variant} ${p.tileM}×${p.tileN}${shape}${p.half ? ' f16' : ''}${p.splitK > 1 ? ` split-K ${p.splitK}` : ''}${p.source === 'tuned' ? ' (tuned)' : ''}${p.fallback ? ` (fallback: ${p.fallback})` : ''}`;
}

interface Problem {
  /** Number of independent products (grid z). */
  batch: number;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  aBatch: number;
  bBatch: number;
  oBatch: number;
}


function checkTensors(op: string, out: Tensor, a: Tensor, b: WeightTensor): void {
  if (out.dtype !== 'f32') throw new Error(`${op}: out ${shapeText(out, '×')} is ${out.dtype}; out must be f32`);
  if (a.dtype !== 'f32' && a.dtype !== 'f16') throw new Error(`${op}: a ${shapeText(a, '×')} is ${a.dtype}; only f32 and f16 are supported`);
  if (!(b instanceof QuantizedTensor) && b.dtype !== 'f32' && b.dtype !== 'f16' && b.dtype !== 'bf16') {
    throw new Error(`${op}: b ${shapeText(b, '×')} is ${b.dtype}; b must be f32, f16, bf16 or a quantized weight`);
  }
  const bBuffer = b instanceof QuantizedTensor ? b.data.buffer : b.buffer;
  if (out.buffer === a.buffer || out.buffer === bBuffer) {
    throw new Error(`${op}: out ${shapeText(out, '×')} shares its buffer with an input; matmul can not run in place`);
  }
}

/** matmulTN reads b as f32 only (its b is an activation or a gradient, never a frozen weight). */
function checkPlain(op: string, b: WeightTensor): Tensor {
  if (b instanceof QuantizedTensor || b.dtype === 'bf16') throw new Error(`${op}: b ${shapeText(b, '×')} must be f32 or f16 here`);
  return b;
}

/**
 * a [...batch, M, K] against b [(...batch,) X, Y]: a 2-D b is shared by the whole batch (the batch then folds
 * into M); otherwise b's batch dims must equal a's. Returns the batch count and whether b is batched.
 */
function batchOf(op: string, out: Tensor, a: Tensor, b: WeightTensor, expectB: string): { batch: number; rows: number; shared: boolean } {
  const bad = (why: string): Error =>
    new Error(`${op}: shapes out ${shapeText(out, '×')}, a ${shapeText(a, '×')}, b ${shapeText(b, '×')} do not match (${why})`);
  if (a.shape.length < 2) throw bad('a needs at least 2 dims [..., M, K]');
  if (b.shape.length < 2) throw bad(`b needs 2 dims ${expectB} or a's batch dims before them`);
  const lead = a.shape.slice(0, -2);
  if (b.shape.length === 2) {
    return { batch: 1, rows: numel(a.shape.slice(0, -1)), shared: true };
  }
  if (b.shape.length !== a.shape.length || b.shape.slice(0, -2).some((d, i) => d !== lead[i])) {
    throw bad(`b must be ${expectB} or have a's batch dims [${lead.join('×')}] before ${expectB}`);
  }
  return { batch: numel(lead), rows: a.shape[a.shape.length - 2]!, shared: false };
}

function checkOut(op: string, out: Tensor, a: Tensor, b: WeightTensor, shared: boolean, N: number): void {
  const want = [...a.shape.slice(0, -1), N];
  const ok = shared
    ? out.shape.length >= 1 && out.shape[out.shape.length - 1] === N && out.size === numel(want)
    : out.shape.length === want.length && out.shape.every((d, i) => d === want[i]);
  if (!ok) {
    throw new Error(`${op}: out ${shapeText(out, '×')} should be [${want.join('×')}] for a ${shapeText(a, '×')} and b ${shapeText(b, '×')}`);
  }
}

function dispatchGrid(
  ctx: GpuContext,
  k: ReturnType<GpuContext['kernel']>,
  bindings: Record<string, Tensor>,
  params: Record<string, number>,
  grid: [number, number, number],
  max: number,
): void {
  const [gx, gy, gz] = grid;
  for (let z0 = 0; z0 < gz; z0 += max) {
    for (let m0 = 0; m0 < gy; m0 += max) {
      for (let n0 = 0; n0 < gx; n0 += max) {
        ctx.dispatch(k, bindings, { ...params, m0, n0, z0 }, [
          Math.min(max, gx - n0),
          Math.min(max, gy - m0),
          Math.min(max, gz - z0),
        ]);
      }
    }
  }
}

/**
 * Checks opts.addProduct and opts.bias against out [M, N] (M rows of the main product) and returns how
 * many columns K2 the second product has (0 without one).
 */
function checkEpilogue(op: string, out: Tensor, p: Problem, opts: MatmulOptions): number {
  const { addProduct: add, bias } = opts;
  if (bias) {
    if (bias.dtype !== 'f32' || bias.size !== p.N) throw new Error(`${op}: bias ${shapeText(bias, '×')} (${bias.dtype}) should be f32 [${p.N}] for out ${shapeText(out, '×')}`);
    if (bias.buffer === out.buffer) throw new Error(`${op}: bias ${shapeText(bias, '×')} shares its buffer with out ${shapeText(out, '×')}`);
  }
  if (!add) return 0;
  const { a: a2, b: b2, layout } = add;
  if (layout !== 'NT' && layout !== 'NN') throw new Error(`${op}: addProduct.layout must be 'NT' or 'NN', got ${String(layout)}`);
  const K2 = a2.shape[a2.shape.length - 1] ?? 0;
  const bN = layout === 'NT' ? b2.shape[0] : b2.shape[1];
  const bK = layout === 'NT' ? b2.shape[1] : b2.shape[0];
  const want = layout === 'NT' ? `[${p.N}, ${K2}]` : `[${K2}, ${p.N}]`;
  if (a2.dtype !== 'f32' || b2.dtype !== 'f32') throw new Error(`${op}: addProduct operands a ${shapeText(a2, '×')} and b ${shapeText(b2, '×')} must be f32`);
  if (K2 < 1 || a2.size !== p.batch * p.M * K2 || b2.shape.length !== 2 || bN !== p.N || bK !== K2) {
    throw new Error(`${op}: addProduct a ${shapeText(a2, '×')} should be [..., K2] with the ${p.batch * p.M} rows of out ${shapeText(out, '×')}, and b ${shapeText(b2, '×')} ${want} (layout ${layout})`);
  }
  if (a2.buffer === out.buffer || b2.buffer === out.buffer) throw new Error(`${op}: addProduct shares a buffer with out ${shapeText(out, '×')}; it can not run in place`);
  return K2;
}

function record(ctx: GpuContext, op: string, out: Tensor, a: Tensor, b: WeightTensor, p: Problem, opts: MatmulOptions): void {
  const K2 = checkEpilogue(op, out, p, opts);
  const fuse = K2 > 0 || opts.bias !== undefined;
  const format = weightFormatOf(b);
  const plan = matmulPlan(
    ctx,
    { transA: p.transA, transB: p.transB, M: p.M, N: p.N, K: p.K, batch: p.batch, format },
    { variant: opts.variant, splitK: opts.splitK, config: opts.config, elemA: a.dtype as Elem, ...(format === 'f16' ? { elemB: 'f16' as const } : {}) },
    op,
  );
  // b as the kernel reads it: f32 (or native f16 on the tiled kernel), else the packed format.
  let bFormat: OperandB = format === 'f32' || (format === 'f16' && plan.elemB === 'f16') ? 'f32' : format;
  const bBind = bBindings(b);
  const defines: Record<string, string | number> = { ...plan.defines, TRANS_A: String(p.transA), TRANS_B: String(p.transB) };
  // Every 4 values a block load of b takes start at a multiple of 4 (the contiguous dimension and b's batch
  // stride are multiples of 4; split-K chunks are multiples of 8).
  const bAligned = p.bBatch % 4 === 0 && (p.transB ? p.K % 4 === 0 : p.N % 4 === 0) && (plan.splitK === 1 || plan.kChunk % 4 === 0);
  if (plan.kernel === 'matmul_tiled') Object.assign(defines, { ELEM_A: plan.elemA, ELEM_B: plan.elemB });
  else if (plan.kernel === 'matmul_staged') {
    // vec4 loads of a and b where aligned (a bound as vec4<f32>, an f32 b through weight_f32x4, a packed b by wQuad).
    const aAligned = p.aBatch % 4 === 0 && (p.transA ? p.M % 4 === 0 : p.K % 4 === 0) && (plan.splitK === 1 || plan.kChunk % 4 === 0);
    Object.assign(defines, {
      VEC_A: String(aAligned),
      VEC_B: String(bAligned),
      A_T: aAligned ? 'vec4<f32>' : 'f32',
      A_AT: aAligned ? 'a[i >> 2u][i & 3u]' : 'a[i]',
      A_QUAD: aAligned ? 'a[i >> 2u]' : 'vec4(a[i], a[i + 1u], a[i + 2u], a[i + 3u])',
    });
    if (bFormat === 'f32' && bAligned) bFormat = 'f32x4';
  } else if (plan.kernel !== 'matmul_subgroup_matrix') {
    // Packed b read 4 values at a time where every block load starts at a multiple of 4 (matmul_blocks.wgsl).
    defines.B_QUADS = String(bFormat !== 'f32' && bAligned);
  }
  const alpha = opts.alpha ?? 1;
  const alpha2 = opts.addProduct?.alpha ?? 1;
  const accumulate = opts.accumulate ? 1 : 0;
  const max = Math.min(opts.maxWorkgroupsPerDimension ?? Infinity, ctx.limits.maxComputeWorkgroupsPerDimension);
  const gx = Math.ceil(p.N / plan.tileN);
  const gy = Math.ceil(p.M / plan.tileM);
  const base = { M: p.M, N: p.N, K: p.K };
  const fusedSpec = FUSED_SPECS[plan.kernel];
  if (fuse && fusedSpec && plan.splitK === 1 && p.batch === 1 && alpha !== 0) {
    const add = opts.addProduct;
    Object.assign(defines, { TRANS_B2: String(add?.layout === 'NT'), HAS_BIAS: String(opts.bias !== undefined) });
    const k = ctx.kernel(specFor(plan.kernel, true, bFormat), defines, plan.enables);
    // An unused binding takes one of the f32 epilogue operands (a or b may be f16, whose byte length need not
    // be a multiple of 4 as an f32 binding's must); the kernel never reads it.
    const spare = add?.a ?? opts.bias!;
    dispatchGrid(ctx, k, { out, a, ...bBind, a2: add?.a ?? spare, b2: add?.b ?? spare, bias: opts.bias ?? spare }, {
      ...base, aBatch: p.aBatch, bBatch: p.bBatch, oBatch: p.oBatch, kStep: 0, kLen: p.K, alpha, accumulate,
      K2, scale2: K2 > 0 ? alpha2 / alpha : 0,
    }, [gx, gy, 1], max);
    return;
  }
  const k = ctx.kernel(specFor(plan.kernel, false, bFormat), defines, plan.enables);
  if (plan.splitK === 1) {
    dispatchGrid(ctx, k, { out, a, ...bBind }, {
      ...base, aBatch: p.aBatch, bBatch: p.bBatch, oBatch: p.oBatch, kStep: 0, kLen: p.K, alpha, accumulate,
    }, [gx, gy, p.batch], max);
  } else {
    recordSplitK(ctx, op, k, out, a, bBind, p, plan, { alpha, accumulate, max, gx, gy });
  }
  if (!fuse) return;
  // The epilogue as separate dispatches, for what the fused kernels do not cover.
  const add = opts.addProduct;
  if (add) {
    const out2 = out.view([p.batch * p.M, p.N]);
    const a2 = add.a.view([p.batch * p.M, K2]);
    const addOpts = { accumulate: true, alpha: alpha2, variant: opts.variant, maxWorkgroupsPerDimension: opts.maxWorkgroupsPerDimension };
    if (add.layout === 'NT') matmulNT(ctx, out2, a2, add.b, addOpts);
    else matmulNN(ctx, out2, a2, add.b, addOpts);
  }
  if (opts.bias) biasAdd(ctx, out, opts.bias);
}

function recordSplitK(
  ctx: GpuContext,
  op: string,
  k: ReturnType<GpuContext['kernel']>,
  out: Tensor,
  a: Tensor,
  bBind: Record<string, Tensor>,
  p: Problem,
  plan: MatmulPlan,
  o: { alpha: number; accumulate: number; max: number; gx: number; gy: number },
): void {
  const { alpha, accumulate, max, gx, gy } = o;
  const base = { M: p.M, N: p.N, K: p.K };
  // Split-K: chunk z covers k in [z·kChunk, (z+1)·kChunk) and writes part[z]; the reduce sums the chunks.
  const n = p.M * p.N;
  const part = ctx.empty([plan.splitK, p.M, p.N], 'f32', { label: `${op} split-K partial products [${plan.splitK}×${p.M}×${p.N}]` });
  dispatchGrid(ctx, k, { out: part, a, ...bBind }, {
    ...base, aBatch: 0, bBatch: 0, oBatch: n, kStep: plan.kChunk, kLen: plan.kChunk, alpha: 1, accumulate: 0,
  }, [gx, gy, plan.splitK], max);
  ctx.dispatch(ctx.kernel(reduceSpec), { out, part }, { n, chunks: plan.splitK, alpha, accumulate }, grid1d(n, REDUCE_WG, max));
  part.release();
}

/**
 * out[...batch, M, N] = alpha · a[...batch, M, K] · b[(...batch,) N, K]ᵀ  (+ out when accumulate).
 * The linear forward y = x·Wᵀ; a 2-D b is shared across the batch.
 */
export function matmulNT(ctx: GpuContext, out: Tensor, a: Tensor, b: WeightTensor, opts: MatmulOptions = {}): void {
  matmulBatched(ctx, 'matmulNT', true, out, a, b, opts);
}

/**
 * out[...batch, M, N] = alpha · a[...batch, M, K] · b[(...batch,) K, N]  (+ out when accumulate).
 * dX = dY·W for W [N_out, K_in]; a 2-D b is shared across the batch.
 */
export function matmulNN(ctx: GpuContext, out: Tensor, a: Tensor, b: WeightTensor, opts: MatmulOptions = {}): void {
  matmulBatched(ctx, 'matmulNN', false, out, a, b, opts);
}

/** matmulNT (transB: b is [(...batch,) N, K]) and matmulNN (b is [(...batch,) K, N]): checks, then records. */
function matmulBatched(ctx: GpuContext, op: string, transB: boolean, out: Tensor, a: Tensor, b: WeightTensor, opts: MatmulOptions): void {
  checkTensors(op, out, a, b);
  const layout = transB ? '[N, K]' : '[K, N]';
  const { batch, rows, shared } = batchOf(op, out, a, b, layout);
  const K = a.shape[a.shape.length - 1]!;
  const N = b.shape[b.shape.length - (transB ? 2 : 1)]!;
  const bK = b.shape[b.shape.length - (transB ? 1 : 2)];
  if (bK !== K) {
    throw new Error(`${op}: a ${shapeText(a, '×')} has K = ${K} but b ${shapeText(b, '×')} has K = ${bK} (b is ${layout})`);
  }
  checkOut(op, out, a, b, shared, N);
  record(ctx, op, out, a, b, {
    batch, M: rows, N, K, transA: false, transB,
    aBatch: rows * K, bBatch: shared ? 0 : N * K, oBatch: rows * N,
  }, opts);
}

/**
 * out[M, N] = alpha · a[K, M]ᵀ · b[K, N]  (+ out when accumulate), where K is the product of all leading dims
 * of a [..., M] and b [..., N], which must agree. dW = dYᵀ·X: dy [B, T, N_out], x [B, T, K_in] → dW [N_out, K_in].
 */
export function matmulTN(ctx: GpuContext, out: Tensor, a: Tensor, bIn: WeightTensor, opts: MatmulOptions = {}): void {
  const op = 'matmulTN';
  const b = checkPlain(op, bIn);
  checkTensors(op, out, a, b);
  if (a.shape.length < 1 || b.shape.length < 1) {
    throw new Error(`${op}: a ${shapeText(a, '×')} and b ${shapeText(b, '×')} need a last dim`);
  }
  const M = a.shape[a.shape.length - 1]!;
  const N = b.shape[b.shape.length - 1]!;
  const K = numel(a.shape.slice(0, -1));
  if (numel(b.shape.slice(0, -1)) !== K) {
    throw new Error(`${op}: a ${shapeText(a, '×')} and b ${shapeText(b, '×')} have different numbers of rows (${K} vs ${numel(b.shape.slice(0, -1))})`);
  }
  if (out.shape.length !== 2 || out.shape[0] !== M || out.shape[1] !== N) {
    throw new Error(`${op}: out ${shapeText(out, '×')} should be [${M}×${N}] for a ${shapeText(a, '×')} and b ${shapeText(b, '×')}`);
  }
  if (opts.addProduct || opts.bias) throw new Error(`${op}: addProduct and bias are for matmulNT and matmulNN (a linear's forward and dX)`);
  record(ctx, op, out, a, b, {
    batch: 1, M, N, K, transA: true, transB: false, aBatch: 0, bBatch: 0, oBatch: 0,
  }, opts);
}
