// Matrix multiplication, the three layouts a linear layer needs (llm.c's matmul_forward / matmul_backward):
//   matmulNT: y  = x·Wᵀ      (forward,   W stored [N_out, K_in])
//   matmulNN: dX = dY·W      (backward into the activations)
//   matmulTN: dW = dYᵀ·X     (backward into the weights, reducing over every token)
// Two kernels implement all three: a tiled one that stages slices of A and B in workgroup memory (what GPUs
// run fastest), and a register-blocked one without workgroup memory or barriers (what SwiftShader, a CPU
// implementation of WebGPU, runs fastest: its barriers are expensive). `matmulVariant(ctx)` picks one per
// adapter; `opts.variant` forces one. Both compute each output as one f32 dot product in k order.
import type { GpuContext } from '../context';
import type { KernelSpec } from '../kernel';
import { numel, type Tensor } from '../tensor';
import tiledSrc from '../../../shaders/matmul_tiled.wgsl?raw';
import registerSrc from '../../../shaders/matmul_register.wgsl?raw';
import registerScalarSrc from '../../../shaders/matmul_register_scalar.wgsl?raw';

export type MatmulVariant = 'tiled' | 'register';

export interface MatmulOptions {
  /** out += alpha·(product) instead of out = alpha·(product). */
  accumulate?: boolean;
  /** Scale of the product (default 1). */
  alpha?: number;
  /** Forces a kernel; by default `matmulVariant(ctx)`. */
  variant?: MatmulVariant;
  /**
   * Largest grid dimension to use (default: the device's maxComputeWorkgroupsPerDimension). Bigger grids are
   * split into several dispatches; tests lower it to exercise that path on small shapes.
   */
  maxWorkgroupsPerDimension?: number;
}

const BINDINGS = [
  { name: 'out', access: 'read_write', type: 'f32' },
  { name: 'a', access: 'read', type: 'f32' },
  { name: 'b', access: 'read', type: 'f32' },
] as const;

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
  ['alpha', 'f32'],
  ['accumulate', 'u32'],
] as const;

/** Workgroups of 16×16 threads, 64×64 outputs per workgroup, K staged 16 at a time (8 KiB of workgroup memory). */
const tiledSpec: KernelSpec = {
  name: 'matmul_tiled',
  source: tiledSrc,
  bindings: BINDINGS,
  params: PARAMS,
  defines: { WX: 16, WY: 16, BK: 16, TRANS_A: 'false', TRANS_B: 'false' },
};

/** vec4 loads, 8×8 outputs per thread, workgroups of 4×4 threads: 32×32 outputs per workgroup. */
const registerSpec: KernelSpec = {
  name: 'matmul_register',
  source: registerSrc,
  bindings: [
    { name: 'out', access: 'read_write', type: 'f32' },
    { name: 'a', access: 'read', type: 'vec4<f32>' },
    { name: 'b', access: 'read', type: 'vec4<f32>' },
  ],
  params: PARAMS,
  defines: { WX: 4, WY: 4, TRANS_A: 'false', TRANS_B: 'false' },
};

/** Scalar loads, 4×4 outputs per thread, workgroups of 8×8 threads: for shapes the vec4 kernel can not read. */
const registerScalarSpec: KernelSpec = {
  name: 'matmul_register_scalar',
  source: registerScalarSrc,
  bindings: BINDINGS,
  params: PARAMS,
  defines: { WX: 8, WY: 8, TRANS_A: 'false', TRANS_B: 'false' },
};

/** Outputs per thread along each axis, per kernel. */
const BLOCK: Record<string, number> = { matmul_tiled: 4, matmul_register: 8, matmul_register_scalar: 4 };

/** Whether the adapter is SwiftShader (Dawn's CPU fallback, or Chrome's when it has no GPU). */
export function isSwiftShader(ctx: GpuContext): boolean {
  const { architecture, vendor, description } = ctx.adapter;
  return architecture === 'swiftshader' || (vendor === 'google' && /swiftshader/i.test(description));
}

