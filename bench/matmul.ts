// Matmul benchmark on the linear layers of real models: Graft against TensorFlow.js's WebGPU backend on the same
// device (in two layouts) and TF.js's WebAssembly backend on the CPU, with time-weighted totals over a step.
//
//   npx tsx bench/matmul.ts [--quick] [--vocab-slice N | --full-vocab] [--models smollm2,qwen2.5,qwen3,gpt2]
//                           [--no-lora] [--no-tfjs] [--no-wasm] [--tokens 256] [--target 0.25]
//
// Shapes: SmolLM2-135M, Qwen2.5-0.5B, Qwen3-0.6B and GPT-2 at M = 256 tokens; for every linear layer the three
// products of a training step, in the layout Graft's model code calls them (src/model/linear.ts, vocab.ts):
//   [out, in] weights (Llama, Qwen):  forward y = x·Wᵀ   matmulNT   M=T,   N=out, K=in
//                                     dX = dy·W          matmulNN   M=T,   N=in,  K=out
//                                     dW = dyᵀ·x         matmulTN   M=out, N=in,  K=T
//   [in, out] weights (GPT-2 Conv1D): forward x·W (NN), dX dy·Wᵀ (NT), dW xᵀ·dy (TN, M=in, N=out)
// Layers with equal shapes (q/o, k/v, gate/up) are measured once and counted for each. The lm head is the
// [vocab, hidden] product; `--quick` skips it. On a CPU adapter (SwiftShader) a full vocabulary takes minutes
// per product for TF.js, so by default the lm head runs on the first 2048 vocabulary rows there (GFLOP/s of a
// slice is that of the whole: the same kernel over fewer tiles, or a shorter K for dX; the step totals scale
// its time to the whole vocabulary) and on the full vocabulary elsewhere; `--vocab-slice N` and `--full-vocab`
// choose. LoRA's rank-16 products (x·Aᵀ, xa·Bᵀ, dy·B, t·A, dA, dB) are measured for every distinct projection
// shape (`--no-lora` skips them).
//
// The peers, each on the same operand values:
//   tfjs-webgpu NT  tf.matMul(a, b, transposeA, transposeB) in the layout Graft calls (forward with b
//                   transposed, as the weights are stored [out, in]) on the very same GPU buffers (zero-copy
//                   tensors over Graft's buffers) through TF.js's WebGPU backend on Graft's own GPUDevice
//                   (bench/tfjs.ts). A transposed b keeps TF.js off its vec4 program.
//   tfjs-webgpu NN  the same product with both operands laid out plainly, a [M, K] and b [K, N], no transposes:
//                   TF.js's vec4 program wherever K and N are multiples of 4 (its best case; the weights would
//                   have to be stored [in, out] and the activations transposed for the backward).
//   tfjs-wasm NT/NN TF.js's WebAssembly backend (XNNPACK, SIMD; on the CPU, whatever the adapter) in the same
//                   two layouts.
// Each product: a warm-up (Graft: the product itself; TF.js WebGPU: the same product with K cut to
// 64 + K mod 64, which compiles the same program: TF.js keys its programs by layout and tile fit, not by size;
// wasm: the product), then a timed run; when that took less than --target seconds, as many runs as fill it,
// recorded back to back and waited for together; Graft's runs are repeated after the peers', and each
// library's best time counts (the machine may be busy with other work; best-of treats all alike). Graft's GPU
// time of one run from timestamp queries is recorded beside (graft_gpu_ms) where the adapter has them. Four
// outputs of each library are checked against float64 dot products; a wrong result is shown as WRONG in its
// row and kept in that library's step total, which says how many of its products were wrong. (On SwiftShader,
// TF.js 4.22's split-K program, which it picks for few 32×32 output tiles and K ≥ 2000, e.g. LoRA's x·Aᵀ,
// returns wrong sums; plain tf.tensor inputs show the same, so it is not the zero-copy wrapping.)
//
// Figures (bench/figures.ts): MFU = GFLOP/s ÷ the FMA peak measured in the same run (bench/peak.ts);
// matmul efficiency = GFLOP/s ÷ the best Graft matmul of the run. The summary per model is one training
// step's products at the model's real depth, summed as time (`stepTotals`), and Graft's speed-up over each peer.
import { pathToFileURL } from 'node:url';
import type { GpuContext } from '../src/engine/context';
import type { Tensor } from '../src/engine/tensor';
import { seededValues as fill } from '../src/engine/seeded';
import type { TfjsOnDevice, TfjsWasm } from './tfjs';
import { matmulEfficiency, mfu, pct, speedup, stepCount, stepTotals, targetVerdict, type PeerTime, type StepTotal, type WeightedProduct } from './figures';

