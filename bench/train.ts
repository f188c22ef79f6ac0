// Training benchmark: tokens per second, model FLOP utilisation (MFU) and the per-step GPU work of SFT through
// the real Trainer, on a SmolLM2-135M-SHAPED model (random weights built here: hidden 576, 9 heads, 3 key/value
// heads, intermediate 1536, vocab 49152, tied embeddings), batch 1, LoRA (rank 8, every linear projection) and
// full fine-tuning, at sequence lengths 256 and 512.
//
//   npx tsx bench/train.ts [--layers N] [--seq 256,512] [--steps N] [--warmup N] [--methods lora,full] [--peak-gflops G]
//                          [--phases] [--quick] [--gradient-checkpointing] [--no-profile] [--json FILE]   (npm run bench:train)
// `runTrainBench(ctx, opts)` returns { rows, step, config } for the combined benchmark (bench/index.ts).
//
// Depth: SmolLM2-135M has 30 layers; the default here is 2 (`--layers 30` for the real depth), because on
// SwiftShader (no GPU) a 2-layer step already takes 10-40 s (the 49152-row lm head is ~45% of a 2-layer
// LoRA step) and a 30-layer one minutes. The JSON records the depth ("layers") and the parameters N it ran.
//
// Each (method, seq) runs --warmup untimed steps (default 2, --quick 1: they compile every pipeline and fill the
// buffer pool and the bind-group cache, which takes two steps) then --steps timed steps (default 2, --quick 1)
// of Trainer.run on one sequence of seq tokens (loss on its second half).
//   tokens_per_second  the mean over the timed steps of the trainer's own tokens_per_second (input tokens ÷
//                      step wall time; a step pays its forward, backward and the previous step's AdamW, whose
//                      recording lands in the next step's submit)
//   flops_per_token    6N (full) or 4N (LoRA: no weight gradients of the base) + 12·L·nh·D·T (attention's
//                      QKᵀ and PV, forward and backward, counted without the causal half as PaLM's appendix B
//                      does); N = the parameters of the model run, a tied lm head once (its matmul is the
//                      embedding's); LoRA's own rank-8 products and the element-wise ops are not counted
//   mfu                flops_per_token · tokens_per_second ÷ the adapter's peak FLOP/s
//   matmul_efficiency  the same achieved FLOP/s ÷ the best Graft matmul GFLOP/s of the run
// The peak: WebGPU does not report one, and SwiftShader (a CPU) has no published one, so it is MEASURED in the
// same run by the FMA-throughput kernel of the app's Bench screen (src/engine/ops/fma-peak.ts; bench/peak.ts),
// or given with --peak-gflops (e.g. a GPU's data-sheet number). The JSON says which ("peak.source"). The best
// matmul: bench/index.ts passes its matmul section's best; run alone, this file measures SmolLM2-135M's layer
// products at M = 256 first ("best_matmul.source"). Matmul efficiency (what this file called MFU before it
// had a peak) says how much of the step is spent outside the best kernel; MFU how close the step runs to the
// device's arithmetic ceiling.
// GPU time (where the adapter has timestamp-query; SwiftShader has): one more step after the timed ones runs
// under a GPU profile (GpuContext.startProfile: every dispatch in a pass of its own with timestamps, so that
// step's wall time is not used), giving the step's GPU time and its split by kernel family (matmul, attention,
// norm, ...: bench/figures.ts kernelFamily) beside encode_ms (CPU time recording the step).
// Per step (the last timed step of each row; `step` in the JSON is the first row's), from GpuContext.stats:
// dispatches, submits, readbacks, buffers_created, bind_groups_created, staged_writes, encode_ms (CPU time spent
// recording the step's dispatches, GpuContext.dispatch timed around each call), wall_minus_wait_ms (the step's
// wall time minus the time spent awaiting the GPU), wait_ms,
// peak_bytes (GPU memory the context held at its highest during the step, free pooled buffers included),
// peak_bytes_in_use (held by live tensors) and planned_peak_bytes (the memory planner's prediction of the latter).
// --gradient-checkpointing: the job's gradient_checkpointing (ForwardOptions.checkpoint on the training
// forward; the planner's checkpoint: true), to see the measured and planned peak fall and the step slow down.
// --phases: additionally one step split into forward / backward / optimizer with ctx.sync() between them
// (only here: the trainer records a step without waiting in between).
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { GpuContext } from '../src/engine/context';
import type { CausalLM as Model } from '../src/model/transformer';

