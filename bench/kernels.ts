// Kernel benchmark: matmul throughput (forward NT, y = x·Wᵀ) for every kernel the adapter can run (tiled,
// register, subgroup) on square sizes and on the linear layers of SmolLM2-135M and Qwen2.5-0.5B at 256
// tokens, and the fixed cost of a dispatch. (bench/matmul.ts compares with TF.js on every model shape.)
// Each cell's MFU is its GFLOP/s ÷ the peak measured first by the FMA-throughput kernel (bench/peak.ts, the
// Bench screen's kernel); after the table, each case's default kernel as matmul efficiency (÷ the best cell).
//   npx tsx bench/kernels.ts [--quick]     (or npm run bench:kernels; --quick skips the two largest products)
// The engine imports its shaders with Vite's `?raw`, which Node does not know: this file first registers
// bench/raw-loader.mjs (Node module hooks that load `?raw` specifiers as text) and only then imports the
// engine, dynamically, so that plain tsx works. `tsx --import ./bench/raw-loader.mjs ...` works as well.
// Each case is warmed up (compiling its pipeline) by running it once, timed once,
// and then, when that single run was short, timed again over as many runs as fill about a second, recorded
// back to back and submitted together. The repetition count is printed. A few outputs of every product are
// checked against a float64 dot product so that a broken kernel can not post a good number.
import type { GpuContext } from '../src/engine/context';
import type { KernelSpec } from '../src/engine/kernel';
import type { MatmulVariant } from '../src/engine/ops/matmul';
import type { Tensor } from '../src/engine/tensor';
import { seededValues as fill } from '../src/engine/seeded';

await import(new URL('./raw-loader.mjs', import.meta.url).href);
const { requestNodeAdapter } = await import('../src/engine/adapter-node');
const { GpuContext: Context } = await import('../src/engine/context');
const { MATMUL_VARIANTS, matmulNT, matmulPlan, matmulVariant } = await import('../src/engine/ops/matmul');
const { default: emptySrc } = await import('./shaders/bench_empty.wgsl?raw');
const { measureFmaPeak } = await import('./peak');
const { matmulEfficiency, mfu, pct } = await import('./figures');

const QUICK = process.argv.includes('--quick');
/** Time one case should take at least, in seconds, when a single run is shorter. */
const TARGET_S = 1;
const MAX_REPS = 50;

interface Case {
  name: string;
  M: number;
  N: number;
  K: number;
}

const CASES: Case[] = [
  ...[256, 512, 1024, 2048].map((n) => ({ name: `square ${n}`, M: n, N: n, K: n })),
  { name: 'SmolLM2-135M gate/up [256×576]·[1536×576]ᵀ', M: 256, N: 1536, K: 576 },
  { name: 'SmolLM2-135M down   [256×1536]·[576×1536]ᵀ', M: 256, N: 576, K: 1536 },
  { name: 'SmolLM2-135M lm head [256×576]·[49152×576]ᵀ', M: 256, N: 49152, K: 576 },
  { name: 'Qwen2.5-0.5B gate/up [256×896]·[4864×896]ᵀ', M: 256, N: 4864, K: 896 },
  { name: 'Qwen2.5-0.5B down   [256×4864]·[896×4864]ᵀ', M: 256, N: 896, K: 4864 },
].filter((c) => !QUICK || c.M * c.N * c.K < 2 ** 32);

async function timeRuns(ctx: GpuContext, run: () => void, reps: number): Promise<number> {
  await ctx.sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) run();
  await ctx.sync();
  return (performance.now() - t0) / 1000;
}

/** Checks a few outputs of out = a·bᵀ against float64 dot products. */
async function spotCheck(ctx: GpuContext, out: Tensor, a: Float32Array, b: Float32Array, c: Case): Promise<string> {
  const got = await ctx.readF32(out);
  const picks = [[0, 0], [c.M - 1, c.N - 1], [c.M >> 1, c.N >> 1], [3 % c.M, (c.N * 7) >> 3]];
  let worst = 0;
  for (const [m, n] of picks as [number, number][]) {
    let s = 0;
    let mag = 0;
    for (let k = 0; k < c.K; k++) {
      s += a[m * c.K + k]! * b[n * c.K + k]!;
      mag += Math.abs(a[m * c.K + k]! * b[n * c.K + k]!);
    }
    worst = Math.max(worst, Math.abs(got[m * c.N + n]! - s) / (mag * 1e-6 + 1e-6));
  }
  return worst <= 1 ? 'ok' : `WRONG (${worst.toFixed(1)}× tolerance)`;
}

async function benchMatmul(ctx: GpuContext, c: Case, variant: MatmulVariant) {
  const aData = fill(c.M * c.K, c.M * 31 + c.K);
  const bData = fill(c.N * c.K, c.N * 17 + c.K + 1);
  const a = ctx.upload([c.M, c.K], aData);
  const b = ctx.upload([c.N, c.K], bData);
  const out = ctx.empty([c.M, c.N]);
  // Warm-up: the product itself, once (the workgroup shape and split-K depend on the shape, so a smaller
  // product could compile another pipeline).
  matmulNT(ctx, out, a, b, { variant });
  await ctx.sync();
  const run = () => matmulNT(ctx, out, a, b, { variant });
  const once = await timeRuns(ctx, run, 1);
  let reps = 1;
  let seconds = once;
  if (once < TARGET_S) {
    reps = Math.min(MAX_REPS, Math.max(2, Math.ceil(TARGET_S / once)));
    seconds = (await timeRuns(ctx, run, reps)) / reps;
  }
  const check = await spotCheck(ctx, out, aData, bData, c);
  for (const t of [a, b, out]) t.release();
  ctx.trimPool();
  const flops = 2 * c.M * c.N * c.K;
  return { gflops: flops / seconds / 1e9, ms: seconds * 1000, reps, check };
}