await import(new URL('./raw-loader.mjs', import.meta.url).href);
const { matmulNN, matmulNT, matmulTN, matmulPlan, planLabel: enginePlanLabel, isSwiftShader } = await import('../src/engine/ops/matmul');

export type Call = 'NT' | 'NN' | 'TN';
export type Pass = 'forward' | 'dX' | 'dW';

export interface ModelSpec {
  name: string;
  /** Decoder layers of the real model (a step's products count this many times). */
  layers: number;
  hidden: number;
  vocab: number;
  /** true: weights stored [in, out] (GPT-2 Conv1D); false: [out, in]. */
  conv1d: boolean;
  linears: { name: string; in: number; out: number }[];
}

export const MODELS: ModelSpec[] = [
  {
    name: 'SmolLM2-135M',
    layers: 30,
    hidden: 576,
    vocab: 49152,
    conv1d: false,
    linears: [
      { name: 'q_proj', in: 576, out: 576 }, // 9 heads × 64
      { name: 'k_proj', in: 576, out: 192 }, // 3 kv heads × 64
      { name: 'v_proj', in: 576, out: 192 },
      { name: 'o_proj', in: 576, out: 576 },
      { name: 'gate_proj', in: 576, out: 1536 },
      { name: 'up_proj', in: 576, out: 1536 },
      { name: 'down_proj', in: 1536, out: 576 },
    ],
  },
  {
    name: 'Qwen2.5-0.5B',
    layers: 24,
    hidden: 896,
    vocab: 151936,
    conv1d: false,
    linears: [
      { name: 'q_proj', in: 896, out: 896 }, // 14 × 64
      { name: 'k_proj', in: 896, out: 128 }, // 2 × 64
      { name: 'v_proj', in: 896, out: 128 },
      { name: 'o_proj', in: 896, out: 896 },
      { name: 'gate_proj', in: 896, out: 4864 },
      { name: 'up_proj', in: 896, out: 4864 },
      { name: 'down_proj', in: 4864, out: 896 },
    ],
  },
  {
    name: 'Qwen3-0.6B',
    layers: 28,
    hidden: 1024,
    vocab: 151936,
    conv1d: false,
    linears: [
      { name: 'q_proj', in: 1024, out: 2048 }, // 16 × 128
      { name: 'k_proj', in: 1024, out: 1024 }, // 8 × 128
      { name: 'v_proj', in: 1024, out: 1024 },
      { name: 'o_proj', in: 2048, out: 1024 },
      { name: 'gate_proj', in: 1024, out: 3072 },
      { name: 'up_proj', in: 1024, out: 3072 },
      { name: 'down_proj', in: 3072, out: 1024 },
    ],
  },
  {
    name: 'GPT-2',
    layers: 12,
    hidden: 768,
    vocab: 50257,
    conv1d: true,
    linears: [
      { name: 'attn.c_attn', in: 768, out: 2304 },
      { name: 'attn.c_proj', in: 768, out: 768 },
      { name: 'mlp.c_fc', in: 768, out: 3072 },
      { name: 'mlp.c_proj', in: 3072, out: 768 },
    ],
  },
];


/** One product to measure. Operands: a [M, K] (TN: [K, M]), b [N, K] (NT) or [K, N]. */
export interface MatmulCase {
  model: string;
  layer: string;
  pass: Pass;
  call: Call;
  M: number;
  N: number;
  K: number;
  /** How many times one training step of the real model runs this product (figures.ts `stepCount`). */
  count: number;
  /** For the lm head: the vocabulary rows measured, and the model's vocabulary. */
  vocabRows?: number;
  vocab?: number;
}

/** The peers a product is compared with (see the header). */
export const PEERS = ['tfjs-webgpu NT', 'tfjs-webgpu NN', 'tfjs-wasm NT', 'tfjs-wasm NN'] as const;
export type PeerName = (typeof PEERS)[number];

export interface PeerResult {
  gflops: number;
  ms: number;
  reps: number;
  check: string;
}

