// Frozen weights read packed, side by side with f32 (issue 12): the matmuls that read a weight — a linear's
// forward y = x·Wᵀ (matmulNT) and its input gradient dx = dy·W (matmulNN) — with W as f32, as bf16 kept two a
// u32 word, and as NF4 codes with per-block absmax (shaders/lib/weight_*.wgsl), on the linear layers of real
// models at M tokens. Each case runs the three formats interleaved, a few rounds, best time of each (the machine
// may be shared); every packed result is checked to equal the f32 product over the widened (dequantized)
// values bit for bit. The summary is the geometric mean of the per-case speed ratios, packed over f32.
//
//   npx tsx bench/weights.ts [--quick] [--tokens 256] [--models smollm2,qwen2.5]     (also part of `npm run bench`)
import { pathToFileURL } from 'node:url';
import type { GpuContext } from '../src/engine/context';
import type { Tensor } from '../src/engine/tensor';
import type { WeightTensor } from '../src/engine/weight';

await import(new URL('./raw-loader.mjs', import.meta.url).href);
const { matmulNN, matmulNT, matmulPlan } = await import('../src/engine/ops/matmul');
const { f32ToBf16Bits, bf16BitsToF32 } = await import('../src/engine/half');
const { quantizeWeight, dequantizeWeight } = await import('../src/engine/quantize');
const { uploadQuantized } = await import('../src/engine/weight');
const { MODELS } = await import('./matmul');

export type WeightBenchFormat = 'f32' | 'bf16' | 'nf4';
const FORMATS: WeightBenchFormat[] = ['f32', 'bf16', 'nf4'];

export interface WeightBenchRow {
  model: string;
  layer: string;
  pass: 'forward' | 'dX';
  call: 'NT' | 'NN';
  m: number;
  k: number;
  n: number;
  /** GFLOP/s by how W is held. */
  f32_gflops: number;
  bf16_gflops: number;
  nf4_gflops: number;
  /** Packed over f32 (higher is faster). */
  bf16_ratio: number;
  nf4_ratio: number;
  kernel: string;
  /** 'ok' when each packed result equals the f32 product over its widened (dequantized) values bit for bit. */
  check: string;
}

export interface WeightBenchSummary {
  rows: WeightBenchRow[];
  /** Geometric means of the ratios over the rows. */
  bf16_ratio: number;
  nf4_ratio: number;
}

function fill(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.fround(((s / 2 ** 32) * 2 - 1) * scale);
  }
  return out;
}

async function timeRuns(ctx: GpuContext, run: () => void, reps: number): Promise<number> {
  await ctx.sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) run();
  await ctx.sync();
  return (performance.now() - t0) / 1000 / reps;
}

