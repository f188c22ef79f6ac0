// Matmul benchmark on the linear layers of real models, Graft against TensorFlow.js on the same device.
//
//   npx tsx bench/matmul.ts [--quick] [--vocab-slice N | --full-vocab] [--models smollm2,qwen2.5,qwen3,gpt2]
//                           [--no-lora] [--no-tfjs] [--tokens 256] [--target 0.25]
//
// Shapes: SmolLM2-135M, Qwen2.5-0.5B, Qwen3-0.6B and GPT-2 at M = 256 tokens; for every linear layer the three
// products of a training step, in the layout Graft's model code calls them (src/model/linear.ts, vocab.ts):
//   [out, in] weights (Llama, Qwen):  forward y = x·Wᵀ   matmulNT   M=T,   N=out, K=in
//                                     dX = dy·W          matmulNN   M=T,   N=in,  K=out
//                                     dW = dyᵀ·x         matmulTN   M=out, N=in,  K=T
//   [in, out] weights (GPT-2 Conv1D): forward x·W (NN), dX dy·Wᵀ (NT), dW xᵀ·dy (TN, M=in, N=out)
// Layers with equal shapes (q/o, k/v, gate/up) are measured once. The lm head is the [vocab, hidden] product;
// `--quick` skips it. On a CPU adapter (SwiftShader) a full vocabulary takes minutes per product for TF.js
// (~0.1-0.5 GFLOP/s), so by default the lm head runs on the first 2048 vocabulary rows there (GFLOP/s of a
// slice is that of the whole: the same kernel over fewer tiles, or a shorter K for dX) and on the full
// vocabulary elsewhere; `--vocab-slice N` and `--full-vocab` choose. LoRA's rank-16 products of the largest
// MLP projection (x·Aᵀ, xa·Bᵀ, dy·B, dA, dB, t·A) are measured too (`--no-lora` skips them).
//
// TF.js runs `tf.matMul(a, b, transposeA, transposeB)` on the very same GPU buffers (zero-copy tensors over
// Graft's buffers) through its WebGPU backend on Graft's own GPUDevice (bench/tfjs.ts). Each product: a
// warm-up (Graft: the product itself; TF.js: the same product with K cut to 64 + K mod 64, which compiles the
// same program: TF.js keys its programs by layout and tile fit, not by size), then a timed run; when that
// took less than --target seconds, as many runs as fill it, recorded back to back and waited for together;
// Graft's runs are repeated after TF.js's, and each library's best time counts (the machine may be busy with
// other work; best-of treats both alike). The repetition counts are printed. Four outputs of each library
// are checked against float64 dot products; a wrong result is marked in the check column and left out of the
// summary. (On SwiftShader, TF.js 4.22's split-K program, which it picks for few 32×32 output tiles and
// K ≥ 2000, e.g. LoRA's x·Aᵀ, returns wrong sums; plain tf.tensor inputs show the same, so it is not the
// zero-copy wrapping.)
import { pathToFileURL } from 'node:url';
import type { GpuContext } from '../src/engine/context';
import type { Tensor } from '../src/engine/tensor';
import type { TfjsOnDevice } from './tfjs';

await import(new URL('./raw-loader.mjs', import.meta.url).href);
const { matmulNN, matmulNT, matmulTN, matmulPlan } = await import('../src/engine/ops/matmul');
const { isSwiftShader } = await import('../src/engine/ops/matmul');

export type Call = 'NT' | 'NN' | 'TN';
export type Pass = 'forward' | 'dX' | 'dW';

export interface ModelSpec {
  name: string;
  hidden: number;
  vocab: number;
  /** true: weights stored [in, out] (GPT-2 Conv1D); false: [out, in]. */
  conv1d: boolean;
  linears: { name: string; in: number; out: number }[];
}