export interface MatmulBenchRow {
  model: string;
  /** Layer and pass, e.g. "gate_proj/up_proj dW". */
  op: string;
  layer: string;
  pass: Pass;
  /** Which Graft call (and TF.js NT transposes) ran it. */
  call: Call;
  m: number;
  k: number;
  n: number;
  /** Times one training step runs it (layers × projections sharing the shape; the lm head scaled to the vocabulary). */
  count: number;
  graft_gflops: number;
  graft_ms: number;
  /** GPU time of one run from timestamp queries (null without timestamp-query). */
  graft_gpu_ms: number | null;
  graft_reps: number;
  /** graft_gflops ÷ the FMA peak of the run (null when no peak was measured). */
  graft_mfu: number | null;
  /** graft_gflops ÷ the best Graft matmul of the run (filled in when every row is measured). */
  graft_matmul_efficiency: number | null;
  graft_check: string;
  peers: Partial<Record<PeerName, PeerResult>>;
  /** The tfjs-webgpu NT figures under their former names. */
  tfjs_gflops: number | null;
  tfjs_ms: number | null;
  tfjs_reps: number | null;
  /** graft_gflops / tfjs_gflops (NT). */
  ratio: number | null;
  /** Graft's kernel, workgroup tile and split-K for this shape. */
  kernel: string;
  /** 'ok', or which library was WRONG. */
  check: string;
  vocab_rows?: number;
  vocab?: number;
}

export interface MatmulBenchOptions {
  tokens?: number;
  /** Skip the lm head. */
  quick?: boolean;
  /** lm head vocabulary rows (default: all, or 2048 on a CPU adapter); Infinity for all. */
  vocabSlice?: number;
  /** Model names (case-insensitive prefixes); default all. */
  models?: string[];
  lora?: boolean;
  loraRank?: number;
  /** Seconds one measurement should take at least when a single run is shorter (default 0.25). */
  targetSeconds?: number;
  maxReps?: number;
  /** The FMA peak of the run, GFLOP/s (MFU per row). */
  peakGflops?: number;
  log?: (line: string) => void;
}

const callFor = (conv1d: boolean, pass: Pass): Call =>
  pass === 'dW' ? 'TN' : (pass === 'forward') !== conv1d ? 'NT' : 'NN';

/** The products of a linear layer's training step (see the header). */
function linearCases(model: string, layer: string, inF: number, outF: number, T: number, conv1d: boolean, count: number): MatmulCase[] {
  return [
    { model, layer, pass: 'forward', call: callFor(conv1d, 'forward'), M: T, N: outF, K: inF, count },
    { model, layer, pass: 'dX', call: callFor(conv1d, 'dX'), M: T, N: inF, K: outF, count },
    conv1d
      ? { model, layer, pass: 'dW', call: 'TN', M: inF, N: outF, K: T, count }
      : { model, layer, pass: 'dW', call: 'TN', M: outF, N: inF, K: T, count },
  ];
}

/** Every product of the benchmark, layers with equal shapes merged ("q_proj/o_proj"), each with its per-step count. */
export function matmulCases(opts: MatmulBenchOptions & { vocabRows?: (m: ModelSpec) => number } = {}): MatmulCase[] {
  const T = opts.tokens ?? 256;
  const r = opts.loraRank ?? 16;
  // Case and punctuation aside ('gpt2' names GPT-2, 'qwen2.5' Qwen2.5-0.5B).
  const norm = (x: string) => x.toLowerCase().replace(/[^a-z0-9]/g, '');
  const wanted = (m: ModelSpec) => !opts.models?.length || opts.models.some((w) => norm(m.name).startsWith(norm(w)));
  const out: MatmulCase[] = [];
  for (const m of MODELS.filter(wanted)) {
    const groups = new Map<string, { names: string[]; in: number; out: number }>();
    for (const l of m.linears) {
      const key = `${l.in}x${l.out}`;
      const g = groups.get(key);
      if (g) g.names.push(l.name);
      else groups.set(key, { names: [l.name], in: l.in, out: l.out });
    }
    for (const g of groups.values()) {
      const layer = g.names.join('/');
      out.push(...linearCases(m.name, layer, g.in, g.out, T, m.conv1d, stepCount(layer, m.layers)));
    }
    if (!opts.quick) {
      const V = Math.min(m.vocab, opts.vocabRows?.(m) ?? m.vocab);
      const head = V < m.vocab ? `lm_head[${V} of ${m.vocab}]` : 'lm_head';
      // The lm head is [vocab, hidden] (GPT-2's is the tied wte): the [out, in] layout.
      for (const c of linearCases(m.name, head, m.hidden, V, T, false, stepCount(head, m.layers, V, m.vocab))) out.push({ ...c, vocabRows: V, vocab: m.vocab });
    }
    if (opts.lora !== false) {
      // LoRA on every projection (Graft's order, src/engine/ops/lora.ts): A [r, in], B [out, r].
      for (const g of groups.values()) {
        const [inF, outF] = [g.in, g.out];
        const l = `${g.names.join('/')} LoRA r${r}`;
        const count = stepCount(l, m.layers);
        out.push(
          { model: m.name, layer: `${l} x·Aᵀ`, pass: 'forward', call: 'NT', M: T, N: r, K: inF, count },
          { model: m.name, layer: `${l} xa·Bᵀ`, pass: 'forward', call: 'NT', M: T, N: outF, K: r, count },
          { model: m.name, layer: `${l} dy·B`, pass: 'dX', call: 'NN', M: T, N: r, K: outF, count },
          { model: m.name, layer: `${l} t·A`, pass: 'dX', call: 'NN', M: T, N: inF, K: r, count },
          { model: m.name, layer: `${l} dA=tᵀx`, pass: 'dW', call: 'TN', M: r, N: inF, K: T, count },
          { model: m.name, layer: `${l} dB=dyᵀxa`, pass: 'dW', call: 'TN', M: outF, N: r, K: T, count },
        );
      }
    }
  }
  return out;
}