await import(new URL('./raw-loader.mjs', import.meta.url).href);
const { clipCoefficient, gradNorm } = await import('../src/engine/ops/grad-norm');
const { parseConfig } = await import('../src/model/config');
const { planShape, planTrainingStep } = await import('../src/model/memory-plan');
const { CausalLM, releaseBatch, uploadBatch } = await import('../src/model/transformer');
const { parseSettings } = await import('../src/train/settings');
const { setupMethod } = await import('../src/train/methods');
const { AdamW } = await import('../src/train/optimizer');
const { shiftedTargets, sftLossBackward, sftLossForward, sumInto } = await import('../src/train/loss');
const { Trainer } = await import('../src/train/trainer');
const { randomWeights } = await import('./random-weights');
const { measureFmaPeak } = await import('./peak');
const { familyTimes, matmulEfficiency, mfu, pct } = await import('./figures');

export type Method = 'lora' | 'full';

export interface TrainBenchOptions {
  /** Layers of the SmolLM2-135M shape (default 2; the real model has 30). */
  layers?: number;
  seqLens?: number[];
  methods?: Method[];
  /** Timed trainer steps after the warm-up steps (default 2). */
  steps?: number;
  /** Untimed first steps (default 2, --quick 1): compile the pipelines, fill the pool and the bind-group cache. */
  warmupSteps?: number;
  /** The adapter's peak, GFLOP/s, and where it comes from. Default: the FMA kernel, measured here (see the header). */
  peak?: { gflops: number; source: string };
  /** The best Graft matmul of the run, GFLOP/s (matmul efficiency). Default: measured here. */
  bestMatmul?: { gflops: number; source: string };
  /** Skip the profiled step (GPU time by kernel family). */
  noProfile?: boolean;
  /** seq 256 only, 1 timed step. */
  quick?: boolean;
  /** Also time one step split into phases with syncs between them. */
  phases?: boolean;
  /** The job's gradient_checkpointing (activation checkpointing). */
  gradientCheckpointing?: boolean;
  log?: (line: string) => void;
}

export interface StepBreakdown {
  dispatches: number;
  submits: number;
  readbacks: number;
  buffers_created: number;
  bind_groups_created: number;
  staged_writes: number;
  encode_ms: number;
  wait_ms: number;
  /** The step's wall time minus its GPU waits (what encode_ms was before; with the trainer's overlapped steps the waits of two steps overlap, so it can go negative). */
  wall_minus_wait_ms: number;
  peak_bytes: number;
  peak_bytes_in_use: number;
  /** The memory planner's prediction of peak_bytes_in_use (src/model/memory-plan.ts). */
  planned_peak_bytes: number;
  /** GPU time of one profiled step (timestamp queries), ms, and its split by kernel family; null without timestamp-query. */
  gpu_ms: number | null;
  /** How many steps' worth of dispatches the profile covered (gpu_ms is divided by it). */
  gpu_profiled_steps: number | null;
  gpu_by_family: { family: string; ms: number; dispatches: number }[] | null;
}

export interface TrainBenchRow {
  model: string;
  method: Method;
  seq_len: number;
  layers: number;
  gradient_checkpointing: boolean;
  trainable: number;
  tokens_per_second: number;
  step_s: number;
  flops_per_token: number;
  achieved_gflops: number;
  mfu: number;
  matmul_efficiency: number;
  loss: number;
  warmup_s: number;
  step: StepBreakdown;
  phases_s?: { forward: number; backward: number; optimizer: number };
}

export interface TrainBenchResult {
  rows: TrainBenchRow[];
  /** The first row's steady-state step. */
  step: StepBreakdown & { method: Method; seq_len: number };
  config: Record<string, unknown>;
}

const MODEL = 'SmolLM2-135M-shaped';
const LORA_RANK = 8;

function smolConfig(layers: number) {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: layers,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    vocab_size: 49152,
    rms_norm_eps: 1e-5,
    rope_theta: 100000,
    max_position_embeddings: 8192,
    tie_word_embeddings: true,
    hidden_act: 'silu',
  };
}

