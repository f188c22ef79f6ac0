// The benchmark for a machine with a real GPU (scripts/gpu-bench.sh runs it after `npm ci`), in one process on
// one device, writing bench-results.json:
//   1. the FMA peak (bench/peak.ts: the Bench screen's FMA-throughput kernel);
//   2. matmul at 2048³ in NN, NT and TN with every plan the adapter can make (each kernel of
//      src/engine/ops/matmul.ts ALL_MATMUL_VARIANTS with its rule's shape, and every autotuner candidate,
//      f16 ones included where the adapter has shader-f16), GPU time from timestamp queries (wall clock where
//      the adapter lacks them), four outputs of each checked against float64 dot products;
//   3. the autotuner (src/engine/autotune.ts) on the matmul shapes of a SmolLM2-135M LoRA step at each sequence
//      length, tuned now (an in-memory cache: nothing read from or written to the Node cache folder), and its
//      choices installed for the training that follows;
//   4. bench/train.ts at full depth: SmolLM2-135M shape, 30 layers, LoRA, 512 and 4096 tokens per step, MFU
//      against the FMA peak and matmul efficiency against the best 2048³ plan, GPU time per kernel family.
//
//   npx tsx bench/gpu.ts [--quick] [--out bench-results.json] [--seq 512,4096] [--layers 30]
// --quick (or GRAFT_BENCH_QUICK=1): the same steps reduced to run anywhere, SwiftShader included (matmul at
// 256³, the autotuner on the 64-token step's projection shapes (no lm head, no LoRA), 1 layer at 64 tokens,
// 1 warm-up and 1 timed step).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GpuContext } from '../src/engine/context';
import type { MatmulConfig, MatmulShape } from '../src/engine/ops/matmul';
import type { Tensor } from '../src/engine/tensor';
import { seededValues as values } from '../src/engine/seeded';

await import(new URL('./raw-loader.mjs', import.meta.url).href);
const { requestNodeAdapter } = await import('../src/engine/adapter-node');
const { GpuContext: Context } = await import('../src/engine/context');
const { ALL_MATMUL_VARIANTS, matmulNN, matmulNT, matmulTN, matmulPlan, matmulShapeKey, planLabel } = await import('../src/engine/ops/matmul');
const { autotune, candidates, timeRuns, MemoryTuneCache } = await import('../src/engine/autotune');
const { measureFmaPeak } = await import('./peak');
const { matmulCases } = await import('./matmul');
const { runTrainBench, trainTable } = await import('./train');
const { matmulEfficiency, mfu, pct } = await import('./figures');

const argv = process.argv.slice(2);
const value = (name: string) => (argv.indexOf(`--${name}`) >= 0 ? argv[argv.indexOf(`--${name}`) + 1] : undefined);
const QUICK = argv.includes('--quick') || process.env.GRAFT_BENCH_QUICK === '1';
const OUT = value('out') ?? fileURLToPath(new URL('../bench-results.json', import.meta.url));
const SIZE = QUICK ? 256 : 2048;
const SEQ = (value('seq') ?? (QUICK ? '64' : '512,4096')).split(',').map(Number);
const LAYERS = Number(value('layers') ?? (QUICK ? 1 : 30));
const log = (l: string) => console.log(l);


/** Largest |got − float64| / (Σ|a·b| · 1e-5 + 1e-6) over four outputs (≤ 1: ok). a [M,K] or TN [K,M]; b [K,N] or NT [N,K]. */
function check(layout: string, a: Float32Array, b: Float32Array, got: Float32Array, n: number, half: boolean): string {
  let worst = 0;
  for (const [i, j] of [[0, 0], [n - 1, n - 1], [n >> 1, n >> 2], [n >> 3, n - 1]] as [number, number][]) {
    let ref = 0;
    let mag = 0;
    for (let k = 0; k < n; k++) {
      const p = (layout === 'TN' ? a[k * n + i]! : a[i * n + k]!) * (layout === 'NT' ? b[j * n + k]! : b[k * n + j]!);
      ref += p;
      mag += Math.abs(p);
    }
    worst = Math.max(worst, Math.abs(got[i * n + j]! - ref) / (mag * (half ? 2e-3 : 1e-5) + 1e-6));
  }
  return worst <= 1 ? 'ok' : `WRONG (${worst.toFixed(1)}× tolerance${half ? ', f16' : ''})`;
}