const aShapeOf = (c: { call: Call; M: number; K: number }, K = c.K) => (c.call === 'TN' ? [K, c.M] : [c.M, K]);
const bShapeOf = (c: { call: Call; N: number; K: number }, K = c.K) => (c.call === 'NT' ? [c.N, K] : [K, c.N]);

/** A(m, k) and B(k, n) of the stored operands. */
function elementA(c: MatmulCase, a: Float32Array, m: number, k: number): number {
  return c.call === 'TN' ? a[k * c.M + m]! : a[m * c.K + k]!;
}
function elementB(c: MatmulCase, b: Float32Array, k: number, n: number): number {
  return c.call === 'NT' ? b[n * c.K + k]! : b[k * c.N + n]!;
}

/** The operands laid out plainly: A [M, K], B [K, N] (the NN peers'). */
function plainOperands(c: MatmulCase, a: Float32Array, b: Float32Array): { a: Float32Array; b: Float32Array } {
  if (c.call === 'NN') return { a, b };
  const pa = c.call === 'TN' ? new Float32Array(c.M * c.K) : a;
  if (c.call === 'TN') for (let k = 0; k < c.K; k++) for (let m = 0; m < c.M; m++) pa[m * c.K + k] = a[k * c.M + m]!;
  const pb = c.call === 'NT' ? new Float32Array(c.K * c.N) : b;
  if (c.call === 'NT') for (let n = 0; n < c.N; n++) for (let k = 0; k < c.K; k++) pb[k * c.N + n] = b[n * c.K + k]!;
  return { a: pa, b: pb };
}

/** Compares four outputs with float64 dot products; 'ok' or what is wrong. */
function spotCheck(c: MatmulCase, got: Float32Array, a: Float32Array, b: Float32Array): string {
  const picks: [number, number][] = [[0, 0], [c.M - 1, c.N - 1], [c.M >> 1, c.N >> 1], [3 % c.M, (c.N * 7) >> 3]];
  let worst = 0;
  for (const [m, n] of picks) {
    let s = 0;
    let mag = 0;
    for (let k = 0; k < c.K; k++) {
      const p = elementA(c, a, m, k) * elementB(c, b, k, n);
      s += p;
      mag += Math.abs(p);
    }
    worst = Math.max(worst, Math.abs(got[m * c.N + n]! - s) / (mag * 1e-5 + 1e-6));
  }
  return worst <= 1 ? 'ok' : `WRONG (${worst.toFixed(1)}× tolerance)`;
}

function graftCall(ctx: GpuContext, c: MatmulCase, out: Tensor, a: Tensor, b: Tensor): void {
  if (c.call === 'NT') matmulNT(ctx, out, a, b);
  else if (c.call === 'NN') matmulNN(ctx, out, a, b);
  else matmulTN(ctx, out, a, b);
}

async function timeGraft(ctx: GpuContext, run: () => void, reps: number): Promise<number> {
  await ctx.sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) run();
  await ctx.sync();
  return (performance.now() - t0) / 1000;
}

/** One timed run, then (when short) as many as fill `target`: the best seconds per run, and the count. */
async function timeLoop(run: () => void, sync: () => Promise<void>, target: number, maxReps: number): Promise<{ seconds: number; reps: number }> {
  const go = async (n: number) => {
    await sync();
    const t0 = performance.now();
    for (let k = 0; k < n; k++) run();
    await sync();
    return (performance.now() - t0) / 1000;
  };
  const once = await go(1);
  if (once >= target) return { seconds: once, reps: 1 };
  const reps = Math.min(maxReps, Math.max(2, Math.ceil(target / once)));
  return { seconds: Math.min(once, (await go(reps)) / reps), reps };
}

export function planLabel(ctx: GpuContext, c: { call: Call; M: number; N: number; K: number }): string {
  return enginePlanLabel(matmulPlan(ctx, { transA: c.call === 'TN', transB: c.call === 'NT', M: c.M, N: c.N, K: c.K }));
}