/** Token ids of one sequence and labels on its second half (an answer after a prompt). */
function example(T: number) {
  let s = 7;
  const ids = Array.from({ length: T }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % 49152;
  });
  return { inputIds: ids, labels: ids.map((id, t) => (t < T / 2 ? -100 : id)) };
}

function benchSettings(method: Method, T: number, maxSteps: number, checkpoint = false) {
  return parseSettings(
    {
      model_name_or_path: 'bench',
      dataset: 'bench',
      finetuning_type: method,
      lora_rank: LORA_RANK,
      lora_target: 'all',
      learning_rate: 1e-4,
      per_device_train_batch_size: 1,
      cutoff_len: T,
      max_steps: maxSteps,
      save_strategy: 'no',
      disable_shuffling: true,
      gradient_checkpointing: checkpoint,
    },
    'bench',
  );
}

/** FLOPs per trained token (see the header). */
export function flopsPerToken(method: Method, parameters: number, layers: number, heads: number, headDim: number, T: number): number {
  return (method === 'full' ? 6 : 4) * parameters + 12 * layers * heads * headDim * T;
}

/** One step with ctx.sync() between forward, backward and optimizer (the trainer never waits in between). */
async function phaseSplit(ctx: GpuContext, model: Model, method: Method, T: number, checkpoint: boolean): Promise<{ forward: number; backward: number; optimizer: number }> {
  const ex = example(T);
  const setup = setupMethod(model, benchSettings(method, T, 1));
  const grads = model.createGradients(setup.select);
  const opt = new AdamW(ctx, setup.params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  const stats = ctx.zeros([2], 'f32', { persistent: true });
  const norm = ctx.zeros([1], 'f32', { persistent: true });
  const scale = ctx.zeros([1], 'f32', { persistent: true });
  try {
    const targets = shiftedTargets([ex.labels]);
    const count = targets.filter((t) => t !== -100).length;
    await ctx.sync();
    const t0 = performance.now();
    ctx.fill(stats, 0);
    grads.zero();
    const batch = uploadBatch(ctx, [ex.inputIds]);
    const acts = model.forward(batch, { logits: 'chunks', checkpoint });
    const ce = sftLossForward(ctx, acts, targets, stats, 0);
    await ctx.sync();
    const t1 = performance.now();
    const dLogits = sftLossBackward(ctx, acts, ce, 1 / count);
    model.backward(acts, dLogits, grads);
    for (const d of dLogits) d.release();
    ce.release();
    acts.release();
    releaseBatch(batch);
    await ctx.sync();
    const t2 = performance.now();
    gradNorm(ctx, norm, grads.tensors());
    sumInto(ctx, stats, 1, norm);
    clipCoefficient(ctx, scale, norm, 1.0);
    await ctx.readF32(stats);
    opt.step(grads, 1e-4, scale);
    await ctx.sync();
    const t3 = performance.now();
    return { forward: (t1 - t0) / 1000, backward: (t2 - t1) / 1000, optimizer: (t3 - t2) / 1000 };
  } finally {
    for (const t of [stats, norm, scale]) t.release();
    opt.release();
    grads.release();
    setup.release();
  }
}

/** The best Graft matmul GFLOP/s on SmolLM2-135M's layer products at M = 256 (no lm head, no TF.js). */
export async function measureBestMatmul(ctx: GpuContext, log: (l: string) => void = () => {}): Promise<{ gflops: number; source: string }> {
  const { runMatmulBench } = await import('./matmul');
  const rows = (await runMatmulBench(ctx, undefined, { models: ['smollm2'], quick: true, lora: false, tokens: 256 })).filter((r) => r.check === 'ok');
  if (rows.length === 0) throw new Error('no matmul product passed its check, so there is no peak to measure MFU against');
  const best = rows.reduce((a, b) => (b.graft_gflops > a.graft_gflops ? b : a));
  log(`best matmul: ${best.graft_gflops.toFixed(2)} GFLOP/s (Graft matmul ${best.model} ${best.op}, ${best.m}×${best.k}×${best.n})`);
  return { gflops: best.graft_gflops, source: `measured: best Graft matmul of this run (${best.model} ${best.op}, M×K×N ${best.m}×${best.k}×${best.n})` };
}

export async function runTrainBench(ctx: GpuContext, opts: TrainBenchOptions = {}): Promise<TrainBenchResult> {
  const log = opts.log ?? (() => {});
  const layers = opts.layers ?? 2;
  const seqLens = opts.seqLens ?? (opts.quick ? [256] : [256, 512]);
  const methods = opts.methods ?? ['lora', 'full'];
  const steps = opts.steps ?? (opts.quick ? 1 : 2);
  const warmupSteps = opts.warmupSteps ?? (opts.quick ? 1 : 2);
  if (!Number.isInteger(layers) || layers < 1) throw new Error(`--layers ${layers}: give a whole number of layers (1 to 30)`);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps ${steps}: give at least 1 timed step`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 1) throw new Error(`--warmup ${warmupSteps}: give at least 1 warm-up step`);
  const peak = opts.peak ?? (await measureFmaPeak(ctx));
  if (!opts.peak) log(`FMA peak: ${peak.gflops.toFixed(2)} GFLOP/s (${peak.source})`);
  if (!(peak.gflops > 0)) throw new Error(`peak ${peak.gflops} GFLOP/s: give a positive --peak-gflops`);
  const bestMatmul = opts.bestMatmul ?? (await measureBestMatmul(ctx, log));
  const profile = ctx.hasTimestamps && !opts.noProfile;

  const raw = smolConfig(layers);
  const cfg = parseConfig(raw);
  const model = CausalLM.create(ctx, cfg, randomWeights(raw), { maxPositions: Math.max(...seqLens) });
  const rows: TrainBenchRow[] = [];
  try {
    await ctx.sync();
    const N = model.parameters().reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
    log(`${MODEL}, random weights, ${layers} of 30 layers: ${(N / 1e6).toFixed(1)}M parameters; batch 1; ${warmupSteps} warm-up + ${steps} timed Trainer step(s) each`);
    for (const T of seqLens) {
      for (const method of methods) {
        const trainer = Trainer.create({ model, settings: benchSettings(method, T, warmupSteps + steps + (profile ? 2 : 0), opts.gradientCheckpointing), train: [example(T)], padTokenId: 0 });
        const trainable = trainer.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
        const snaps: { stats: typeof ctx.stats; tps: number; loss: number; seconds: number; recordMs: number }[] = [];
        // CPU time recording dispatches (GpuContext.dispatch: bind groups, parameters, pass commands), summed.
        let recordMs = 0;
        const dispatch = ctx.dispatch.bind(ctx);
        (ctx as { dispatch: typeof ctx.dispatch }).dispatch = (...a: Parameters<typeof ctx.dispatch>) => {
          const t = performance.now();
          try {
            return dispatch(...a);
          } finally {
            recordMs += performance.now() - t;
          }
        };
        await ctx.sync();
        ctx.resetPeaks();
        const t0 = performance.now();
        let warmup = 0;
        let timedKernels: { kernel: string; ns: number }[] | null = null;
        try {
          await trainer.run({
            onStep: (r) => {
              if (snaps.length === warmupSteps - 1) warmup = (performance.now() - t0) / 1000;
              snaps.push({ stats: { ...ctx.stats }, tps: r.tokens_per_second, loss: r.loss, seconds: r.input_tokens / r.tokens_per_second, recordMs });
              ctx.resetPeaks();
              // The steps after the timed ones run under a GPU profile (the trainer may record a step ahead while
              // it reads the last one back, so two more steps; the profile's GPU time is divided by the steps it
              // covered, counted in dispatches).
              if (profile && snaps.length === warmupSteps + steps) ctx.startProfile();
            },
          });
          if (ctx.profilingActive) timedKernels = await ctx.stopProfile();
        } finally {
          if (ctx.profilingActive) await ctx.stopProfile();
          delete (ctx as { dispatch?: unknown }).dispatch;
          trainer.dispose();
        }
        const timed = snaps.slice(warmupSteps, warmupSteps + steps);
        const last = timed[timed.length - 1]!;
        const before = snaps[warmupSteps + steps - 2]!.stats;
        const d = (k: keyof typeof ctx.stats) => last.stats[k] - before[k];
        const tps = timed.reduce((s, x) => s + x.tps, 0) / timed.length;
        const fpt = flopsPerToken(method, N, layers, cfg.numHeads, cfg.headDim, T);
        const achieved = (fpt * tps) / 1e9;
        const row: TrainBenchRow = {
          model: MODEL,
          method,
          seq_len: T,
          layers,
          gradient_checkpointing: opts.gradientCheckpointing ?? false,
          trainable,
          tokens_per_second: +tps.toFixed(2),
          step_s: +(T / tps).toFixed(3),
          flops_per_token: fpt,
          achieved_gflops: +achieved.toFixed(3),
          mfu: +mfu(achieved, peak.gflops).toFixed(4),
          matmul_efficiency: +matmulEfficiency(achieved, bestMatmul.gflops).toFixed(4),
          loss: +last.loss.toFixed(4),
          warmup_s: +warmup.toFixed(1),
          step: {
            dispatches: d('dispatches'),
            submits: d('submits'),
            readbacks: d('readbacks'),
            buffers_created: d('buffersCreated'),
            bind_groups_created: d('bindGroupsCreated'),
            staged_writes: d('stagedWrites'),
            encode_ms: +(last.recordMs - snaps[warmupSteps + steps - 2]!.recordMs).toFixed(1),
            wall_minus_wait_ms: +(last.seconds * 1000 - d('waitMs')).toFixed(1),
            wait_ms: +d('waitMs').toFixed(1),
            peak_bytes: last.stats.peakBytesAllocated,
            peak_bytes_in_use: last.stats.peakBytesInUse,
            planned_peak_bytes: planTrainingStep(planShape(cfg), {
              method,
              batch: 1,
              seqLen: T,
              loraRank: LORA_RANK,
              maxPositions: Math.max(...seqLens),
              maxBindingBytes: ctx.limits.maxStorageBufferBindingSize,
              checkpoint: opts.gradientCheckpointing ?? false,
            }).total,
            gpu_profiled_steps: timedKernels ? +(timedKernels.length / d('dispatches')).toFixed(2) : null,
            gpu_ms: timedKernels ? +(timedKernels.reduce((s, k) => s + k.ns, 0) / 1e6 / (timedKernels.length / d('dispatches'))).toFixed(1) : null,
            gpu_by_family: timedKernels ? familyTimes(timedKernels).map((f) => ({ ...f, ms: +(f.ms / (timedKernels!.length / d('dispatches'))).toFixed(2), dispatches: Math.round(f.dispatches / (timedKernels!.length / d('dispatches'))) })) : null,
          },
        };
        if (opts.phases) row.phases_s = await phaseSplit(ctx, model, method, T, opts.gradientCheckpointing ?? false);
        rows.push(row);
        log(
          `${method.padEnd(4)} T=${T}: ${row.tokens_per_second} tokens/s (step ${row.step_s} s), ${row.achieved_gflops} GFLOP/s, MFU ${pct(row.mfu)}, matmul efficiency ${pct(row.matmul_efficiency)}; ` +
            `${row.step.dispatches} dispatches, ${row.step.submits} submit(s), ${row.step.readbacks} readback(s), ${row.step.buffers_created} buffers created, ` +
            `encode ${row.step.encode_ms} ms, peak ${(row.step.peak_bytes / 2 ** 20).toFixed(1)} MiB (in use ${(row.step.peak_bytes_in_use / 2 ** 20).toFixed(1)} MiB, planned ${(row.step.planned_peak_bytes / 2 ** 20).toFixed(1)} MiB); warm-up ${row.warmup_s} s` +
            (row.step.gpu_ms !== null ? `; GPU ${row.step.gpu_ms} ms a step (${row.step.gpu_by_family!.map((f) => `${f.family} ${f.ms.toFixed(1)}`).join(', ')}) beside encode ${row.step.encode_ms} ms` : '') +
            (row.phases_s ? `; phases fwd ${row.phases_s.forward.toFixed(2)} s, bwd ${row.phases_s.backward.toFixed(2)} s, opt ${row.phases_s.optimizer.toFixed(2)} s` : ''),
        );
        ctx.trimPool();
      }
    }
    const first = rows[0]!;
    return {
      rows,
      step: { method: first.method, seq_len: first.seq_len, ...first.step },
      config: {
        model: `${MODEL} (random weights): hidden 576, 9 heads / 3 kv heads, head dim 64, intermediate 1536, vocab 49152, tied embeddings`,
        layers,
        layers_of_real_model: 30,
        parameters: N,
        batch: 1,
        lora: { rank: LORA_RANK, target: 'all linear projections' },
        warmup_steps: warmupSteps,
        timed_steps: steps,
        flops_per_token: '6N (full) or 4N (LoRA) + 12·layers·heads·head_dim·seq_len',
        peak,
        best_matmul: bestMatmul,
        mfu: 'achieved GFLOP/s ÷ peak (the FMA kernel of the same run unless --peak-gflops)',
        matmul_efficiency: 'achieved GFLOP/s ÷ best_matmul',
      },
    };
  } finally {
    model.dispose();
    ctx.trimPool();
  }
}

/** The rows as a Markdown table, with the peak and the best matmul they are measured against. */
export function trainTable(r: TrainBenchResult): string[] {
  const lines = [
    '',
    '| method | seq | layers | tokens/s | step s | GFLOP/s | MFU | matmul eff. | GPU ms/step | matmul GPU ms | encode ms | dispatches | submits | peak MiB |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const x of r.rows) {
    const mm = x.step.gpu_by_family?.find((f) => f.family === 'matmul');
    lines.push(
      `| ${x.method} | ${x.seq_len} | ${x.layers} | ${x.tokens_per_second} | ${x.step_s} | ${x.achieved_gflops} | ${pct(x.mfu)} | ${pct(x.matmul_efficiency)} | ${x.step.gpu_ms ?? '-'} | ${mm ? mm.ms.toFixed(1) : '-'} | ${x.step.encode_ms} | ${x.step.dispatches} | ${x.step.submits} | ${(x.step.peak_bytes / 2 ** 20).toFixed(1)} |`,
    );
  }
  const peak = r.config.peak as { gflops: number; source: string };
  const best = r.config.best_matmul as { gflops: number; source: string };
  lines.push(`MFU against the peak ${peak.gflops.toFixed(2)} GFLOP/s (${peak.source}); matmul efficiency against ${best.gflops.toFixed(2)} GFLOP/s (${best.source})`);
  return lines;
}

async function main(): Promise<void> {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const num = (name: string): number | undefined => (arg(name) === undefined ? undefined : Number(arg(name)));
  const { requestNodeAdapter } = await import('../src/engine/adapter-node');
  const { GpuContext: Context } = await import('../src/engine/context');
  const { adapter, gpu } = await requestNodeAdapter();
  const ctx = await Context.create(adapter, gpu);
  const log = (l: string) => console.log(l);
  log(`adapter: ${ctx.adapter.description || ctx.adapter.vendor} (${ctx.adapter.vendor}, ${ctx.adapter.architecture})`);
  const peakArg = num('peak-gflops');
  const opts: TrainBenchOptions = {
    quick: process.argv.includes('--quick'),
    phases: process.argv.includes('--phases'),
    gradientCheckpointing: process.argv.includes('--gradient-checkpointing'),
    noProfile: process.argv.includes('--no-profile'),
    log,
  };
  const layers = num('layers');
  const steps = num('steps');
  const warm = num('warmup');
  if (warm !== undefined) opts.warmupSteps = warm;
  if (layers !== undefined) opts.layers = layers;
  if (steps !== undefined) opts.steps = steps;
  if (arg('seq')) opts.seqLens = arg('seq')!.split(',').map(Number);
  if (arg('methods')) opts.methods = arg('methods')!.split(',') as Method[];
  if (peakArg !== undefined) opts.peak = { gflops: peakArg, source: 'given with --peak-gflops' };
  const r = await runTrainBench(ctx, opts);
  for (const l of trainTable(r)) log(l);
  if (arg('json')) {
    writeFileSync(arg('json')!, JSON.stringify({ adapter: ctx.adapter, ...r }, null, 2) + '\n');
    log(`wrote ${arg('json')}`);
  }
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
