// The engine worker's benchmark (the Bench screen): a measured FMA peak, the matmuls of a training step on the
// chosen model, and training tokens/s from real Trainer steps; and the matmul autotuner on the model's shapes, its
// plans kept in IndexedDB (IdbTuneCache). What each measures and how it is timed: docs/worker.md ("The benchmark").
import { autotune, tuneKey, type TuneCache } from '../engine/autotune';
import type { GpuContext } from '../engine/context';
import { calibrateFmaIters, FMA_CHAINS, FMA_PEAK_THREADS, fmaPeak } from '../engine/ops/fma-peak';
import { matmulNN, matmulNT, matmulPlan, matmulShapeKey, matmulTN, type MatmulShape } from '../engine/ops/matmul';
import { DEFAULT_REVISION } from '../hub/client';
import type { ModelStore } from '../hub/store';
import { parseConfig, type ModelConfig } from '../model/config';
import { loadModel } from '../model/load';
import { ModelError, readJson, storeSource } from '../model/source';
import { parseSettingsWithNotes } from '../train/settings';
import { TrainControl, Trainer } from '../train/trainer';
import { IdbTuneCache } from './tune-cache-idb';
import { seededValues as values } from '../engine/seeded';

export { FMA_CHAINS };

export interface BenchRequest {
  /** The model whose shapes and training speed are measured (a downloaded model, or the built-in demo's id). */
  repo: string;
  revision?: string;
  /** Rows of each matmul (tokens of a step), default 256. */
  tokens?: number;
  /** Training: sequences per step, their length, and steps (the first is a warm-up). Defaults 2, 64, 4. */
  batch?: number;
  seqLen?: number;
  steps?: number;
  /** Seconds each measurement fills, default 0.25. */
  target?: number;
  /** Skip the training measurement. */
  noTrain?: boolean;
}

/** One timed measurement: `runs` runs of `flops` floating-point operations took `seconds`. */
export interface Measured {
  flops: number;
  runs: number;
  seconds: number;
  /** flops · runs / seconds / 1e9 */
  gflops: number;
}

export interface PeakResult extends Measured {
  threads: number;
  iters: number;
  chains: number;
}

export interface MatmulResult extends Measured {
  /** The layer, e.g. "q_proj, o_proj [576 → 576]". */
  layer: string;
  pass: 'forward' | 'dX' | 'dW';
  call: 'NT' | 'NN' | 'TN';
  M: number;
  N: number;
  K: number;
  /** The kernel the plan chose, e.g. "matmul_register". */
  kernel: string;
  /** Largest |gpu − float64| / (1 + |float64|) over four checked outputs. */
  maxError: number;
}

export interface TrainBenchResult {
  repo: string;
  method: string;
  batch: number;
  seqLen: number;
  /** Steps timed (after the warm-up step). */
  steps: number;
  /** Input tokens of the timed steps, and their seconds. */
  tokens: number;
  seconds: number;
  /** tokens / seconds */
  tokensPerSecond: number;
}

export interface BenchReport {
  adapter: string;
  repo: string;
  tokens: number;
  peak?: PeakResult;
  matmuls: MatmulResult[];
  /** Σ flops·runs / Σ seconds over the matmuls. */
  matmulGflops?: number;
  train?: TrainBenchResult;
  cancelled: boolean;
}

/** The products the autotuner plans for a model: its layers at a row count (the Bench screen's matmul rows). */
export interface TuneRequest {
  repo: string;
  revision?: string;
  /** Rows of each product (tokens of a step), default 256. */
  tokens?: number;
}

/** The plan the autotuner chose for one product of a model (from the cache, or tuned now). */
export interface TunedPlan {
  layer: string;
  pass: 'forward' | 'dX' | 'dW';
  call: 'NT' | 'NN' | 'TN';
  /** matmulShapeKey, e.g. "NT 256x576x576 f32". */
  shape: string;
  /** The chosen plan in words (planLabel). */
  label: string;
  /** GPU nanoseconds of one run of the chosen plan. */
  ns: number;
  /** 'timestamps' (GPU time from timestamp queries) or 'wall' (wall-clock around a sync). */
  timing: 'timestamps' | 'wall';
  /** Candidates timed. */
  candidates: number;
  tunedAt: number;
  /** Read from the cache rather than tuned by this call. */
  cached: boolean;
}