export async function runWeightsBench(
  ctx: GpuContext,
  opts: { tokens?: number; models?: string[]; quick?: boolean; rounds?: number; targetSeconds?: number; log?: (l: string) => void } = {},
): Promise<WeightBenchSummary> {
  const log = opts.log ?? (() => {});
  const T = opts.tokens ?? 256;
  const rounds = opts.rounds ?? 3;
  const target = opts.targetSeconds ?? 0.15;
  const names = opts.models ?? (opts.quick ? ['SmolLM2'] : ['SmolLM2', 'Qwen2.5']);
  const models = MODELS.filter((m) => !m.conv1d && names.some((n) => m.name.toLowerCase().startsWith(n.toLowerCase())));
  const rows: WeightBenchRow[] = [];
  for (const model of models) {
    const seen = new Set<string>();
    for (const lin of model.linears) {
      const key = `${lin.in}x${lin.out}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const layer = model.linears.filter((l) => `${l.in}x${l.out}` === key).map((l) => l.name).join('/');
      const values = fill(lin.out * lin.in, lin.out * 31 + lin.in, 0.05);
      const bits = Uint16Array.from(values, (v) => f32ToBf16Bits(v));
      const q = quantizeWeight(values, 'nf4', true);
      const held: Record<WeightBenchFormat, WeightTensor> = {
        f32: ctx.upload([lin.out, lin.in], values),
        bf16: ctx.upload([lin.out, lin.in], bits, 'bf16'),
        nf4: uploadQuantized(ctx, [lin.out, lin.in], q, 'bench weight'),
      };
      // The f32 weights the packed ones compute with, for the bit-for-bit check.
      const widened: Record<'bf16' | 'nf4', Tensor> = {
        bf16: ctx.upload([lin.out, lin.in], Float32Array.from(bits, (b) => bf16BitsToF32(b))),
        nf4: ctx.upload([lin.out, lin.in], dequantizeWeight(q, values.length)),
      };
      for (const pass of ['forward', 'dX'] as const) {
        const call = pass === 'forward' ? 'NT' : 'NN';
        const [M, K, N] = pass === 'forward' ? [T, lin.in, lin.out] : [T, lin.out, lin.in];
        const a = ctx.upload([M, K], fill(M * K, M + K));
        const out = ctx.empty([M, N]);
        const run = (w: WeightTensor, o = out) => (call === 'NT' ? matmulNT(ctx, o, a, w) : matmulNN(ctx, o, a, w));
        let check = 'ok';
        for (const f of ['bf16', 'nf4'] as const) {
          const ref = ctx.empty([M, N]);
          run(held[f]);
          run(widened[f], ref);
          const [x, y] = [await ctx.readF32(out), await ctx.readF32(ref)];
          if (x.some((v, i) => v !== y[i])) check = `${f} differs from its widened f32`;
          ref.release();
        }
        const best: Record<WeightBenchFormat, number> = { f32: Infinity, bf16: Infinity, nf4: Infinity };
        for (const f of FORMATS) run(held[f]); // compile
        const once = await timeRuns(ctx, () => run(held.f32), 1);
        const reps = Math.max(1, Math.min(20, Math.ceil(target / Math.max(once, 1e-6))));
        for (let r = 0; r < rounds; r++) for (const f of FORMATS) best[f] = Math.min(best[f], await timeRuns(ctx, () => run(held[f]), reps));
        const gflops = (s: number) => (2 * M * N * K) / s / 1e9;
        const p = matmulPlan(ctx, { transA: false, transB: call === 'NT', M, N, K });
        const row: WeightBenchRow = {
          model: model.name,
          layer,
          pass,
          call,
          m: M,
          k: K,
          n: N,
          f32_gflops: gflops(best.f32),
          bf16_gflops: gflops(best.bf16),
          nf4_gflops: gflops(best.nf4),
          bf16_ratio: best.f32 / best.bf16,
          nf4_ratio: best.f32 / best.nf4,
          kernel: `${p.variant} ${p.tileM}×${p.tileN}${p.splitK > 1 ? ` split-K ${p.splitK}` : ''}`,
          check,
        };
        rows.push(row);
        log(
          `${model.name.padEnd(13)} ${`${layer} ${pass}`.padEnd(28)} ${call} ${`${M}×${K}×${N}`.padStart(15)} | f32 ${row.f32_gflops.toFixed(2).padStart(6)}  bf16 ${row.bf16_gflops.toFixed(2).padStart(6)} (${row.bf16_ratio.toFixed(2)}×)  nf4 ${row.nf4_gflops.toFixed(2).padStart(6)} (${row.nf4_ratio.toFixed(2)}×) GFLOP/s | ${row.kernel} | ${check}`,
        );
        a.release();
        out.release();
      }
      for (const t of [...Object.values(held), ...Object.values(widened)]) t.release();
    }
  }
  const geo = (xs: number[]) => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / Math.max(1, xs.length));
  const ok = rows.filter((r) => r.check === 'ok');
  const summary = { rows, bf16_ratio: geo(ok.map((r) => r.bf16_ratio)), nf4_ratio: geo(ok.map((r) => r.nf4_ratio)) };
  log(`packed weights over f32 (geometric mean of ${ok.length} products): bf16 ${summary.bf16_ratio.toFixed(3)}×, NF4 ${summary.nf4_ratio.toFixed(3)}×`);
  return summary;
}

async function main(): Promise<void> {
  const { requestNodeAdapter } = await import('../src/engine/adapter-node');
  const { GpuContext } = await import('../src/engine/context');
  const argv = process.argv.slice(2);
  const value = (name: string) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : undefined);
  const { adapter, gpu } = await requestNodeAdapter();
  const ctx = await GpuContext.create(adapter, gpu);
  console.log(`Adapter: ${ctx.adapter.description || ctx.adapter.architecture}`);
  await runWeightsBench(ctx, {
    quick: argv.includes('--quick'),
    ...(value('--tokens') ? { tokens: Number(value('--tokens')) } : {}),
    ...(value('--models') ? { models: value('--models')!.split(',') } : {}),
    log: (l) => console.log(l),
  });
  ctx.destroy();
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
