// The combined benchmark (`npm run bench`): the device's peak measured by the FMA-throughput kernel (bench/peak.ts,
// the Bench screen's kernel); matmul on real model shapes, Graft against TensorFlow.js's WebGPU backend on the
// same device in two layouts and TF.js's WebAssembly backend (bench/matmul.ts), summed per model as one training
// step's products weighted by time; then the attention benchmark (bench/attention.ts's `runAttentionBench`), the
// training benchmark (bench/train.ts's `runTrainBench`) and, for context, PyTorch on this CPU for the same
// training step (bench/torch_step.py, when `python3 -c "import torch"` works; a printed note otherwise).
// Prints the tables and writes bench-results.json in the repository root:
//   { adapter, peak, tfjs, wasm, matmul: [...], matmul_step: [...], weights: [...], weights_summary,
//     attention: [...], train: [...], step: {...}, train_config: {...}, torch, notes, seconds }
// A section that could not run stays an empty array/object (or null), and `notes` says why.
//
//   npm run bench [-- --quick] [-- --vocab-slice N | --full-vocab] [-- --models qwen3,gpt2] [-- --no-tfjs]
//                 [-- --no-wasm] [-- --no-torch] [-- --no-weights] [-- --no-attention] [-- --no-train]
//                 [-- --attention-seq 256,512,1024] [-- --layers 30] [-- --train-seq 256,512] [-- --train-steps 2]
//                 [-- --train-warmup 2] [-- --train-methods lora,full]
// (the matmul flags are bench/matmul.ts's; attention runs at T = 256 and 512, --quick: 256 only). Training
// (bench/train.ts): LoRA and full at 256 and 512 tokens on a 2-layer SmolLM2-135M shape (--layers 30: the real
// depth), its MFU against the FMA peak and its matmul efficiency against the best Graft matmul measured above.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

await import(new URL('./raw-loader.mjs', import.meta.url).href);
const { requestNodeAdapter } = await import('../src/engine/adapter-node');
const { GpuContext } = await import('../src/engine/context');
const { MATMUL_TABLE_HEADER, bestGraft, parseBenchArgs, runMatmulBench, startPeers, stepSummaries, summarize } = await import('./matmul');
const { measureFmaPeak } = await import('./peak');