export type BenchEvent =
  | { kind: 'progress'; phase: 'peak' | 'matmul' | 'train' | 'tune'; done: number; total: number; message: string }
  | { kind: 'plan'; result: TunedPlan }
  | { kind: 'peak'; result: PeakResult }
  | { kind: 'matmul'; result: MatmulResult }
  | { kind: 'train'; result: TrainBenchResult };

export interface BenchApi {
  /** Measures the GPU (peak, matmuls on the model's shapes, training tokens/s); `onEvent` wrapped in proxy(). */
  runBenchmark(request: BenchRequest, onEvent?: (e: BenchEvent) => void): Promise<BenchReport>;
  /** Stops the running benchmark (or tuning) after the measurement in progress. */
  cancelBenchmark(): Promise<void>;
  /**
   * Runs the matmul autotuner on the model's products (forward, dX, dW of each distinct linear layer at
   * `tokens` rows): plans already in the cache are kept, the others tuned and stored; all are installed on the
   * worker's GPU context (training on it runs them). `onEvent` wrapped in proxy().
   */
  tuneMatmuls(request: TuneRequest, onEvent?: (e: BenchEvent) => void): Promise<TunedPlan[]>;
  /** The cached plans of the model's products on this GPU (nothing is tuned), in the order tuneMatmuls lists them. */
  tunedMatmuls(request: TuneRequest): Promise<TunedPlan[]>;
}

export interface BenchServiceDeps {
  gpu(): Promise<GpuContext>;
  /** The downloaded models (and the demo model). */
  models: ModelStore;
  /** Refuses while a run trains, and frees the GPU memory the chat models hold. */
  beforeGpuWork(): Promise<void>;
  /** Where tuned matmul plans are kept (default: the graft database's matmulPlans store). */
  tuneCache?: TuneCache;
}

/** Runs of one measurement at most (each records its dispatches into one command buffer). */
const MAX_RUNS = 4000;

const gflopsOf = (flops: number, runs: number, seconds: number) => (flops * runs) / seconds / 1e9;

/** The distinct linear layers of a model: [in, out] with the names that share it. */
export function linearShapes(cfg: ModelConfig): { layer: string; inF: number; outF: number }[] {
  const q = cfg.numHeads * cfg.headDim;
  const kv = cfg.numKvHeads * cfg.headDim;
  const H = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const list: [string, number, number][] =
    cfg.mlp === 'swiglu'
      ? [['q_proj', H, q], ['k_proj', H, kv], ['v_proj', H, kv], ['o_proj', q, H], ['gate_proj', H, I], ['up_proj', H, I], ['down_proj', I, H]]
      : [['c_attn', H, 3 * H], ['c_proj (attention)', H, H], ['c_fc', H, I], ['c_proj (MLP)', I, H]];
  const byShape = new Map<string, { names: string[]; inF: number; outF: number }>();
  for (const [name, inF, outF] of list) {
    const key = `${inF}x${outF}`;
    const e = byShape.get(key);
    if (e) e.names.push(name);
    else byShape.set(key, { names: [name], inF, outF });
  }
  return [...byShape.values()].map((e) => ({ layer: `${e.names.join(', ')} [${e.inF} → ${e.outF}]`, inF: e.inF, outF: e.outF }));
}


/** The products of a training step on a model's linear layers at M rows: forward x·Wᵀ, dX dy·W, dW dyᵀ·x. */
export function modelProducts(cfg: ModelConfig, M: number): { layer: string; pass: 'forward' | 'dX' | 'dW'; call: 'NT' | 'NN' | 'TN'; shape: MatmulShape }[] {
  return linearShapes(cfg).flatMap(({ layer, inF, outF }) => [
    { layer, pass: 'forward' as const, call: 'NT' as const, shape: { transA: false, transB: true, M, N: outF, K: inF } },
    { layer, pass: 'dX' as const, call: 'NN' as const, shape: { transA: false, transB: false, M, N: inF, K: outF } },
    { layer, pass: 'dW' as const, call: 'TN' as const, shape: { transA: true, transB: false, M: outF, N: inF, K: M } },
  ]);
}

export class BenchService {
  private cancelled = false;
  private control: TrainControl | undefined;
  private running = false;
  private readonly tuneCache: TuneCache;

  constructor(private readonly deps: BenchServiceDeps) {
    this.tuneCache = deps.tuneCache ?? new IdbTuneCache();
  }