export interface MatmulPeers {
  webgpu?: TfjsOnDevice;
  wasm?: TfjsWasm;
}

/** Runs every case; a peer is skipped when it is not given. */
export async function runMatmulBench(ctx: GpuContext, peers: MatmulPeers | TfjsOnDevice | undefined, opts: MatmulBenchOptions = {}): Promise<MatmulBenchRow[]> {
  const { webgpu, wasm } = peers && 'backend' in peers ? { webgpu: peers, wasm: undefined } : (peers ?? {});
  const log = opts.log ?? (() => {});
  const target = opts.targetSeconds ?? 0.25;
  const maxReps = opts.maxReps ?? 20;
  const cpu = isSwiftShader(ctx);
  const slice = opts.vocabSlice ?? (cpu ? 2048 : Infinity);
  const cases = matmulCases({ ...opts, vocabRows: () => slice });
  const rows: MatmulBenchRow[] = [];
  for (const [i, c] of cases.entries()) {
    const flop = 2 * c.M * c.N * c.K;
    const seed = c.M * 131 + c.N * 7 + c.K;
    const aData = fill(c.M * c.K, seed);
    const bData = fill(c.N * c.K, seed + 1);
    const a = ctx.upload(aShapeOf(c), aData);
    const b = ctx.upload(bShapeOf(c), bData);
    const out = ctx.empty([c.M, c.N]);
    const plainCase: MatmulCase = { ...c, call: 'NN' };
    const plain = plainOperands(c, aData, bData);

    // Graft: warm-up (compiles), one timed run, then enough to fill the target time; measured again after the
    // peers and the best kept (the machine may be shared: best-of for every library).
    const run = () => graftCall(ctx, c, out, a, b);
    run();
    await ctx.sync();
    const g = await timeLoop(run, () => ctx.sync(), target, maxReps);
    let seconds = g.seconds;
    const reps = g.reps;
    const graftCheck = spotCheck(c, await ctx.readF32(out), aData, bData);
    let gpuMs: number | null = null;
    if (ctx.hasTimestamps) {
      ctx.startProfile();
      run();
      gpuMs = (await ctx.stopProfile()).reduce((s, t) => s + t.ns, 0) / 1e6;
    }

    const peerResults: Partial<Record<PeerName, PeerResult>> = {};
    const result = (s: { seconds: number; reps: number }, check: string): PeerResult => ({ gflops: flop / s.seconds / 1e9, ms: s.seconds * 1000, reps: s.reps, check });
    if (webgpu) {
      const tf = webgpu.tf;
      await tf.setBackend(webgpu.name);
      const sync = async () => {
        webgpu.flush();
        await ctx.sync();
        await ctx.device.queue.onSubmittedWorkDone();
      };
      const wrap = (t: Tensor, shape: number[]) =>
        tf.tensor({ buffer: t.buffer, zeroCopy: true } as unknown as Parameters<typeof tf.tensor>[0], shape, 'float32');
      for (const layout of ['NT', 'NN'] as const) {
        const cc = layout === 'NT' ? c : plainCase;
        const pa = layout === 'NT' ? a : ctx.upload(aShapeOf(plainCase), plain.a);
        const pb = layout === 'NT' ? b : ctx.upload(bShapeOf(plainCase), plain.b);
        const tA = cc.call === 'TN';
        const tB = cc.call === 'NT';
        // Warm-up on the same buffers with a shorter K: the same program (see the header). With few 32×32
        // output tiles TF.js picks its program by K too (split-K from K = 2000), so those warm up at full K.
        const fewTiles = Math.ceil(c.M / 32) * Math.ceil(c.N / 32) <= 16;
        const Kw = c.K > 128 && !fewTiles ? 64 + (c.K % 64) : c.K;
        const wa = wrap(pa, aShapeOf(cc, Kw));
        const wb = wrap(pb, bShapeOf(cc, Kw));
        const w = tf.matMul(wa, wb, tA, tB);
        await w.data();
        for (const t of [w, wa, wb]) t.dispose();
        const ta = wrap(pa, aShapeOf(cc));
        const tb = wrap(pb, bShapeOf(cc));
        const s = await timeLoop(() => tf.matMul(ta, tb, tA, tB).dispose(), sync, target, maxReps);
        const r = tf.matMul(ta, tb, tA, tB);
        const got = (await r.data()) as Float32Array;
        r.dispose();
        ta.dispose();
        tb.dispose();
        await ctx.checkErrors();
        peerResults[`tfjs-webgpu ${layout}`] = result(s, spotCheck(cc, got, layout === 'NT' ? aData : plain.a, layout === 'NT' ? bData : plain.b));
        if (layout === 'NN') {
          pa.release();
          pb.release();
        }
      }
    }
    if (wasm) {
      const tf = wasm.tf;
      await tf.setBackend(wasm.name);
      for (const layout of ['NT', 'NN'] as const) {
        const cc = layout === 'NT' ? c : plainCase;
        const [da, db] = layout === 'NT' ? [aData, bData] : [plain.a, plain.b];
        const ta = tf.tensor(da, aShapeOf(cc), 'float32');
        const tb = tf.tensor(db, bShapeOf(cc), 'float32');
        const tA = cc.call === 'TN';
        const tB = cc.call === 'NT';
        const mm = () => tf.matMul(ta, tb, tA, tB);
        const w = mm();
        w.dataSync();
        w.dispose();
        // The wasm backend computes each op synchronously as it is called.
        const s = await timeLoop(() => mm().dispose(), async () => {}, target, maxReps);
        const r = mm();
        const got = r.dataSync() as Float32Array;
        r.dispose();
        ta.dispose();
        tb.dispose();
        peerResults[`tfjs-wasm ${layout}`] = result(s, spotCheck(cc, got, da, db));
      }
    }
    if (webgpu) await webgpu.tf.setBackend(webgpu.name);
    if (webgpu || wasm) seconds = Math.min(seconds, (await timeGraft(ctx, run, reps)) / reps);
    for (const t of [a, b, out]) t.release();
    ctx.trimPool();

    const graftGflops = flop / seconds / 1e9;
    const nt = peerResults['tfjs-webgpu NT'];
    const wrong = [graftCheck === 'ok' ? '' : `graft ${graftCheck}`, ...Object.entries(peerResults).map(([k, v]) => (v.check === 'ok' ? '' : `${k} ${v.check}`))].filter(Boolean);
    const row: MatmulBenchRow = {
      model: c.model,
      op: `${c.layer} ${c.pass}`,
      layer: c.layer,
      pass: c.pass,
      call: c.call,
      m: c.M,
      k: c.K,
      n: c.N,
      count: c.count,
      graft_gflops: graftGflops,
      graft_ms: seconds * 1000,
      graft_gpu_ms: gpuMs,
      graft_reps: reps,
      graft_mfu: opts.peakGflops ? mfu(graftGflops, opts.peakGflops) : null,
      graft_matmul_efficiency: null,
      graft_check: graftCheck,
      peers: peerResults,
      tfjs_gflops: nt?.gflops ?? null,
      tfjs_ms: nt?.ms ?? null,
      tfjs_reps: nt?.reps ?? null,
      ratio: nt ? graftGflops / nt.gflops : null,
      kernel: planLabel(ctx, c),
      check: wrong.length ? wrong.join('; ') : 'ok',
      ...(c.vocabRows !== undefined ? { vocab_rows: c.vocabRows, vocab: c.vocab } : {}),
    };
    rows.push(row);
    log(formatRow(row, i + 1, cases.length));
  }
  const best = bestGraft(rows);
  for (const r of rows) r.graft_matmul_efficiency = best ? matmulEfficiency(r.graft_gflops, best.graft_gflops) : null;
  return rows;
}