interface Results {
  adapter: Record<string, unknown>;
  /** The FMA kernel's GFLOP/s (MFU's denominator). */
  peak: Record<string, unknown> | null;
  tfjs: { version: string; backend: string } | { error: string } | null;
  wasm: { version: string; backend: string; features: string } | null;
  matmul: unknown[];
  /** Per model: one training step's products summed as time per library, Graft's speed-up over each peer. */
  matmul_step: unknown[];
  /** f32, bf16 kept packed and NF4 weights in the same matmuls (bench/weights.ts), and their mean ratios. */
  weights: unknown[];
  weights_summary: Record<string, number>;
  attention: unknown[];
  train: unknown[];
  step: Record<string, unknown>;
  train_config: Record<string, unknown>;
  /** PyTorch on this CPU, one training step of the same shape (context only). */
  torch: Record<string, unknown> | null;
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
    peak: null,
    tfjs: null,
    wasm: null,
    matmul: [],
    matmul_step: [],
    weights: [],
    weights_summary: {},
    attention: [],
    train: [],
    step: {},
    train_config: {},
    torch: null,
    notes: {},
    args: argv,
    seconds: 0,
  };
  log(`Adapter: ${info.description || '(no description)'} — vendor ${info.vendor}, architecture ${info.architecture}${info.isFallback ? ' (fallback adapter)' : ''}; shader-f16 ${ctx.hasF16 ? 'yes' : 'no'}, subgroups ${ctx.hasSubgroups ? 'yes' : 'no'}`);
  if (swiftshaderIcd) log(`Vulkan driver: SwiftShader (${swiftshaderIcd})`);

  // ---- the peak: the FMA-throughput kernel (the Bench screen's) ----
  const peak = await measureFmaPeak(ctx);
  results.peak = { ...peak };
  log(`FMA peak: ${peak.gflops.toFixed(2)} GFLOP/s (${peak.source}${peak.gpu_gflops !== null ? `; wall clock ${peak.wall_gflops.toFixed(2)}, GPU timestamps ${peak.gpu_gflops.toFixed(2)}` : ''})`);

  // ---- matmul, side by side with TF.js WebGPU (two layouts) and TF.js wasm ----
  const peers = await startPeers(ctx, gpu, adapter, args, (p, why) => {
    results.notes[p] = why;
    log(`${p}: ${why}`);
  });
  if (peers.webgpu) {
    results.tfjs = { version: peers.webgpu.version, backend: peers.webgpu.name };
    log(`TF.js ${peers.webgpu.version}: WebGPU backend registered as '${peers.webgpu.name}' on Graft's GPUDevice`);
  } else if (args.tfjs) results.tfjs = { error: results.notes.tfjs ?? 'did not start' };
  if (peers.wasm) {
    results.wasm = { version: peers.wasm.version, backend: peers.wasm.name, features: peers.wasm.features };
    log(`TF.js ${peers.wasm.version}: '${peers.wasm.name}' backend (${peers.wasm.features})`);
  }
  log('');
  log(`matmul at M = ${args.tokens} tokens, f32${args.quick ? ' (--quick: no lm head)' : ''}; GFLOP/s (Graft × faster than it); ×step = times a step runs it; ! = WRONG result`);
  log(MATMUL_TABLE_HEADER);
  log('-'.repeat(MATMUL_TABLE_HEADER.length));
  const matmul = await runMatmulBench(ctx, peers, { ...args, peakGflops: peak.gflops, log });
  results.matmul = matmul;
  results.matmul_step = stepSummaries(matmul, peak.gflops);
  log('');
  for (const l of summarize(matmul, peak.gflops)) log(l);
  const slices = matmul.filter((r) => r.vocab_rows !== undefined && r.vocab !== undefined && r.vocab_rows < r.vocab);
  if (slices.length) {
    results.notes.matmul = `lm head measured on the first ${slices[0]!.vocab_rows} vocabulary rows (CPU adapter), its step time scaled to the whole vocabulary; --full-vocab for all`;
    log(results.notes.matmul);
  }

  // ---- frozen weights: f32, bf16 kept packed, NF4 side by side (bench/weights.ts) ----
  log('');
  if (argv.includes('--no-weights')) results.notes.weights = '--no-weights';
  else try {
    log(`frozen weights read by the matmuls at M = ${args.tokens}: f32, bf16 kept packed, NF4 (bench/weights.ts)`);
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
  if (argv.includes('--no-attention')) results.notes.attention = '--no-attention';
  else if (att.ok) {
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
  const value = (name: string) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : undefined);
  if (argv.includes('--no-train')) results.notes.train = '--no-train';
  else if (tr.ok) {
    try {
      const mod = (await import('./train' as string)) as {
        runTrainBench: (c: typeof ctx, o: object) => Promise<unknown[] | { rows?: unknown[]; step?: Record<string, unknown>; config?: Record<string, unknown> }>;
        trainTable: (r: never) => string[];
      };
      const { trainTable } = mod;
      log('training step (bench/train.ts)');
      // MFU against the FMA peak, measured again here and the higher of the two kept (the machine may be busier
      // at one moment than the other: the higher peak is the stricter MFU); matmul efficiency against the best
      // Graft matmul of this run that passed its check.
      const again = await measureFmaPeak(ctx);
      results.peak = { ...peak, before_training_gflops: again.gflops };
      const trainPeak = again.gflops > peak.gflops ? again : peak;
      log(`FMA peak again before training: ${again.gflops.toFixed(2)} GFLOP/s; MFU below against ${trainPeak.gflops.toFixed(2)}`);
      const best = bestGraft(matmul);
      const opts: Record<string, unknown> = { quick: args.quick, log, peak: { gflops: trainPeak.gflops, source: trainPeak.source } };
      if (best) opts.bestMatmul = { gflops: best.graft_gflops, source: `measured: best Graft matmul of this run (${best.model} ${best.op}, M×K×N ${best.m}×${best.k}×${best.n})` };
      if (value('--layers') !== undefined) opts.layers = Number(value('--layers'));
      if (value('--train-steps') !== undefined) opts.steps = Number(value('--train-steps'));
      if (value('--train-seq') !== undefined) opts.seqLens = value('--train-seq')!.split(',').map(Number);
      if (value('--train-methods') !== undefined) opts.methods = value('--train-methods')!.split(',');
      if (value('--train-warmup') !== undefined) opts.warmupSteps = Number(value('--train-warmup'));
      const r = await mod.runTrainBench(ctx, opts);
      if (Array.isArray(r)) results.train = r;
      else {
        results.train = r.rows ?? [];
        results.step = r.step ?? {};
        results.train_config = r.config ?? {};
      }
      for (const l of trainTable(r as never)) log(l);
    } catch (e) {
      results.notes.train = `bench/train.ts failed: ${errorText(e)}`;
      log(`train: ${results.notes.train}`);
    }
  } else {
    results.notes.train = `skipped: ${tr.why} (npm run bench:train runs it on its own)`;
    log(`train: ${results.notes.train}`);
  }

  // ---- PyTorch on this CPU, for context: one training step of the same shape ----
  log('');
  if (argv.includes('--no-torch')) results.notes.torch = '--no-torch';
  else {
    const layers = value('--layers') ?? '2';
    const seq = (value('--train-seq') ?? '256').split(',')[0]!;
    const py = process.env.PYTHON ?? 'python3';
    const probe = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      results.notes.torch = `skipped: \`${py} -c "import torch"\` failed (${(probe.stderr || String(probe.error ?? '')).trim().split('\n').pop()})`;
      log(`PyTorch: ${results.notes.torch}`);
    } else {
      log(`PyTorch on this CPU for context (bench/torch_step.py): LoRA, ${layers} layers, ${seq} tokens`);
      const r = spawnSync(py, [here('./torch_step.py'), '--layers', layers, '--seq', seq, '--method', 'lora', '--steps', args.quick ? '1' : '2', '--warmup', '1'], { encoding: 'utf8', timeout: 30 * 60_000 });
      const line = r.stdout?.trim().split('\n').pop();
      try {
        results.torch = JSON.parse(line ?? '') as Record<string, unknown>;
        log(`  ${results.torch.library}: ${results.torch.tokens_per_second} tokens/s (step ${results.torch.step_s} s)`);
        const graft = (results.train as { method?: string; seq_len?: number; tokens_per_second?: number }[]).find((t) => t.method === 'lora' && String(t.seq_len) === seq);
        if (graft?.tokens_per_second) log(`  Graft (this adapter) ${graft.tokens_per_second} tokens/s: ${(graft.tokens_per_second / Number(results.torch.tokens_per_second)).toFixed(2)}× PyTorch's`);
      } catch {
        results.notes.torch = `bench/torch_step.py failed (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`;
        log(`PyTorch: ${results.notes.torch}`);
      }
    }
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

