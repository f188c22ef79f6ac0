// The combined benchmark (`npm run bench`): matmul on real model shapes, Graft against TensorFlow.js's WebGPU
// backend on the same device (bench/matmul.ts); then the attention benchmark (bench/attention.ts's
// `runAttentionBench`) and the training benchmark (a `runTrainBench` exported by bench/train.ts) where those
// exist. Prints the tables and writes bench-results.json in the repository root:
//   { adapter, tfjs, matmul: [...], weights: [...], weights_summary, attention: [...], train: [...], step: {...},
//     train_config: {...}, notes, seconds }
// A section that could not run stays an empty array/object, and `notes` says why.
//
//   npm run bench [-- --quick] [-- --vocab-slice N | --full-vocab] [-- --models qwen3,gpt2] [-- --no-tfjs]
//                 [-- --attention-seq 256,512,1024] [-- --layers 30] [-- --train-seq 256,512] [-- --train-steps 2]
// (the matmul flags are bench/matmul.ts's; attention runs at T = 256 and 512, --quick: 256 only). Training
// (bench/train.ts): LoRA and full at 256 and 512 tokens on a 2-layer SmolLM2-135M shape (--layers 30: the real
// depth), its MFU against the best Graft matmul GFLOP/s measured above (train_config.peak says so).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

await import(new URL('./raw-loader.mjs', import.meta.url).href);
const { requestNodeAdapter } = await import('../src/engine/adapter-node');
const { GpuContext } = await import('../src/engine/context');
const { MATMUL_TABLE_HEADER, parseBenchArgs, runMatmulBench, summarize } = await import('./matmul');
const { tfjsOnDevice } = await import('./tfjs');

interface Results {
  adapter: Record<string, unknown>;
  tfjs: { version: string; backend: string } | { error: string } | null;
  matmul: unknown[];
  /** f32, bf16 kept packed and NF4 weights in the same matmuls (bench/weights.ts), and their mean ratios. */
  weights: unknown[];
  weights_summary: Record<string, number>;
  attention: unknown[];
  train: unknown[];
  step: Record<string, unknown>;
  train_config: Record<string, unknown>;
  notes: Record<string, string>;
  args: string[];
  seconds: number;
}

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const log = (line: string) => console.log(line);
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Whether a bench module exports `name` without running itself on import: its source must export the name
 * and guard its own main with `import.meta.url === pathToFileURL(process.argv[1])` (bench/attention.ts does).
 */
function exportsRunner(file: string, name: string): { ok: true } | { ok: false; why: string } {
  if (!existsSync(file)) return { ok: false, why: `${file} does not exist` };
  const src = readFileSync(file, 'utf8');
  if (!new RegExp(`export\\s+(async\\s+)?function\\s+${name}\\b|export\\s*\\{[^}]*\\b${name}\\b`).test(src)) {
    return { ok: false, why: `${file} exports no ${name}` };
  }
  if (!/pathToFileURL\(process\.argv\[1\]\)|import\.meta\.main/.test(src)) {
    return { ok: false, why: `${file} exports ${name} but runs its own main on import (no main guard)` };
  }
  return { ok: true };
}