  /** The model's config and products (the model must be on this device). */
  private async products(request: TuneRequest) {
    const revision = request.revision ?? DEFAULT_REVISION;
    const entry = await this.deps.models.getModel(request.repo, revision);
    if (!entry?.complete) throw new ModelError('missing-file', `${request.repo} is not on this device: download it on the Model screen first (or pick the built-in demo model).`);
    const cfg = parseConfig(await readJson(storeSource(this.deps.models, request.repo, revision), 'config.json', true));
    return modelProducts(cfg, Math.max(1, Math.floor(request.tokens ?? 256)));
  }

  async tunedMatmuls(request: TuneRequest): Promise<TunedPlan[]> {
    const products = await this.products(request);
    const ctx = await this.deps.gpu();
    const out: TunedPlan[] = [];
    for (const p of products) {
      const e = await this.tuneCache.get(tuneKey(ctx, p.shape));
      if (e) out.push({ layer: p.layer, pass: p.pass, call: p.call, shape: matmulShapeKey(p.shape), label: e.label, ns: e.ns, timing: e.timing, candidates: e.candidates.length, tunedAt: e.tunedAt, cached: true });
    }
    return out;
  }

  async tuneMatmuls(request: TuneRequest, onEvent?: (e: BenchEvent) => void): Promise<TunedPlan[]> {
    if (this.running) throw new ModelError('bad-options', 'A benchmark is running already: wait for it, or cancel it.');
    const products = await this.products(request);
    await this.deps.beforeGpuWork();
    this.running = true;
    this.cancelled = false;
    const emit = (e: BenchEvent) => onEvent?.(e);
    try {
      const ctx = await this.deps.gpu();
      const out: TunedPlan[] = [];
      for (const [i, p] of products.entries()) {
        if (this.cancelled) break;
        emit({ kind: 'progress', phase: 'tune', done: i, total: products.length, message: `Tuning the ${p.pass} product of ${p.layer}` });
        const e = (await autotune(ctx, [p.shape], this.tuneCache)).get(matmulShapeKey(p.shape))!;
        const plan: TunedPlan = { layer: p.layer, pass: p.pass, call: p.call, shape: matmulShapeKey(p.shape), label: e.label, ns: e.ns, timing: e.timing, candidates: e.candidates.length, tunedAt: e.tunedAt, cached: e.cached };
        out.push(plan);
        emit({ kind: 'plan', result: plan });
      }
      return out;
    } finally {
      this.running = false;
    }
  }

  async cancelBenchmark(): Promise<void> {
    this.cancelled = true;
    this.control?.stop();
  }

  async runBenchmark(request: BenchRequest, onEvent?: (e: BenchEvent) => void): Promise<BenchReport> {
    if (this.running) throw new ModelError('bad-options', 'A benchmark is running already: wait for it, or cancel it.');
    const tokens = Math.max(1, Math.floor(request.tokens ?? 256));
    const target = Math.min(5, Math.max(0.02, request.target ?? 0.25));
    const revision = request.revision ?? DEFAULT_REVISION;
    const entry = await this.deps.models.getModel(request.repo, revision);
    if (!entry?.complete) throw new ModelError('missing-file', `${request.repo} is not on this device: download it on the Model screen first (or pick the built-in demo model).`);
    await this.deps.beforeGpuWork();
    this.running = true;
    this.cancelled = false;
    const emit = (e: BenchEvent) => onEvent?.(e);
    const source = storeSource(this.deps.models, request.repo, revision);
    const ctx = await this.deps.gpu();
    const report: BenchReport = { adapter: ctx.adapter.description || ctx.adapter.architecture || ctx.adapter.vendor, repo: request.repo, tokens, matmuls: [], cancelled: false };
    try {
      const cfg = parseConfig(await readJson(source, 'config.json', true));
      const shapes = linearShapes(cfg);
      const total = 1 + shapes.length * 3 + (request.noTrain ? 0 : 1);
      let done = 0;

      emit({ kind: 'progress', phase: 'peak', done, total, message: 'Measuring the peak: an FMA-throughput kernel' });
      report.peak = await this.peak(ctx, target);
      emit({ kind: 'peak', result: report.peak });
      done++;

      for (const s of shapes) {
        for (const pass of ['forward', 'dX', 'dW'] as const) {
          if (this.cancelled) break;
          emit({ kind: 'progress', phase: 'matmul', done, total, message: `Matmul ${pass} of ${s.layer}` });
          const r = await this.matmul(ctx, s.layer, pass, tokens, s.inF, s.outF, target);
          report.matmuls.push(r);
          emit({ kind: 'matmul', result: r });
          done++;
        }
      }
      if (report.matmuls.length) {
        const f = report.matmuls.reduce((n, m) => n + m.flops * m.runs, 0);
        const t = report.matmuls.reduce((n, m) => n + m.seconds, 0);
        report.matmulGflops = f / t / 1e9;
      }

      if (!request.noTrain && !this.cancelled) {
        emit({ kind: 'progress', phase: 'train', done, total, message: `Training steps on ${request.repo}` });
        const r = await this.train(ctx, request, revision);
        if (r) {
          report.train = r;
          emit({ kind: 'train', result: r });
        }
        done++;
      }
      report.cancelled = this.cancelled;
      return report;
    } finally {
      this.running = false;
      this.control = undefined;
    }
  }