interface PlanRow {
  layout: string;
  size: number;
  plan: string;
  config: MatmulConfig;
  gflops: number;
  ms: number;
  runs: number;
  timing: string;
  mfu: number;
  check: string;
}

async function matmulPlans(ctx: GpuContext, peakGflops: number): Promise<PlanRow[]> {
  const n = SIZE;
  const rows: PlanRow[] = [];
  const aData = values(n * n, 11);
  const bData = values(n * n, 12);
  const a = ctx.upload([n, n], aData);
  const b = ctx.upload([n, n], bData);
  const out: Tensor = ctx.empty([n, n]);
  try {
    for (const layout of ['NN', 'NT', 'TN'] as const) {
      const shape: MatmulShape = { transA: layout === 'TN', transB: layout === 'NT', M: n, N: n, K: n };
      const configs: MatmulConfig[] = [];
      const seen = new Set<string>();
      for (const c of [...ALL_MATMUL_VARIANTS.map((variant): MatmulConfig => ({ variant })), ...candidates(ctx, shape, { half: true })]) {
        let label: string;
        try {
          label = planLabel(matmulPlan(ctx, shape, { config: c }));
        } catch {
          continue; // a kernel this adapter cannot run
        }
        if (seen.has(label)) continue;
        seen.add(label);
        configs.push(c);
      }
      for (const config of configs) {
        const plan = planLabel(matmulPlan(ctx, shape, { config }));
        const run = () => (layout === 'NT' ? matmulNT : layout === 'NN' ? matmulNN : matmulTN)(ctx, out, a, b, { config });
        try {
          const r = await timeRuns(ctx, run, { targetMs: QUICK ? 20 : 50, maxRuns: 20 });
          const got = await ctx.readF32(out);
          const gflops = (2 * n * n * n) / r.ns;
          const row: PlanRow = { layout, size: n, plan, config, gflops, ms: r.ns / 1e6, runs: r.runs, timing: r.timing, mfu: mfu(gflops, peakGflops), check: check(layout, aData, bData, got, n, config.half === true) };
          rows.push(row);
          log(`  ${layout} ${n}³  ${plan.padEnd(52)} ${gflops.toFixed(1).padStart(10)} GFLOP/s  MFU ${pct(row.mfu).padStart(6)}  ${row.ms.toFixed(3)} ms (${r.runs} runs, ${r.timing})  ${row.check}`);
        } catch (e) {
          log(`  ${layout} ${n}³  ${plan}: failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
  } finally {
    a.release();
    b.release();
    out.release();
  }
  return rows;
}

async function main(): Promise<void> {
  const started = performance.now();
  const { adapter, gpu, swiftshaderIcd } = await requestNodeAdapter();
  const ctx = await Context.create(adapter, gpu);
  const info = ctx.adapter;
  const results: Record<string, unknown> = {
    kind: 'gpu-bench',
    quick: QUICK,
    adapter: { ...info, swiftshaderIcd: swiftshaderIcd ?? null, hasF16: ctx.hasF16, hasSubgroups: ctx.hasSubgroups, hasTimestamps: ctx.hasTimestamps, hasSubgroupMatrix: ctx.hasSubgroupMatrix },
    notes: {} as Record<string, string>,
  };
  const notes = results.notes as Record<string, string>;
  log(`Adapter: ${info.description || '(no description)'} — vendor ${info.vendor}, architecture ${info.architecture}; shader-f16 ${ctx.hasF16 ? 'yes' : 'no'}, subgroups ${ctx.hasSubgroups ? 'yes' : 'no'}, timestamp-query ${ctx.hasTimestamps ? 'yes' : 'no'}, subgroup matrices ${ctx.hasSubgroupMatrix ? 'yes' : 'no'}${QUICK ? '   (QUICK: reduced sizes)' : ''}`);
  if (swiftshaderIcd) notes.adapter = 'SwiftShader (a CPU): the figures say nothing about a GPU';

  const peak = await measureFmaPeak(ctx);
  results.peak = peak;
  log(`FMA peak: ${peak.gflops.toFixed(1)} GFLOP/s (${peak.source})`);

  log(`\nmatmul ${SIZE}³, every plan, f32 operands (f16 plans: reduced-precision staging/sums, opt-in)`);
  const plans = await matmulPlans(ctx, peak.gflops);
  results.matmul_plans = plans;
  const okPlans = plans.filter((p) => p.check === 'ok' && p.config.half !== true);
  const best = okPlans.length ? okPlans.reduce((x, y) => (y.gflops > x.gflops ? y : x)) : undefined;
  if (best) log(`best f32 plan: ${best.layout} ${best.plan} ${best.gflops.toFixed(1)} GFLOP/s (MFU ${pct(best.mfu)})`);
  for (const p of plans) (p as PlanRow & { matmul_efficiency?: number }).matmul_efficiency = best ? matmulEfficiency(p.gflops, best.gflops) : NaN;

  log(`\nautotuner on the matmul shapes of a SmolLM2-135M LoRA step at ${SEQ.join(', ')} tokens (tuned now, in-memory cache)`);
  const shapes: MatmulShape[] = [];
  for (const T of SEQ) {
    // QUICK: the projections' products only (no lm head, no LoRA), to keep the run short on a CPU adapter.
    for (const c of matmulCases({ models: ['smollm2'], tokens: T, loraRank: 8, ...(QUICK ? { quick: true, lora: false } : {}) })) {
      shapes.push({ transA: c.call === 'TN', transB: c.call === 'NT', M: c.M, N: c.N, K: c.K });
    }
  }
  const tuneStart = performance.now();
  const tuned = await autotune(ctx, shapes, new MemoryTuneCache(), { log: (l) => log(`  ${l}`) });
  results.autotune = {
    seconds: (performance.now() - tuneStart) / 1000,
    shapes: [...tuned].map(([key, e]) => ({ key, label: e.label, ns: e.ns, timing: e.timing, rule: planLabel(matmulPlan(ctx, shapes.find((s) => matmulShapeKey(s) === key)!, { config: e.candidates[0]!.config })), candidates: e.candidates.map((c) => ({ label: c.label, ns: c.ns })) })),
  };
  const changed = [...tuned.values()].filter((e) => e.candidates[0] && e.label !== e.candidates[0].label).length;
  log(`  ${tuned.size} shapes tuned in ${((performance.now() - tuneStart) / 1000).toFixed(1)} s; ${changed} chose other than the rule's plan; installed for the training below`);
  notes.autotune = 'tuned on bench/matmul.ts shapes of the step (whole products); the trainer computes the lm head in vocabulary chunks, whose shapes run the rule unless they coincide';

  log(`\ntraining (bench/train.ts): SmolLM2-135M shape, ${LAYERS} layers, LoRA, ${SEQ.join(' and ')} tokens per step`);
  const train = await runTrainBench(ctx, {
    layers: LAYERS,
    seqLens: SEQ,
    methods: ['lora'],
    steps: QUICK ? 1 : 2,
    warmupSteps: QUICK ? 1 : 2,
    peak: { gflops: peak.gflops, source: peak.source },
    ...(best ? { bestMatmul: { gflops: best.gflops, source: `measured: best f32 ${SIZE}³ plan of this run (${best.layout} ${best.plan})` } } : {}),
    log,
  });
  results.train = train.rows;
  results.train_config = train.config;
  for (const l of trainTable(train)) log(l);

  results.seconds = (performance.now() - started) / 1000;
  writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  log(`\nwrote ${OUT}; total ${(results.seconds as number).toFixed(1)} s`);
  ctx.destroy();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