/** The fastest Graft product of the run whose result was right. */
export function bestGraft(rows: readonly MatmulBenchRow[]): MatmulBenchRow | undefined {
  const ok = rows.filter((r) => r.graft_check === 'ok');
  return ok.length ? ok.reduce((x, y) => (y.graft_gflops > x.graft_gflops ? y : x)) : undefined;
}

const lpad = (s: string, n: number) => s.padStart(n);
const rpad = (s: string, n: number) => s.padEnd(n);

const PEER_SHORT: Record<PeerName, string> = { 'tfjs-webgpu NT': 'TF.js NT', 'tfjs-webgpu NN': 'TF.js NN', 'tfjs-wasm NT': 'wasm NT', 'tfjs-wasm NN': 'wasm NN' };

export const MATMUL_TABLE_HEADER = `${rpad('model', 13)} ${rpad('layer pass', 40)} ${rpad('call', 4)} ${lpad('M×K×N', 16)} ${lpad('×step', 5)} | ${lpad('Graft GFLOP/s', 13)} ${lpad('MFU', 6)} ${lpad('GPU ms', 8)} | ${PEERS.map((p) => lpad(`${PEER_SHORT[p]} (Graft ×)`, 20)).join(' ')} | ${rpad('Graft kernel', 28)} | check`;