  /** Times `record` (which records GPU work): a warm-up, one run, then as many as fill `target` seconds. */
  private async time(ctx: GpuContext, record: () => void, target: number): Promise<{ runs: number; seconds: number }> {
    record();
    await ctx.sync();
    let t0 = performance.now();
    record();
    await ctx.sync();
    const one = (performance.now() - t0) / 1000;
    if (one >= target) return { runs: 1, seconds: one };
    // One run's time includes a submit and a wait, so the first estimate of how many runs fill `target` is low:
    // scale it up (a few rounds at most) until the runs fill at least half of it.
    let runs = Math.min(MAX_RUNS, Math.max(2, Math.ceil(target / Math.max(one, 1e-5))));
    for (let round = 0; ; round++) {
      t0 = performance.now();
      for (let i = 0; i < runs; i++) record();
      await ctx.sync();
      const seconds = (performance.now() - t0) / 1000;
      if (seconds >= target / 2 || runs >= MAX_RUNS || round >= 3) return { runs, seconds };
      runs = Math.min(MAX_RUNS, Math.ceil((runs * target) / Math.max(seconds, 1e-5)));
    }
  }

  private async peak(ctx: GpuContext, target: number): Promise<PeakResult> {
    const threads = FMA_PEAK_THREADS;
    const out = ctx.empty([threads]);
    try {
      const iters = await calibrateFmaIters(ctx, out);
      const record = () => fmaPeak(ctx, out, iters, 0.9999, 1e-4);
      const { runs, seconds } = await this.time(ctx, record, target);
      const flops = threads * iters * FMA_CHAINS * 4 * 2;
      return { flops, runs, seconds, gflops: gflopsOf(flops, runs, seconds), threads, iters, chains: FMA_CHAINS };
    } finally {
      out.release();
    }
  }

  private async matmul(ctx: GpuContext, layer: string, pass: 'forward' | 'dX' | 'dW', M: number, inF: number, outF: number, target: number): Promise<MatmulResult> {
    // forward: x [M, in] · W [out, in]ᵀ → [M, out]; dX: dy [M, out] · W [out, in] → [M, in]; dW: dyᵀ [out, M] · x [M, in] → [out, in]
    const call = pass === 'forward' ? 'NT' : pass === 'dX' ? 'NN' : 'TN';
    const [aShape, bShape, oShape] =
      pass === 'forward' ? [[M, inF], [outF, inF], [M, outF]] : pass === 'dX' ? [[M, outF], [outF, inF], [M, inF]] : [[M, outF], [M, inF], [outF, inF]];
    const [pM, pN, pK] = pass === 'forward' ? [M, outF, inF] : pass === 'dX' ? [M, inF, outF] : [outF, inF, M];
    const aData = values(aShape[0]! * aShape[1]!, 1 + pM);
    const bData = values(bShape[0]! * bShape[1]!, 7 + pN);
    const a = ctx.upload(aShape, aData);
    const b = ctx.upload(bShape, bData);
    const out = ctx.empty(oShape);
    try {
      const fn = call === 'NT' ? matmulNT : call === 'NN' ? matmulNN : matmulTN;
      const record = () => fn(ctx, out, a, b);
      const { runs, seconds } = await this.time(ctx, record, target);
      const got = await ctx.readF32(out);
      const maxError = checkProduct(call, aData, bData, got, pM, pN, pK);
      const plan = matmulPlan(ctx, { transA: call === 'TN', transB: call === 'NT', M: pM, N: pN, K: pK });
      const flops = 2 * pM * pN * pK;
      return { layer, pass, call, M: pM, N: pN, K: pK, kernel: plan.kernel, flops, runs, seconds, gflops: gflopsOf(flops, runs, seconds), maxError };
    } finally {
      a.release();
      b.release();
      out.release();
    }
  }