async function main(): Promise<void> {
  const started = performance.now();
  const argv = process.argv.slice(2);
  const args = parseBenchArgs(argv);
  const { adapter, gpu, swiftshaderIcd } = await requestNodeAdapter();
  const ctx = await GpuContext.create(adapter, gpu);
  const info = ctx.adapter;
  const results: Results = {
    adapter: { ...info, swiftshaderIcd: swiftshaderIcd ?? null, hasF16: ctx.hasF16, hasSubgroups: ctx.hasSubgroups },
    tfjs: null,
    matmul: [],
    weights: [],
    weights_summary: {},
    attention: [],
    train: [],
    step: {},
    train_config: {},
    notes: {},
    args: argv,
    seconds: 0,
  };
  log(`Adapter: ${info.description || '(no description)'} — vendor ${info.vendor}, architecture ${info.architecture}${info.isFallback ? ' (fallback adapter)' : ''}; shader-f16 ${ctx.hasF16 ? 'yes' : 'no'}, subgroups ${ctx.hasSubgroups ? 'yes' : 'no'}`);
  if (swiftshaderIcd) log(`Vulkan driver: SwiftShader (${swiftshaderIcd})`);

  // ---- matmul, side by side with TF.js ----
  let tfjs: Awaited<ReturnType<typeof tfjsOnDevice>> | undefined;
  if (args.tfjs) {
    try {
      tfjs = await tfjsOnDevice(ctx.device, gpu, adapter.info);
      results.tfjs = { version: tfjs.version, backend: tfjs.name };
      log(`TF.js ${tfjs.version}: WebGPU backend registered as '${tfjs.name}' on Graft's GPUDevice`);
    } catch (e) {
      results.tfjs = { error: errorText(e) };
      results.notes.tfjs = `TF.js could not run on this device: ${errorText(e)}; Graft's numbers only`;
      log(`TF.js: ${results.notes.tfjs}`);
    }
  } else {
    results.notes.tfjs = '--no-tfjs';
  }
  log('');
  log(`matmul at M = ${args.tokens} tokens, f32${args.quick ? ' (--quick: no lm head)' : ''}`);
  log(MATMUL_TABLE_HEADER);
  log('-'.repeat(MATMUL_TABLE_HEADER.length));
  const matmul = await runMatmulBench(ctx, tfjs, { ...args, log });
  results.matmul = matmul;
  log('');
  for (const l of summarize(matmul)) log(l);
  const slices = matmul.filter((r) => r.vocab_rows !== undefined && r.vocab !== undefined && r.vocab_rows < r.vocab);
  if (slices.length) {
    results.notes.matmul = `lm head measured on the first ${slices[0]!.vocab_rows} vocabulary rows (CPU adapter); --full-vocab for all`;
    log(results.notes.matmul);
  }

  // ---- frozen weights: f32, bf16 kept packed, NF4 side by side (bench/weights.ts) ----
  log('');
  log(`frozen weights read by the matmuls at M = ${args.tokens}: f32, bf16 kept packed, NF4 (bench/weights.ts)`);
  try {
    const { runWeightsBench } = await import('./weights');
    const w = await runWeightsBench(ctx, { tokens: args.tokens, quick: args.quick, log });
    results.weights = w.rows;
    results.weights_summary = { bf16_over_f32: w.bf16_ratio, nf4_over_f32: w.nf4_ratio };
  } catch (e) {
    results.notes.weights = `bench/weights.ts failed: ${errorText(e)}`;
    log(`weights: ${results.notes.weights}`);
  }

  // ---- attention (another engineer's bench, when it exports its runner) ----
  log('');
  const att = exportsRunner(here('./attention.ts'), 'runAttentionBench');
  // T = 1024 costs minutes on a CPU adapter (the straightforward kernel alone); --attention-seq to choose.
  const seqArg = argv.indexOf('--attention-seq');
  const attentionSeq = seqArg >= 0 && argv[seqArg + 1] ? argv[seqArg + 1]!.split(',').map(Number) : args.quick ? [256] : [256, 512];
  if (att.ok) {
    try {
      const mod = (await import('./attention')) as { runAttentionBench: (c: typeof ctx, o: object) => Promise<unknown[]> };
      log('attention forward + backward (bench/attention.ts)');
      results.attention = await mod.runAttentionBench(ctx, { seqLens: attentionSeq, log });
      for (const r of results.attention) log(`  ${JSON.stringify(r)}`);
    } catch (e) {
      results.notes.attention = `bench/attention.ts failed: ${errorText(e)}`;
      log(`attention: ${results.notes.attention}`);
    }
  } else {
    results.notes.attention = `skipped: ${att.why}`;
    log(`attention: ${results.notes.attention}`);
  }

  // ---- training (when bench/train.ts exports a runner) ----
  const tr = exportsRunner(here('./train.ts'), 'runTrainBench');
  if (tr.ok) {
    try {
      const mod = (await import('./train' as string)) as {
        runTrainBench: (c: typeof ctx, o: object) => Promise<unknown[] | { rows?: unknown[]; step?: Record<string, unknown>; config?: Record<string, unknown> }>;
      };
      log('training step (bench/train.ts)');
      // The peak for MFU: the best Graft matmul of this run that passed its check (WebGPU reports no peak).
      const ok = matmul.filter((m) => m.check === 'ok');
      const best = ok.length ? ok.reduce((a, b) => (b.graft_gflops > a.graft_gflops ? b : a)) : undefined;
      const opts: Record<string, unknown> = { quick: args.quick, log };
      if (best) opts.peak = { gflops: best.graft_gflops, source: `measured: best Graft matmul of this run (${best.model} ${best.op}, M×K×N ${best.m}×${best.k}×${best.n})` };
      const value = (name: string) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : undefined);
      if (value('--layers') !== undefined) opts.layers = Number(value('--layers'));
      if (value('--train-steps') !== undefined) opts.steps = Number(value('--train-steps'));
      if (value('--train-seq') !== undefined) opts.seqLens = value('--train-seq')!.split(',').map(Number);
      const r = await mod.runTrainBench(ctx, opts);
      if (Array.isArray(r)) results.train = r;
      else {
        results.train = r.rows ?? [];
        results.step = r.step ?? {};
        results.train_config = r.config ?? {};
      }
      for (const row of results.train) log(`  ${JSON.stringify(row)}`);
    } catch (e) {
      results.notes.train = `bench/train.ts failed: ${errorText(e)}`;
      log(`train: ${results.notes.train}`);
    }
  } else {
    results.notes.train = `skipped: ${tr.why} (npm run bench:train runs it on its own)`;
    log(`train: ${results.notes.train}`);
  }
  if (Object.keys(results.step).length === 0) results.step = { note: results.notes.train ?? 'no step breakdown reported' };
  if (results.attention.length === 0) results.notes.attention ??= 'no rows';

  results.seconds = (performance.now() - started) / 1000;
  const out = here('../bench-results.json');
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  log('');
  log(`wrote ${out}; total bench time ${results.seconds.toFixed(1)} s`);
  ctx.destroy();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);