function peerCell(r: MatmulBenchRow, p: PeerName): string {
  const x = r.peers[p];
  if (!x) return lpad('-', 20);
  return lpad(`${x.gflops.toFixed(2)} (${(r.graft_gflops / x.gflops).toFixed(2)}×)${x.check === 'ok' ? '' : '!'}`, 20);
}

export function formatRow(r: MatmulBenchRow, i?: number, n?: number): string {
  const line =
    `${rpad(r.model, 13)} ${rpad(r.op, 40)} ${rpad(r.call, 4)} ${lpad(`${r.m}×${r.k}×${r.n}`, 16)} ${lpad(String(+r.count.toFixed(1)), 5)} | ` +
    `${lpad(r.graft_gflops.toFixed(3), 13)} ${lpad(r.graft_mfu === null ? '-' : pct(r.graft_mfu), 6)} ${lpad(r.graft_gpu_ms === null ? '-' : r.graft_gpu_ms.toFixed(2), 8)} | ` +
    `${PEERS.map((p) => peerCell(r, p)).join(' ')} | ${rpad(r.kernel, 28)} | ${r.check}`;
  return i !== undefined ? `${line}   [${i}/${n}]` : line;
}

export interface StepSummary {
  model: string;
  layers: number;
  tokens: number;
  products: number;
  totals: StepTotal[];
  /** Graft's GPU time (timestamps) over the same products, ms; null without timestamp-query. */
  graft_gpu_ms: number | null;
  /** Graft's step GFLOP/s ÷ the FMA peak, and ÷ the best Graft matmul of the run. */
  graft_mfu: number | null;
  graft_matmul_efficiency: number | null;
  /** peer total ÷ Graft total, per peer (how many times faster Graft is). */
  speedup: Record<string, number | null>;
}

/** One training step's products per model, summed as time (figures.ts `stepTotals`). */
export function stepSummaries(rows: readonly MatmulBenchRow[], peakGflops?: number): StepSummary[] {
  const best = bestGraft(rows);
  const out: StepSummary[] = [];
  for (const m of [...new Set(rows.map((r) => r.model))]) {
    const mine = rows.filter((r) => r.model === m);
    const products: WeightedProduct[] = mine.map((r) => {
      const times: Record<string, PeerTime | undefined> = { Graft: { ms: r.graft_ms, check: r.graft_check } };
      for (const p of PEERS) {
        const x = r.peers[p];
        if (x) times[p] = { ms: x.ms, check: x.check };
      }
      return { count: r.count, flops: 2 * r.m * r.k * r.n, times };
    });
    const totals = stepTotals(products);
    const graft = totals[0]!;
    const gpu = mine.every((r) => r.graft_gpu_ms !== null) ? mine.reduce((s, r) => s + r.count * r.graft_gpu_ms!, 0) : null;
    const speed: Record<string, number | null> = {};
    for (const t of totals.slice(1)) speed[t.library] = speedup(graft, t);
    out.push({
      model: m,
      layers: MODELS.find((x) => x.name === m)?.layers ?? 0,
      tokens: mine[0]!.pass === 'dW' ? mine[0]!.k : mine[0]!.m,
      products: mine.length,
      totals,
      graft_gpu_ms: gpu,
      graft_mfu: peakGflops ? mfu(graft.gflops, peakGflops) : null,
      graft_matmul_efficiency: best ? matmulEfficiency(graft.gflops, best.graft_gflops) : null,
      speedup: speed,
    });
  }
  return out;
}

/** The issue's target: Graft at least this many times faster than TF.js WebGPU over a step's products, both layouts. */
export const TARGET_OVER_TFJS_WEBGPU = 2;

/** The summary lines: per model, each library's step total and Graft's speed-up; the target for SmolLM2-135M. */
export function summarize(rows: readonly MatmulBenchRow[], peakGflops?: number): string[] {
  const lines: string[] = [];
  for (const s of stepSummaries(rows, peakGflops)) {
    lines.push(`${s.model}: one training step's matmul products (${s.products} measured, ${s.layers} layers, M = ${s.tokens}), summed as time (count × ms):`);
    for (const t of s.totals) {
      const head = `  ${rpad(t.library, 15)} ${lpad(t.ms.toFixed(1), 10)} ms  ${lpad(t.gflops.toFixed(2), 8)} GFLOP/s`;
      if (t.library === 'Graft') {
        lines.push(
          `${head}  MFU ${s.graft_mfu === null ? '-' : pct(s.graft_mfu)}, matmul efficiency ${s.graft_matmul_efficiency === null ? '-' : pct(s.graft_matmul_efficiency)}` +
            (s.graft_gpu_ms !== null ? `; GPU time (timestamps) ${s.graft_gpu_ms.toFixed(1)} ms` : '') +
            (t.wrong ? `; ${t.wrong} WRONG result(s)` : ''),
        );
      } else {
        const r = s.speedup[t.library];
        lines.push(`${head}  Graft ${r === null || r === undefined ? '-' : `${r.toFixed(2)}×`} faster` + (t.wrong ? `  (${t.wrong} of its ${t.products} products WRONG, their time kept)` : '') + (t.missing ? ` (${t.missing} products missing)` : ''));
      }
    }
    if (s.model === 'SmolLM2-135M') {
      for (const layout of ['NT', 'NN'] as const) {
        const r = s.speedup[`tfjs-webgpu ${layout}`];
        if (r !== undefined) lines.push(`  target Graft ≥ ${TARGET_OVER_TFJS_WEBGPU}× TF.js WebGPU ${layout}: ${targetVerdict(r, TARGET_OVER_TFJS_WEBGPU)}`);
      }
    }
  }
  return lines;
}

