// Attention benchmark: forward + backward of the straightforward kernels (bench/row-attention.ts, one
// workgroup per row) against the tiled FlashAttention-2 kernels (src/engine/ops/flash-attention.ts, in the
// variant the adapter gets: register-blocked on SwiftShader, workgroup-memory tiles on GPUs), on
// SmolLM2-135M's attention (B 1, H 9, Hkv 3, D 64) at T = 256, 512 and 1024.
//   npx tsx bench/attention.ts [--quick] [--variant=tiled|register]
//   (--quick: T = 256 only; --variant: the flash variant to time instead of the adapter's)
// `runAttentionBench(ctx, opts)` returns the rows as JSON, for a combined benchmark. As in bench/kernels.ts,
// the `?raw` loader is registered before the engine is imported (dynamically).
// Both variants are first warmed up (their pipelines compiled) on a small problem of the same head shape.
// Each is then timed once at each length and, when that run was short, again over as many runs as fill
// about `targetSeconds`, recorded back to back and submitted together. One step = forward, clear dq/dk/dv,
// backward. Afterwards the two variants' out, lse, dq, dk and dv are compared, so that a broken kernel can
// not post a good number.
import { pathToFileURL } from 'node:url';
import type { GpuContext } from '../src/engine/context';
import type { FlashAttentionConfig } from '../src/engine/ops/flash-attention';
import type { Tensor } from '../src/engine/tensor';

await import(new URL('../scripts/raw-loader.mjs', import.meta.url).href);
const { attentionBackward, attentionForward } = await import('./row-attention');
const { flashAttentionBackward, flashAttentionConfig, flashAttentionForward } = await import('../src/engine/ops/flash-attention');

export interface AttentionBenchRow {
  seq_len: number;
  straightforward_ms: number;
  tiled_ms: number;
  /** straightforward_ms / tiled_ms: above 1 means the tiled kernels are faster. */
  ratio: number;
}

export interface AttentionBenchOptions {
  /** Sequence lengths (default 256, 512, 1024). */
  seqLens?: number[];
  B?: number;
  H?: number;
  Hkv?: number;
  D?: number;
  /** Time one variant should take at least, in seconds, when a single step is shorter (default 1). */
  targetSeconds?: number;
  /** At most this many timed steps per variant (default 20). */
  maxReps?: number;
  /** Flash variant or block sizes other than the adapter's. */
  flash?: Partial<FlashAttentionConfig>;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

type Variant = 'straightforward' | 'tiled';

/** Deterministic values in [-amp, amp). */
function fill(n: number, seed: number, amp = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = amp * (s / 2 ** 31 - 1);
  }
  return out;
}

interface Problem {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  dOut: Tensor;
  scale: number;
}

interface Outputs {
  out: Tensor;
  lse: Tensor;
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
}

function step(ctx: GpuContext, variant: Variant, p: Problem, o: Outputs, flash?: Partial<FlashAttentionConfig>): void {
  if (variant === 'tiled') flashAttentionForward(ctx, o.out, o.lse, p.q, p.k, p.v, null, p.scale, flash);
  else attentionForward(ctx, o.out, o.lse, p.q, p.k, p.v, null, p.scale);
  ctx.fill(o.dq, 0);
  ctx.fill(o.dk, 0);
  ctx.fill(o.dv, 0);
  if (variant === 'tiled') flashAttentionBackward(ctx, o.dq, o.dk, o.dv, p.dOut, p.q, p.k, p.v, o.out, o.lse, null, p.scale, flash);
  else attentionBackward(ctx, o.dq, o.dk, o.dv, p.dOut, p.q, p.k, p.v, o.out, o.lse, null, p.scale);
}

async function timeSteps(ctx: GpuContext, run: () => void, reps: number): Promise<number> {
  await ctx.sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) run();
  await ctx.sync();
  return performance.now() - t0;
}

/** Largest |a − b| / (1e-4 + 1e-3·|b|): at most 1 is agreement within the op tests' backward tolerance. */
async function disagreement(ctx: GpuContext, a: Outputs, b: Outputs): Promise<number> {
  let worst = 0;
  for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const) {
    const x = await ctx.readF32(a[name]);
    const y = await ctx.readF32(b[name]);
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!) / (1e-4 + 1e-3 * Math.abs(y[i]!)));
  }
  return worst;
}

/** Compiles every kernel of both variants on a small problem of the same head shape (the kernels depend on D only). */
async function warmUp(ctx: GpuContext, B: number, H: number, Hkv: number, D: number, flash?: Partial<FlashAttentionConfig>): Promise<void> {
  const T = 8;
  const q = ctx.upload([B, T, H, D], fill(B * T * H * D, 1));
  const k = ctx.upload([B, T, Hkv, D], fill(B * T * Hkv * D, 2));
  const o: Outputs = { out: ctx.empty(q.shape), lse: ctx.empty([B, H, T]), dq: ctx.empty(q.shape), dk: ctx.empty(k.shape), dv: ctx.empty(k.shape) };
  for (const variant of ['straightforward', 'tiled'] as const) step(ctx, variant, { q, k, v: k, dOut: q, scale: 0.1 }, o, flash);
  await ctx.sync();
  for (const t of [q, k, ...Object.values(o)]) t.release();
}