  private async train(ctx: GpuContext, request: BenchRequest, revision: string): Promise<TrainBenchResult | undefined> {
    const batch = Math.max(1, Math.floor(request.batch ?? 2));
    const seqLen = Math.max(2, Math.floor(request.seqLen ?? 64));
    const steps = Math.max(2, Math.floor(request.steps ?? 4));
    const lm = await loadModel(ctx, storeSource(this.deps.models, request.repo, revision), { maxPositions: seqLen });
    let trainer: Trainer | undefined;
    try {
      const { settings } = parseSettingsWithNotes(
        {
          model_name_or_path: request.repo,
          dataset: 'synthetic',
          stage: 'sft',
          finetuning_type: 'lora',
          lora_rank: 8,
          lora_alpha: 16,
          lora_target: 'all',
          learning_rate: 1e-4,
          lr_scheduler_type: 'constant',
          per_device_train_batch_size: batch,
          gradient_accumulation_steps: 1,
          max_steps: steps,
          cutoff_len: seqLen,
          save_strategy: 'no',
          logging_steps: 1,
          seed: 1,
        },
        'the benchmark',
      );
      const vocab = lm.config.vocabSize;
      const ids = values(batch * steps * seqLen, 99);
      const train = Array.from({ length: batch * steps }, (_, e) => {
        const inputIds = Array.from(ids.subarray(e * seqLen, (e + 1) * seqLen), (v) => Math.floor(((v + 1) / 2) * vocab) % vocab);
        return { inputIds, labels: inputIds.slice() };
      });
      trainer = Trainer.create({ model: lm.model, settings, train, val: [], padTokenId: lm.tokenizer.padTokenId ?? 0 });
      const control = new TrainControl();
      this.control = control;
      if (this.cancelled) return undefined;
      const records = (await trainer.run({ control })).metrics;
      const timed = records.slice(1).filter((r) => !r.skipped && r.tokens_per_second > 0);
      if (timed.length === 0) return undefined;
      const tokens = timed.reduce((n, r) => n + r.input_tokens, 0);
      const seconds = timed.reduce((n, r) => n + r.input_tokens / r.tokens_per_second, 0);
      return { repo: request.repo, method: 'LoRA r 8, alpha 16, every linear layer', batch, seqLen, steps: timed.length, tokens, seconds, tokensPerSecond: tokens / seconds };
    } finally {
      trainer?.dispose();
      lm.dispose();
    }
  }
}

/**
 * Four outputs of a product against float64 dot products: max |gpu − ref| / (1 + |ref|). Row-major data:
 * NT a [M, K], b [N, K]; NN a [M, K], b [K, N]; TN a [K, M], b [K, N].
 */
export function checkProduct(call: 'NT' | 'NN' | 'TN', a: Float32Array, b: Float32Array, out: Float32Array, M: number, N: number, K: number): number {
  const picks: [number, number][] = [[0, 0], [M - 1, N - 1], [Math.floor(M / 2), Math.floor(N / 3)], [Math.floor(M / 3), N - 1]];
  let worst = 0;
  for (const [i, j] of picks) {
    let ref = 0;
    for (let k = 0; k < K; k++) {
      const x = call === 'TN' ? a[k * M + i]! : a[i * K + k]!;
      const y = call === 'NT' ? b[j * K + k]! : b[k * N + j]!;
      ref += x * y;
    }
    worst = Math.max(worst, Math.abs(out[i * N + j]! - ref) / (1 + Math.abs(ref)));
  }
  return worst;
}

export function benchApi(
  service: BenchService,
  withCallback: <A extends unknown[], T>(fn: ((...args: A) => unknown) | undefined, run: (call?: (...args: A) => void) => Promise<T>) => Promise<T>,
): BenchApi {
  return {
    runBenchmark: (request, onEvent) => withCallback(onEvent, (call) => service.runBenchmark(request, call)),
    cancelBenchmark: () => service.cancelBenchmark(),
    tuneMatmuls: (request, onEvent) => withCallback(onEvent, (call) => service.tuneMatmuls(request, call)),
    tunedMatmuls: (request) => service.tunedMatmuls(request),
  };
}