export interface BenchArgs {
  quick: boolean;
  vocabSlice?: number;
  models?: string[];
  lora: boolean;
  tfjs: boolean;
  wasm: boolean;
  tokens: number;
  targetSeconds: number;
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const vs = value('vocab-slice');
  return {
    quick: argv.includes('--quick'),
    vocabSlice: argv.includes('--full-vocab') ? Infinity : vs !== undefined ? Number(vs) : undefined,
    models: value('models')?.split(','),
    lora: !argv.includes('--no-lora'),
    tfjs: !argv.includes('--no-tfjs'),
    wasm: !argv.includes('--no-wasm'),
    tokens: Number(value('tokens') ?? 256),
    targetSeconds: Number(value('target') ?? 0.25),
  };
}

/** The peers the arguments ask for; what could not start is reported through `note` and left out. */
export async function startPeers(ctx: GpuContext, gpu: GPU, adapter: GPUAdapter, args: BenchArgs, note: (peer: string, why: string) => void): Promise<MatmulPeers> {
  const { tfjsOnDevice, tfjsWasm } = await import('./tfjs');
  const peers: MatmulPeers = {};
  if (args.tfjs) {
    try {
      peers.webgpu = await tfjsOnDevice(ctx.device, gpu, adapter.info);
    } catch (e) {
      note('tfjs', `TF.js WebGPU could not run on this device: ${e instanceof Error ? e.message : String(e)}`);
    }
  } else note('tfjs', '--no-tfjs');
  if (args.wasm) {
    try {
      peers.wasm = await tfjsWasm();
      if (peers.webgpu) await peers.webgpu.tf.setBackend(peers.webgpu.name);
    } catch (e) {
      note('wasm', `TF.js wasm could not start: ${e instanceof Error ? e.message : String(e)}`);
    }
  } else note('wasm', '--no-wasm');
  return peers;
}

async function main(): Promise<void> {
  const started = performance.now();
  const args = parseBenchArgs(process.argv.slice(2));
  const { requestNodeAdapter } = await import('../src/engine/adapter-node');
  const { GpuContext: Context } = await import('../src/engine/context');
  const { measureFmaPeak } = await import('./peak');
  const { adapter, gpu, swiftshaderIcd } = await requestNodeAdapter();
  const ctx = await Context.create(adapter, gpu);
  const info = ctx.adapter;
  console.log(`Adapter: ${info.description || '(no description)'} — vendor ${info.vendor}, architecture ${info.architecture}${info.isFallback ? ' (fallback adapter)' : ''}`);
  if (swiftshaderIcd) console.log(`Vulkan driver: SwiftShader (${swiftshaderIcd})`);
  const peak = await measureFmaPeak(ctx);
  console.log(`FMA peak: ${peak.gflops.toFixed(2)} GFLOP/s (${peak.source})`);
  const peers = await startPeers(ctx, gpu, adapter, args, (p, why) => console.log(`${p}: ${why}`));
  if (peers.webgpu) console.log(`TF.js ${peers.webgpu.version}, backend '${peers.webgpu.name}' (WebGPU, on the same GPUDevice)`);
  if (peers.wasm) console.log(`TF.js ${peers.wasm.version}, backend '${peers.wasm.name}' (${peers.wasm.features})`);
  console.log(MATMUL_TABLE_HEADER);
  console.log('-'.repeat(MATMUL_TABLE_HEADER.length));
  const rows = await runMatmulBench(ctx, peers, { ...args, peakGflops: peak.gflops, log: (l) => console.log(l) });
  console.log('');
  for (const l of summarize(rows, peak.gflops)) console.log(l);
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
