// Matrix multiplication in the three layouts a linear layer needs (matmulNT, matmulNN, matmulTN) on the tiled,
// register and subgroup kernels, split-K, the fused epilogue and packed frozen weights; docs/kernels.md ("Matrix
// multiplication").
import { isSwiftShader } from '../adapter-info';
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec, type WgslEnable } from '../kernel';
import { numel, shapeText, type Tensor } from '../tensor';
import { QuantizedTensor, weightFormatOf, type WeightFormat, type WeightTensor } from '../weight';
import tiledSrc from '../../../shaders/matmul_tiled.wgsl?raw';
import registerSrc from '../../../shaders/matmul_register.wgsl?raw';
import quadSrc from '../../../shaders/matmul_quad.wgsl?raw';
import reduceSrc from '../../../shaders/matmul_splitk_reduce.wgsl?raw';
import plainEpilogueSrc from '../../../shaders/matmul_epilogue_none.wgsl?raw';
import fusedEpilogueSrc from '../../../shaders/matmul_epilogue_fused.wgsl?raw';
import { biasAdd } from './bias';

export type MatmulVariant = 'tiled' | 'register' | 'subgroup';

export const MATMUL_VARIANTS: readonly MatmulVariant[] = ['tiled', 'register', 'subgroup'];

export interface MatmulOptions {
  /** out += alpha·(product) instead of out = alpha·(product). */
  accumulate?: boolean;
  /** Scale of the product (default 1). */
  alpha?: number;
  /** Forces a kernel; by default `matmulVariant(ctx)`. f16 operands always run on 'tiled'. */
  variant?: MatmulVariant;
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

const FUSED_SPECS: Partial<Record<KernelName, KernelSpec>> = {
  matmul_tiled: tiledFusedSpec,
  matmul_quad: quadFusedSpec,
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

type KernelName = 'matmul_tiled' | 'matmul_register' | 'matmul_quad';

const SPECS: Record<KernelName, KernelSpec> = {
  matmul_tiled: tiledSpec,
  matmul_register: registerSpec,
  matmul_quad: quadSpec,
};

const VARIANT_KERNEL: Record<MatmulVariant, KernelName> = {
  tiled: 'matmul_tiled',
  register: 'matmul_register',
  subgroup: 'matmul_quad',
};

export { isSwiftShader };

/**
 * How a kernel reads operand b: 'f32' (f32, or array<f16> on the tiled kernel with shader-f16: the binding's
 * ELEM_B says which), or a packed weight format, read as array<u32> through lib/weight_<format>.wgsl.
 */
type OperandB = 'f32' | Exclude<WeightFormat, 'f32'>;

const variantSpecs = new Map<string, KernelSpec>();

/** The kernel spec of `kernel` (plain or fused) reading b as `fmt`: the weight reader appended, b's binding typed. */
function specFor(kernel: KernelName, fused: boolean, fmt: OperandB): KernelSpec {
  const key = `${kernel}|${fused}|${fmt}`;
  let spec = variantSpecs.get(key);
  if (spec) return spec;
  const base = fused ? FUSED_SPECS[kernel]! : SPECS[kernel];
  const packed = fmt !== 'f32';
  const quantized = fmt === 'nf4' || fmt === 'fp4' || fmt === 'int8';
  const bindings = base.bindings.map((b) => (b.name === 'b' && packed ? ro('b', 'u32') : b));
  if (quantized) bindings.splice(bindings.findIndex((b) => b.name === 'b') + 1, 0, ro('b_scales'));
  spec = {
    ...base,
    name: packed ? `${base.name}_${fmt}` : base.name,
    source: `${base.source}\n{{include:weight_${packed ? fmt : 'f32'}}}\n`,
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
 * The matmul kernel this adapter runs fastest: on SwiftShader the register-blocked one, with quads sharing
 * loads where it has subgroups (it does); the tiled one elsewhere.
 */
export function matmulVariant(ctx: GpuContext): MatmulVariant {
  if (!isSwiftShader(ctx)) return 'tiled';
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
  /** The kernel's workgroup-shape defines (WX/WY or QX/QY). */
  defines: Record<string, number>;
  enables: WgslEnable[];
  /** K chunks (1 = no split-K) and their length. */
  splitK: number;
  kChunk: number;
  /** Workgroups of the main pass. */
  workgroups: number;
}

const ceil = (x: number, y: number): number => Math.ceil(x / y);

/** Workgroups below which a product counts as having few output tiles (SwiftShader: a few per CPU core). */
function fewGroups(ctx: GpuContext): number {
  return isSwiftShader(ctx) ? 8 : 64;
}

/**
 * The kernel, workgroup shape and split-K for a product on this adapter:
 * - the variant: `opts.variant`, else `matmulVariant(ctx)`; f16 operands need 'tiled' and shader-f16;
 * - the workgroup: the tiled kernel takes 64×64 tiles, or 32×32 when that gives too few workgroups or M or N
 *   is below 64; the quad kernel 2×2 quads (64×64) when there are many tiles and M, N ≥ 64, else one quad
 *   (32×32) per workgroup;
 * - split-K, for products without a batch: when the tiles are too few to occupy the device and K is long
 *   (≥ 1024), K is cut into chunks of at least 256 (a multiple of 32) until there are enough workgroups.
 */
export function matmulPlan(
  ctx: GpuContext,
  shape: MatmulShape,
  opts: Pick<MatmulOptions, 'variant' | 'splitK'> & { elemA?: Elem; elemB?: Elem } = {},
  op = 'matmul',
): MatmulPlan {
  const elemA = opts.elemA ?? 'f32';
  // An f16 b (a frozen weight) is read as array<f16> only where that is possible: shader-f16 and the tiled
  // kernel (forced, or needed by an f16 a). Otherwise it stays packed in u32 words (any kernel, no feature).
  const elemB = opts.elemB === 'f16' && ctx.hasF16 && (elemA === 'f16' || opts.variant === undefined || opts.variant === 'tiled') ? 'f16' : 'f32';
  const half = elemA === 'f16' || elemB === 'f16';
  if (elemA === 'f16' && !ctx.hasF16) {
    throw new Error(`${op}: an f16 operand a needs the shader-f16 feature, which this adapter (${ctx.adapter.description || ctx.adapter.architecture}) lacks; widen it to f32 first (unpackF16)`);
  }
  const variant = opts.variant ?? (half ? 'tiled' : matmulVariant(ctx));
  if (!(variant in VARIANT_KERNEL)) throw new Error(`${op}: unknown variant ${String(variant)}`);
  if (half && variant !== 'tiled') throw new Error(`${op}: f16 operands run on the 'tiled' kernel only, not '${variant}'`);
  if (variant === 'subgroup' && !ctx.hasSubgroups) {
    throw new Error(`${op}: the 'subgroup' kernel needs the subgroups feature, which this adapter lacks`);
  }
  const kernel = VARIANT_KERNEL[variant];
  const { M, N, K } = shape;
  const batch = shape.batch ?? 1;
  const few = fewGroups(ctx);
  let defines: Record<string, number>;
  let tileM: number;
  let tileN: number;
  // 64×64 tiles only where both sides fill them: a thin side (LoRA's rank) would leave most of a tile idle.
  const wide = Math.min(M, N) >= 64;
  if (kernel === 'matmul_tiled') {
    const big = wide && ceil(M, 64) * ceil(N, 64) * batch >= few;
    const w = big ? 16 : 8;
    defines = { WX: w, WY: w };
    tileM = tileN = 4 * w;
  } else if (kernel === 'matmul_register') {
    defines = { WX: 2, WY: 2 };
    tileM = tileN = 32;
  } else {
    const big = wide && ceil(M, 64) * ceil(N, 64) * batch >= 4 * few;
    const q = big ? 2 : 1;
    defines = { QX: q, QY: q };
    tileM = tileN = 32 * q;
  }
  const enables: WgslEnable[] = [];
  if (half) enables.push('f16');
  if (kernel === 'matmul_quad') enables.push('subgroups');

  const tiles = ceil(M, tileM) * ceil(N, tileN);
  let splitK = 1;
  if (opts.splitK !== undefined) {
    if (!Number.isInteger(opts.splitK) || opts.splitK < 1) throw new Error(`${op}: splitK must be a positive integer, got ${opts.splitK}`);
    if (opts.splitK > 1 && batch > 1) throw new Error(`${op}: split-K needs a product without a batch (batch ${batch})`);
    splitK = Math.min(opts.splitK, Math.max(1, K));
  } else if (batch === 1 && tiles < few && K >= 1024) {
    splitK = Math.min(ceil(few, tiles), Math.floor(K / 256), 64);
  }
  // The partial products must fit one binding.
  const maxParts = Math.floor(ctx.limits.maxStorageBufferBindingSize / (4 * Math.max(1, M * N)));
  if (splitK > 1) splitK = Math.max(1, Math.min(splitK, maxParts));
  let kChunk = K;
  if (splitK > 1) {
    const align = opts.splitK !== undefined ? 8 : 32;
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
  };
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
    { transA: p.transA, transB: p.transB, M: p.M, N: p.N, K: p.K, batch: p.batch },
    { variant: opts.variant, splitK: opts.splitK, elemA: a.dtype as Elem, ...(format === 'f16' ? { elemB: 'f16' as const } : {}) },
    op,
  );
  // b as the kernel reads it: f32 (or native f16 on the tiled kernel), else the packed format.
  const bFormat: OperandB = format === 'f32' || (format === 'f16' && plan.elemB === 'f16') ? 'f32' : format;
  const bBind = bBindings(b);
  const defines: Record<string, string | number> = { ...plan.defines, TRANS_A: String(p.transA), TRANS_B: String(p.transB) };
  if (plan.kernel === 'matmul_tiled') Object.assign(defines, { ELEM_A: plan.elemA, ELEM_B: plan.elemB });
  // Packed b read 4 values at a time where every block load starts at a multiple of 4 (matmul_blocks.wgsl).
  else defines.B_QUADS = String(bFormat !== 'f32' && p.bBatch % 4 === 0 && (p.transB ? p.K % 4 === 0 : p.N % 4 === 0));
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