/** Forward + backward time of both attention implementations at each sequence length. */
export async function runAttentionBench(ctx: GpuContext, opts: AttentionBenchOptions = {}): Promise<AttentionBenchRow[]> {
  const { B = 1, H = 9, Hkv = 3, D = 64, targetSeconds = 1, maxReps = 20 } = opts;
  const log = opts.log ?? (() => {});
  const rows: AttentionBenchRow[] = [];
  await warmUp(ctx, B, H, Hkv, D, opts.flash);
  for (const T of opts.seqLens ?? [256, 512, 1024]) {
    const qShape = [B, T, H, D];
    const kShape = [B, T, Hkv, D];
    const p: Problem = {
      q: ctx.upload(qShape, fill(B * T * H * D, T * 7 + 1, 2)),
      k: ctx.upload(kShape, fill(B * T * Hkv * D, T * 7 + 2, 2)),
      v: ctx.upload(kShape, fill(B * T * Hkv * D, T * 7 + 3)),
      dOut: ctx.upload(qShape, fill(B * T * H * D, T * 7 + 4)),
      scale: 1 / Math.sqrt(D),
    };
    const outputs = (): Outputs => ({
      out: ctx.empty(qShape),
      lse: ctx.empty([B, H, T]),
      dq: ctx.empty(qShape),
      dk: ctx.empty(kShape),
      dv: ctx.empty(kShape),
    });
    const o: Record<Variant, Outputs> = { straightforward: outputs(), tiled: outputs() };
    const ms: Record<Variant, number> = { straightforward: 0, tiled: 0 };
    for (const variant of ['straightforward', 'tiled'] as const) {
      const run = () => step(ctx, variant, p, o[variant], opts.flash);
      const once = await timeSteps(ctx, run, 1);
      let reps = 1;
      ms[variant] = once;
      if (once < targetSeconds * 1000) {
        reps = Math.min(maxReps, Math.max(2, Math.ceil((targetSeconds * 1000) / once)));
        ms[variant] = (await timeSteps(ctx, run, reps)) / reps;
      }
      log(`  T ${T} ${variant}: ${ms[variant].toFixed(1)} ms per forward+backward (${reps} runs)`);
    }
    const worst = await disagreement(ctx, o.tiled, o.straightforward);
    if (!(worst <= 1)) throw new Error(`attention bench T ${T}: tiled and straightforward disagree (${worst.toFixed(1)}× tolerance)`);
    rows.push({
      seq_len: T,
      straightforward_ms: ms.straightforward,
      tiled_ms: ms.tiled,
      ratio: ms.straightforward / ms.tiled,
    });
    for (const t of [p.q, p.k, p.v, p.dOut]) t.release();
    for (const set of Object.values(o)) for (const t of Object.values(set)) t.release();
    ctx.trimPool();
  }
  return rows;
}

async function main(): Promise<void> {
  const started = performance.now();
  const { requestNodeAdapter } = await import('../src/engine/adapter-node');
  const { GpuContext: Context } = await import('../src/engine/context');
  const { adapter, gpu, swiftshaderIcd } = await requestNodeAdapter();
  const ctx = await Context.create(adapter, gpu);
  const info = ctx.adapter;
  console.log(`Adapter: ${info.description || '(no description)'} — vendor ${info.vendor}, architecture ${info.architecture}${info.isFallback ? ' (fallback adapter)' : ''}`);
  if (swiftshaderIcd) console.log(`Vulkan driver: SwiftShader (${swiftshaderIcd})`);
  const shape = { B: 1, H: 9, Hkv: 3, D: 64 };
  const variantArg = process.argv.find((a) => a.startsWith('--variant='))?.slice('--variant='.length);
  if (variantArg !== undefined && variantArg !== 'tiled' && variantArg !== 'register') throw new Error(`--variant must be tiled or register, not ${variantArg}`);
  const flash: Partial<FlashAttentionConfig> = variantArg ? { variant: variantArg } : {};
  const cfg = flashAttentionConfig(ctx, shape.D, flash);
  const fmtBlocks = (b: { BR: number; BC: number; TPR: number }) => `BR ${b.BR} BC ${b.BC} TPR ${b.TPR}`;
  console.log(`Flash kernels at D ${shape.D}: ${cfg.variant} variant, forward ${fmtBlocks(cfg.forward)}; dq ${fmtBlocks(cfg.dq)}; dk/dv ${fmtBlocks(cfg.dkdv)}`);
  console.log(`Causal attention forward + backward, f32, B ${shape.B} H ${shape.H} Hkv ${shape.Hkv} D ${shape.D} (SmolLM2-135M), no mask`);
  const rows = await runAttentionBench(ctx, {
    ...shape,
    seqLens: process.argv.includes('--quick') ? [256] : [256, 512, 1024],
    flash,
    log: (line) => console.log(line),
  });
  console.log('');
  const header = `${'T'.padStart(6)} | ${'straightforward ms'.padStart(18)} | ${'tiled ms'.padStart(10)} | ${'speed-up'.padStart(8)}`;
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const r of rows) {
    console.log(
      `${String(r.seq_len).padStart(6)} | ${r.straightforward_ms.toFixed(1).padStart(18)} | ${r.tiled_ms.toFixed(1).padStart(10)} | ${`${r.ratio.toFixed(2)}×`.padStart(8)}`,
    );
  }
  console.log('');
  console.log(JSON.stringify(rows));
  console.log(`total bench time ${((performance.now() - started) / 1000).toFixed(1)} s`);
  ctx.destroy();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