/** The matmul kernel this adapter runs fastest: register-blocked on SwiftShader, tiled elsewhere. */
export function matmulVariant(ctx: GpuContext): MatmulVariant {
  return isSwiftShader(ctx) ? 'register' : 'tiled';
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

const fmt = (t: Tensor): string => `[${t.shape.join('×')}]`;

function checkTensors(op: string, out: Tensor, a: Tensor, b: Tensor): void {
  for (const [name, t] of [['out', out], ['a', a], ['b', b]] as const) {
    if (t.dtype !== 'f32') throw new Error(`${op}: ${name} ${fmt(t)} is ${t.dtype}; only f32 is supported`);
  }
  if (out.buffer === a.buffer || out.buffer === b.buffer) {
    throw new Error(`${op}: out ${fmt(out)} shares its buffer with an input; matmul can not run in place`);
  }
}

/**
 * a [...batch, M, K] against b [(...batch,) X, Y]: a 2-D b is shared by the whole batch (the batch then folds
 * into M); otherwise b's batch dims must equal a's. Returns the batch count and whether b is batched.
 */
function batchOf(op: string, out: Tensor, a: Tensor, b: Tensor, expectB: string): { batch: number; rows: number; shared: boolean } {
  const bad = (why: string): Error =>
    new Error(`${op}: shapes out ${fmt(out)}, a ${fmt(a)}, b ${fmt(b)} do not match (${why})`);
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

function checkOut(op: string, out: Tensor, a: Tensor, b: Tensor, shared: boolean, N: number): void {
  const want = [...a.shape.slice(0, -1), N];
  const ok = shared
    ? out.shape.length >= 1 && out.shape[out.shape.length - 1] === N && out.size === numel(want)
    : out.shape.length === want.length && out.shape.every((d, i) => d === want[i]);
  if (!ok) {
    throw new Error(`${op}: out ${fmt(out)} should be [${want.join('×')}] for a ${fmt(a)} and b ${fmt(b)}`);
  }
}

/**
 * The kernel that runs a problem: the tiled one, or for the register variant the vec4 kernel when every
 * contiguous dimension is a multiple of 4 (A's K or M, B's K or N), else the scalar one.
 */
export function matmulKernelFor(
  variant: MatmulVariant,
  layout: { transA: boolean; transB: boolean; M: number; N: number; K: number },
): 'matmul_tiled' | 'matmul_register' | 'matmul_register_scalar' {
  if (variant === 'tiled') return 'matmul_tiled';
  const aOk = (layout.transA ? layout.M : layout.K) % 4 === 0;
  const bOk = (layout.transB ? layout.K : layout.N) % 4 === 0;
  return aOk && bOk ? 'matmul_register' : 'matmul_register_scalar';
}

const SPECS = { matmul_tiled: tiledSpec, matmul_register: registerSpec, matmul_register_scalar: registerScalarSpec };

function record(ctx: GpuContext, op: string, out: Tensor, a: Tensor, b: Tensor, p: Problem, opts: MatmulOptions): void {
  const variant = opts.variant ?? matmulVariant(ctx);
  if (variant !== 'tiled' && variant !== 'register') throw new Error(`${op}: unknown variant ${String(variant)}`);
  const name = matmulKernelFor(variant, p);
  const spec = SPECS[name];
  const k = ctx.kernel(spec, { TRANS_A: String(p.transA), TRANS_B: String(p.transB) });
  const defines = spec.defines!;
  const BM = BLOCK[name]! * Number(defines.WY);
  const BN = BLOCK[name]! * Number(defines.WX);
  const alpha = opts.alpha ?? 1;
  const accumulate = opts.accumulate ? 1 : 0;
  const max = Math.min(opts.maxWorkgroupsPerDimension ?? Infinity, ctx.limits.maxComputeWorkgroupsPerDimension);
  const gx = Math.ceil(p.N / BN);
  const gy = Math.ceil(p.M / BM);
  const gz = p.batch;
  for (let z0 = 0; z0 < gz; z0 += max) {
    for (let m0 = 0; m0 < gy; m0 += max) {
      for (let n0 = 0; n0 < gx; n0 += max) {
        ctx.dispatch(
          k,
          { out, a, b },
          {
            M: p.M,
            N: p.N,
            K: p.K,
            aBatch: p.aBatch,
            bBatch: p.bBatch,
            oBatch: p.oBatch,
            m0,
            n0,
            z0,
            alpha,
            accumulate,
          },
          [Math.min(max, gx - n0), Math.min(max, gy - m0), Math.min(max, gz - z0)],
        );
      }
    }
  }
}

/**
 * out[...batch, M, N] = alpha · a[...batch, M, K] · b[(...batch,) N, K]ᵀ  (+ out when accumulate).
 * The linear forward y = x·Wᵀ; a 2-D b is shared across the batch.
 */
export function matmulNT(ctx: GpuContext, out: Tensor, a: Tensor, b: Tensor, opts: MatmulOptions = {}): void {
  const op = 'matmulNT';
  checkTensors(op, out, a, b);
  const { batch, rows, shared } = batchOf(op, out, a, b, '[N, K]');
  const K = a.shape[a.shape.length - 1]!;
  const N = b.shape[b.shape.length - 2]!;
  if (b.shape[b.shape.length - 1] !== K) {
    throw new Error(`${op}: a ${fmt(a)} has K = ${K} but b ${fmt(b)} has K = ${b.shape[b.shape.length - 1]} (b is [N, K])`);
  }
  checkOut(op, out, a, b, shared, N);
  record(ctx, op, out, a, b, {
    batch, M: rows, N, K, transA: false, transB: true,
    aBatch: rows * K, bBatch: shared ? 0 : N * K, oBatch: rows * N,
  }, opts);
}

/**
 * out[...batch, M, N] = alpha · a[...batch, M, K] · b[(...batch,) K, N]  (+ out when accumulate).
 * dX = dY·W for W [N_out, K_in]; a 2-D b is shared across the batch.
 */
export function matmulNN(ctx: GpuContext, out: Tensor, a: Tensor, b: Tensor, opts: MatmulOptions = {}): void {
  const op = 'matmulNN';
  checkTensors(op, out, a, b);
  const { batch, rows, shared } = batchOf(op, out, a, b, '[K, N]');
  const K = a.shape[a.shape.length - 1]!;
  const N = b.shape[b.shape.length - 1]!;
  if (b.shape[b.shape.length - 2] !== K) {
    throw new Error(`${op}: a ${fmt(a)} has K = ${K} but b ${fmt(b)} has K = ${b.shape[b.shape.length - 2]} (b is [K, N])`);
  }
  checkOut(op, out, a, b, shared, N);
  record(ctx, op, out, a, b, {
    batch, M: rows, N, K, transA: false, transB: false,
    aBatch: rows * K, bBatch: shared ? 0 : K * N, oBatch: rows * N,
  }, opts);
}

/**
 * out[M, N] = alpha · a[K, M]ᵀ · b[K, N]  (+ out when accumulate), where K is the product of all leading dims
 * of a [..., M] and b [..., N], which must agree. dW = dYᵀ·X: dy [B, T, N_out], x [B, T, K_in] → dW [N_out, K_in].
 */
export function matmulTN(ctx: GpuContext, out: Tensor, a: Tensor, b: Tensor, opts: MatmulOptions = {}): void {
  const op = 'matmulTN';
  checkTensors(op, out, a, b);
  if (a.shape.length < 1 || b.shape.length < 1) {
    throw new Error(`${op}: a ${fmt(a)} and b ${fmt(b)} need a last dim`);
  }
  const M = a.shape[a.shape.length - 1]!;
  const N = b.shape[b.shape.length - 1]!;
  const K = numel(a.shape.slice(0, -1));
  if (numel(b.shape.slice(0, -1)) !== K) {
    throw new Error(`${op}: a ${fmt(a)} and b ${fmt(b)} have different numbers of rows (${K} vs ${numel(b.shape.slice(0, -1))})`);
  }
  if (out.shape.length !== 2 || out.shape[0] !== M || out.shape[1] !== N) {
    throw new Error(`${op}: out ${fmt(out)} should be [${M}×${N}] for a ${fmt(a)} and b ${fmt(b)}`);
  }
  record(ctx, op, out, a, b, {
    batch: 1, M, N, K, transA: true, transB: false, aBatch: 0, bBatch: 0, oBatch: 0,
  }, opts);
}