export const MODELS: ModelSpec[] = [
  {
    name: 'SmolLM2-135M',
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
  /** For the lm head: the vocabulary rows measured, and the model's vocabulary. */
  vocabRows?: number;
  vocab?: number;
}

export interface MatmulBenchRow {
  model: string;
  /** Layer and pass, e.g. "gate_proj/up_proj dW". */
  op: string;
  layer: string;
  pass: Pass;
  /** Which Graft call (and TF.js transposes) ran it. */
  call: Call;
  m: number;
  k: number;
  n: number;
  graft_gflops: number;
  tfjs_gflops: number | null;
  /** graft_gflops / tfjs_gflops. */
  ratio: number | null;
  graft_ms: number;
  tfjs_ms: number | null;
  graft_reps: number;
  tfjs_reps: number | null;
  /** Graft's kernel, workgroup tile and split-K for this shape. */
  kernel: string;
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
  log?: (line: string) => void;
}

const callFor = (conv1d: boolean, pass: Pass): Call =>
  pass === 'dW' ? 'TN' : (pass === 'forward') !== conv1d ? 'NT' : 'NN';

/** The products of a linear layer's training step (see the header). */
function linearCases(model: string, layer: string, inF: number, outF: number, T: number, conv1d: boolean): MatmulCase[] {
  return [
    { model, layer, pass: 'forward', call: callFor(conv1d, 'forward'), M: T, N: outF, K: inF },
    { model, layer, pass: 'dX', call: callFor(conv1d, 'dX'), M: T, N: inF, K: outF },
    conv1d
      ? { model, layer, pass: 'dW', call: 'TN', M: inF, N: outF, K: T }
      : { model, layer, pass: 'dW', call: 'TN', M: outF, N: inF, K: T },
  ];
}

/** Every product of the benchmark, layers with equal shapes merged ("q_proj/o_proj"). */
export function matmulCases(opts: MatmulBenchOptions & { vocabRows?: (m: ModelSpec) => number } = {}): MatmulCase[] {
  const T = opts.tokens ?? 256;
  const r = opts.loraRank ?? 16;
  const wanted = (m: ModelSpec) =>
    !opts.models?.length || opts.models.some((w) => m.name.toLowerCase().startsWith(w.toLowerCase()));
  const out: MatmulCase[] = [];
  for (const m of MODELS.filter(wanted)) {
    const groups = new Map<string, { names: string[]; in: number; out: number }>();
    for (const l of m.linears) {
      const key = `${l.in}x${l.out}`;
      const g = groups.get(key);
      if (g) g.names.push(l.name);
      else groups.set(key, { names: [l.name], in: l.in, out: l.out });
    }
    for (const g of groups.values()) out.push(...linearCases(m.name, g.names.join('/'), g.in, g.out, T, m.conv1d));
    if (!opts.quick) {
      const V = Math.min(m.vocab, opts.vocabRows?.(m) ?? m.vocab);
      const head = V < m.vocab ? `lm_head[${V} of ${m.vocab}]` : 'lm_head';
      // The lm head is [vocab, hidden] (GPT-2's is the tied wte): the [out, in] layout.
      for (const c of linearCases(m.name, head, m.hidden, V, T, false)) out.push({ ...c, vocabRows: V, vocab: m.vocab });
    }
    if (opts.lora !== false) {
      // LoRA on the largest MLP projection (Graft's order, src/engine/ops/lora.ts): A [r, in], B [out, r].
      const big = m.linears.reduce((x, y) => (y.in * y.out > x.in * x.out || (y.in * y.out === x.in * x.out && y.in > x.in) ? y : x));
      const [inF, outF] = [big.in, big.out];
      const l = `${big.name} LoRA r${r}`;
      out.push(
        { model: m.name, layer: `${l} x·Aᵀ`, pass: 'forward', call: 'NT', M: T, N: r, K: inF },
        { model: m.name, layer: `${l} xa·Bᵀ`, pass: 'forward', call: 'NT', M: T, N: outF, K: r },
        { model: m.name, layer: `${l} dy·B`, pass: 'dX', call: 'NN', M: T, N: r, K: outF },
        { model: m.name, layer: `${l} t·A`, pass: 'dX', call: 'NN', M: T, N: inF, K: r },
        { model: m.name, layer: `${l} dA=tᵀx`, pass: 'dW', call: 'TN', M: r, N: inF, K: T },
        { model: m.name, layer: `${l} dB=dyᵀxa`, pass: 'dW', call: 'TN', M: outF, N: r, K: T },
      );
    }
  }
  return out;
}

/** Deterministic values in [-1, 1). */
function fill(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const aShapeOf = (c: MatmulCase, K = c.K) => (c.call === 'TN' ? [K, c.M] : [c.M, K]);
const bShapeOf = (c: MatmulCase, K = c.K) => (c.call === 'NT' ? [c.N, K] : [K, c.N]);

/** A(m, k) and B(k, n) of the stored operands. */
function elementA(c: MatmulCase, a: Float32Array, m: number, k: number): number {
  return c.call === 'TN' ? a[k * c.M + m]! : a[m * c.K + k]!;
}
function elementB(c: MatmulCase, b: Float32Array, k: number, n: number): number {
  return c.call === 'NT' ? b[n * c.K + k]! : b[k * c.N + n]!;
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

export function planLabel(ctx: GpuContext, c: MatmulCase): string {
  const p = matmulPlan(ctx, { transA: c.call === 'TN', transB: c.call === 'NT', M: c.M, N: c.N, K: c.K });
  return `${p.variant} ${p.tileM}×${p.tileN}${p.splitK > 1 ? ` split-K ${p.splitK}` : ''}`;
}

/** Runs every case; TF.js is skipped when `tfjs` is undefined. */
export async function runMatmulBench(ctx: GpuContext, tfjs: TfjsOnDevice | undefined, opts: MatmulBenchOptions = {}): Promise<MatmulBenchRow[]> {
  const log = opts.log ?? (() => {});
  const target = opts.targetSeconds ?? 0.25;
  const maxReps = opts.maxReps ?? 20;
  const cpu = isSwiftShader(ctx);
  const slice = opts.vocabSlice ?? (cpu ? 2048 : Infinity);
  const cases = matmulCases({ ...opts, vocabRows: () => slice });
  const rows: MatmulBenchRow[] = [];
  const tf = tfjs?.tf;
  for (const [i, c] of cases.entries()) {
    const flop = 2 * c.M * c.N * c.K;
    const seed = c.M * 131 + c.N * 7 + c.K;
    const aData = fill(c.M * c.K, seed);
    const bData = fill(c.N * c.K, seed + 1);
    const a = ctx.upload(aShapeOf(c), aData);
    const b = ctx.upload(bShapeOf(c), bData);
    const out = ctx.empty([c.M, c.N]);

    // Graft: warm-up (compiles), one timed run, then enough to fill the target time; measured again after
    // TF.js and the best kept (the machine may be shared: best-of for both libraries).
    const run = () => graftCall(ctx, c, out, a, b);
    run();
    await ctx.sync();
    const once = await timeGraft(ctx, run, 1);
    let reps = 1;
    let seconds = once;
    if (once < target) {
      reps = Math.min(maxReps, Math.max(2, Math.ceil(target / once)));
      seconds = Math.min(once, (await timeGraft(ctx, run, reps)) / reps);
    }
    const graftCheck = spotCheck(c, await ctx.readF32(out), aData, bData);

    let tfSeconds: number | null = null;
    let tfReps: number | null = null;
    let tfCheck = '';
    if (tf && tfjs) {
      const wrap = (t: Tensor, shape: number[]) =>
        tf.tensor({ buffer: t.buffer, zeroCopy: true } as unknown as Parameters<typeof tf.tensor>[0], shape, 'float32');
      const ta = wrap(a, aShapeOf(c));
      const tb = wrap(b, bShapeOf(c));
      const tA = c.call === 'TN';
      const tB = c.call === 'NT';
      // Warm-up on the same buffers with a shorter K: the same program (see the header). With few 32×32
      // output tiles TF.js picks its program by K too (split-K from K = 2000), so those warm up at full K.
      const fewTiles = Math.ceil(c.M / 32) * Math.ceil(c.N / 32) <= 16;
      const Kw = c.K > 128 && !fewTiles ? 64 + (c.K % 64) : c.K;
      const wa = wrap(a, aShapeOf(c, Kw));
      const wb = wrap(b, bShapeOf(c, Kw));
      const w = tf.matMul(wa, wb, tA, tB);
      await w.data();
      w.dispose();
      wa.dispose();
      wb.dispose();
      const tfRun = (keep: boolean) => {
        const r = tf.matMul(ta, tb, tA, tB);
        if (keep) return r;
        r.dispose();
        return undefined;
      };
      const timeTf = async (n: number) => {
        await ctx.sync();
        await ctx.device.queue.onSubmittedWorkDone();
        const t0 = performance.now();
        for (let k = 0; k < n; k++) tfRun(false);
        tfjs.flush();
        await ctx.device.queue.onSubmittedWorkDone();
        return (performance.now() - t0) / 1000;
      };
      const tOnce = await timeTf(1);
      tfReps = 1;
      tfSeconds = tOnce;
      if (tOnce < target) {
        tfReps = Math.min(maxReps, Math.max(2, Math.ceil(target / tOnce)));
        tfSeconds = Math.min(tOnce, (await timeTf(tfReps)) / tfReps);
      }
      const r = tfRun(true)!;
      const got = (await r.data()) as Float32Array;
      r.dispose();
      tfCheck = spotCheck(c, got, aData, bData);
      ta.dispose();
      tb.dispose();
      await ctx.checkErrors();
      seconds = Math.min(seconds, (await timeGraft(ctx, run, reps)) / reps);
    }
    for (const t of [a, b, out]) t.release();
    ctx.trimPool();

    const graftGflops = flop / seconds / 1e9;
    const tfGflops = tfSeconds === null ? null : flop / tfSeconds / 1e9;
    const check = tf ? (graftCheck === 'ok' && tfCheck === 'ok' ? 'ok' : `graft ${graftCheck}, tfjs ${tfCheck}`) : graftCheck;
    const row: MatmulBenchRow = {
      model: c.model,
      op: `${c.layer} ${c.pass}`,
      layer: c.layer,
      pass: c.pass,
      call: c.call,
      m: c.M,
      k: c.K,
      n: c.N,
      graft_gflops: graftGflops,
      tfjs_gflops: tfGflops,
      ratio: tfGflops === null ? null : graftGflops / tfGflops,
      graft_ms: seconds * 1000,
      tfjs_ms: tfSeconds === null ? null : tfSeconds * 1000,
      graft_reps: reps,
      tfjs_reps: tfReps,
      kernel: planLabel(ctx, c),
      check,
      ...(c.vocabRows !== undefined ? { vocab_rows: c.vocabRows, vocab: c.vocab } : {}),
    };
    rows.push(row);
    log(formatRow(row, i + 1, cases.length));
  }
  return rows;
}

const lpad = (s: string, n: number) => s.padStart(n);
const rpad = (s: string, n: number) => s.padEnd(n);

export const MATMUL_TABLE_HEADER = `${rpad('model', 13)} ${rpad('layer pass', 44)} ${rpad('call', 4)} ${lpad('M×K×N', 18)} | ${lpad('Graft GFLOP/s', 13)} ${lpad('reps', 4)} | ${lpad('TF.js GFLOP/s', 13)} ${lpad('reps', 4)} | ${lpad('ratio', 7)} | ${rpad('Graft kernel', 24)} | check`;

export function formatRow(r: MatmulBenchRow, i?: number, n?: number): string {
  const tf = r.tfjs_gflops === null ? lpad('-', 13) : lpad(r.tfjs_gflops.toFixed(3), 13);
  const ratio = r.ratio === null ? lpad('-', 7) : lpad(`${r.ratio.toFixed(2)}×`, 7);
  const line = `${rpad(r.model, 13)} ${rpad(r.op, 44)} ${rpad(r.call, 4)} ${lpad(`${r.m}×${r.k}×${r.n}`, 18)} | ${lpad(r.graft_gflops.toFixed(3), 13)} ${lpad(String(r.graft_reps), 4)} | ${tf} ${lpad(String(r.tfjs_reps ?? '-'), 4)} | ${ratio} | ${rpad(r.kernel, 24)} | ${r.check}`;
  return i !== undefined ? `${line}   [${i}/${n}]` : line;
}

/** Geometric mean of the ratios, and the smallest, per model. */
export function summarize(rows: MatmulBenchRow[]): string[] {
  const lines: string[] = [];
  const models = [...new Set(rows.map((r) => r.model))];
  for (const m of models) {
    const mine = rows.filter((r) => r.model === m && r.ratio !== null);
    const rs = mine.filter((r) => r.check === 'ok').map((r) => r.ratio!);
    if (!rs.length) continue;
    const geo = Math.exp(rs.reduce((s, x) => s + Math.log(x), 0) / rs.length);
    const wrong = mine.length - rs.length;
    lines.push(
      `${rpad(m, 13)} Graft/TF.js: geometric mean ${geo.toFixed(2)}×, lowest ${Math.min(...rs).toFixed(2)}× over ${rs.length} products` +
        (wrong ? ` (${wrong} left out: a wrong result, see the check column)` : ''),
    );
  }
  return lines;
}

export interface BenchArgs {
  quick: boolean;
  vocabSlice?: number;
  models?: string[];
  lora: boolean;
  tfjs: boolean;
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
    tokens: Number(value('tokens') ?? 256),
    targetSeconds: Number(value('target') ?? 0.25),
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const args = parseBenchArgs(process.argv.slice(2));
  const { requestNodeAdapter } = await import('../src/engine/adapter-node');
  const { GpuContext: Context } = await import('../src/engine/context');
  const { tfjsOnDevice } = await import('./tfjs');
  const { adapter, gpu, swiftshaderIcd } = await requestNodeAdapter();
  const ctx = await Context.create(adapter, gpu);
  const info = ctx.adapter;
  console.log(`Adapter: ${info.description || '(no description)'} — vendor ${info.vendor}, architecture ${info.architecture}${info.isFallback ? ' (fallback adapter)' : ''}`);
  if (swiftshaderIcd) console.log(`Vulkan driver: SwiftShader (${swiftshaderIcd})`);
  const tfjs = args.tfjs ? await tfjsOnDevice(ctx.device, gpu, adapter.info) : undefined;
  if (tfjs) console.log(`TF.js ${tfjs.version}, backend '${tfjs.name}' (WebGPU, on the same GPUDevice)`);
  console.log(MATMUL_TABLE_HEADER);
  console.log('-'.repeat(MATMUL_TABLE_HEADER.length));
  const rows = await runMatmulBench(ctx, tfjs, { ...args, log: (l) => console.log(l) });
  console.log('');
  for (const l of summarize(rows)) console.log(l);
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