async function benchDispatch(ctx: GpuContext) {
  const spec: KernelSpec = {
    name: 'bench_empty',
    source: emptySrc,
    bindings: [{ name: 'buf', access: 'read_write', type: 'f32' }],
    params: [['n', 'u32']],
  };
  const k = ctx.kernel(spec);
  const buf = ctx.zeros([64]);
  const dispatch = () => ctx.dispatch(k, { buf }, { n: 0 }, [1]);
  for (let i = 0; i < 20; i++) dispatch();
  await ctx.sync();

  const N = 1000;
  await ctx.sync();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) dispatch();
  const recorded = performance.now();
  await ctx.sync();
  const done = performance.now();

  const S = 100;
  const t1 = performance.now();
  for (let i = 0; i < S; i++) {
    dispatch();
    await ctx.sync();
  }
  const perSubmit = (performance.now() - t1) / S;
  buf.release();
  return {
    perDispatchUs: ((done - t0) / N) * 1000,
    recordUs: ((recorded - t0) / N) * 1000,
    perSubmitMs: perSubmit,
  };
}

const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

async function main(): Promise<void> {
  const started = performance.now();
  const { adapter, gpu, swiftshaderIcd } = await requestNodeAdapter();
  const ctx = await Context.create(adapter, gpu);
  const info = ctx.adapter;
  console.log(`Adapter: ${info.description || '(no description)'} — vendor ${info.vendor}, architecture ${info.architecture}${info.device ? `, device ${info.device}` : ''}${info.isFallback ? ' (fallback adapter)' : ''}`);
  if (swiftshaderIcd) console.log(`Vulkan driver: SwiftShader (${swiftshaderIcd})`);
  console.log(`Default matmul variant on this adapter: ${matmulVariant(ctx)}${QUICK ? '   (--quick: largest products skipped)' : ''}`);
  const peak = await measureFmaPeak(ctx);
  console.log(`FMA peak: ${peak.gflops.toFixed(2)} GFLOP/s (${peak.source})`);
  console.log('');
  console.log('matmul forward NT, out[M, N] = a[M, K]·b[N, K]ᵀ, f32; GFLOP/s, MFU (÷ the FMA peak), ms, reps');
  const variants: MatmulVariant[] = MATMUL_VARIANTS.filter((v) => v !== 'subgroup' || ctx.hasSubgroups);
  // The adapter's default (the staged kernel on a GPU) is measured too.
  if (!variants.includes(matmulVariant(ctx))) variants.push(matmulVariant(ctx));
  const cell = (v: string) => Math.max(13, v.length + 8);
  const header = `${pad('case', 46)} ${lpad('M×N×K', 18)} | ${variants.map((v) => `${lpad(`${v} GFLOP/s`, cell(v))} ${lpad('MFU', 6)} ${lpad('ms', 9)} ${lpad('reps', 4)}`).join(' | ')} | check`;
  const measured: { name: string; variant: MatmulVariant; gflops: number; ok: boolean }[] = [];
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const c of CASES) {
    const cells: string[] = [];
    const checks: string[] = [];
    for (const variant of variants) {
      const r = await benchMatmul(ctx, c, variant);
      cells.push(`${lpad(r.gflops.toFixed(3), cell(variant))} ${lpad(pct(mfu(r.gflops, peak.gflops)), 6)} ${lpad(r.ms.toFixed(1), 9)} ${lpad(String(r.reps), 4)}`);
      measured.push({ name: c.name, variant, gflops: r.gflops, ok: r.check === 'ok' });
      checks.push(r.check);
    }
    const plan = matmulPlan(ctx, { transA: false, transB: true, M: c.M, N: c.N, K: c.K });
    const note = plan.splitK > 1 ? ` (default: split-K ${plan.splitK})` : '';
    const check = checks.every((s) => s === 'ok') ? 'ok' : checks.join(' / ');
    console.log(`${pad(c.name, 46)} ${lpad(`${c.M}×${c.N}×${c.K}`, 18)} | ${cells.join(' | ')} | ${check}${note}`);
  }
  const okCells = measured.filter((m) => m.ok);
  const best = okCells.length ? okCells.reduce((x, y) => (y.gflops > x.gflops ? y : x)) : undefined;
  if (best) {
    console.log('');
    console.log(`matmul efficiency of the default kernel (${matmulVariant(ctx)}), ÷ the best cell above (${best.variant} on ${best.name.trim()}, ${best.gflops.toFixed(3)} GFLOP/s):`);
    for (const m of measured.filter((x) => x.variant === matmulVariant(ctx))) {
      console.log(`  ${pad(m.name, 46)} ${pct(matmulEfficiency(m.gflops, best.gflops))}  (MFU ${pct(mfu(m.gflops, peak.gflops))})`);
    }
  }
  console.log('');
  const d = await benchDispatch(ctx);
  console.log('dispatch overhead, empty kernel (one 64-thread workgroup, one storage binding + parameters)');
  console.log(`  1000 dispatches in one submit: ${d.perDispatchUs.toFixed(1)} µs per dispatch (of which ${d.recordUs.toFixed(1)} µs recording on the CPU)`);
  console.log(`  one dispatch per submit, waiting for each: ${d.perSubmitMs.toFixed(3)} ms per submit`);
  console.log('');
  console.log(`total bench time ${((performance.now() - started) / 1000).toFixed(1)} s`);
  ctx.destroy();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
