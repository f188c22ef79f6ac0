// Fusion benchmark: what LoRA's extra dispatches and the bias add cost next to the frozen matmul they ride
// on, and what fusing them into the matmul's epilogue (ops/matmul.ts addProduct / bias) saves.
//   npx tsx bench/fusion.ts [--reps 5] [--tokens 256,512] [--ranks 8,16] [--variant subgroup|register|tiled]
// On SmolLM2-135M's linear shapes (576→576, 576→1536, 1536→576), for M tokens and LoRA rank r, it times side
// by side, interleaved within each repetition so that a busy machine weighs on all alike:
//   forward   base:     y = x·Wᵀ                               (the frozen matmul alone)
//             unfused:  y = x·Wᵀ; xa = x·Aᵀ; y += s·xa·Bᵀ       (three dispatches, as before the fusion)
//             fused:    linearForward (src/model/linear.ts): xa = x·Aᵀ; y = x·Wᵀ + s·xa·Bᵀ in one dispatch
//   backward  base:     dx += dy·W                             (a frozen layer with no adapter)
//             unfused:  dx += dy·W; t = dy·B; dA += s·tᵀ·x; dx += s·t·A; dB += s·dyᵀ·xa
//             fused:    linearBackward with dx, dA, dB: dx += dy·W + s·t·A in one dispatch
//   bias      y = x·Wᵀ then y += b (two dispatches) against y = x·Wᵀ + b (one), at the first rank.
//   lm head + cross-entropy (--no-ce skips it), for one vocabulary chunk of C columns (--vocab-chunk, 4096
//   by default; every cost below is linear in C, so the shares hold for the whole 49152): the lm head's
//   forward logits = h·W_cᵀ [N, C] and its dh += dLogits·W_c, against the cross-entropy kernels that a fused
//   lm-head + CE kernel would fold into them: crossEntropyChunk (reads the logits), a zeroed dLogits and
//   crossEntropyChunkBackward (reads logits, writes dLogits). Their share of the lm head's time bounds what
//   such a fusion could save on this adapter; the logits' and dLogits' bytes are what it would save in memory.
// Every timing is one submit of --repeat (2) back-to-back calls, waited for; the table gives the median over
// the repetitions in ms, and ratios of medians. The kernel is the adapter's default (--variant forces one).
import type { GpuContext } from '../src/engine/context';
import type { Tensor } from '../src/engine/tensor';
import type { LinearParams } from '../src/model/params';

await import(new URL('./raw-loader.mjs', import.meta.url).href);
const { requestNodeAdapter } = await import('../src/engine/adapter-node');
const { GpuContext: Context } = await import('../src/engine/context');
const { matmulNN, matmulNT, matmulTN, matmulVariant } = await import('../src/engine/ops/matmul');
const { biasAdd } = await import('../src/engine/ops/bias');
const { linearBackward, linearForward } = await import('../src/model/linear');
const { crossEntropyChunk, crossEntropyChunkBackward, crossEntropyFinish, crossEntropyInit } = await import('../src/engine/ops/cross-entropy');

type Variant = import('../src/engine/ops/matmul').MatmulVariant;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const REPS = Number(arg('reps') ?? 5);
const TOKENS = (arg('tokens') ?? '256,512').split(',').map(Number);
const RANKS = (arg('ranks') ?? '8,16').split(',').map(Number);
const VARIANT = arg('variant') as Variant | undefined;
/** Calls per timed submit: enough to hide the submit/readback latency. */
const REPEAT = Number(arg('repeat') ?? 2);
const CE = !process.argv.includes('--no-ce');
const LORA = !process.argv.includes('--no-lora');
const VOCAB_CHUNK = Number(arg('vocab-chunk') ?? 4096);
const HIDDEN = 576;
const VOCAB = 49152;

const SHAPES = [
  { name: 'q/o 576→576', inF: 576, outF: 576 },
  { name: 'gate/up 576→1536', inF: 576, outF: 1536 },
  { name: 'down 1536→576', inF: 1536, outF: 576 },
];

/** Deterministic values in [-0.5, 0.5). */
function fill(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

async function time(ctx: GpuContext, run: () => void): Promise<number> {
  await ctx.sync();
  const t0 = performance.now();
  for (let i = 0; i < REPEAT; i++) run();
  await ctx.sync();
  return (performance.now() - t0) / REPEAT;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function linear(ctx: GpuContext, inF: number, outF: number, bias: boolean): LinearParams {
  const w = ctx.upload([outF, inF], fill(outF * inF, inF + outF));
  const b = bias ? ctx.upload([outF], fill(outF, 7)) : null;
  const param = (t: Tensor, name: string) => ({ name, sourceName: name, shape: [...t.shape], parts: [t], rowStarts: [0], fileDtype: 'F32' as const });
  return {
    module: `bench ${inF}→${outF}`,
    weight: param(w, 'weight'),
    bias: b ? param(b, 'bias') : null,
    layout: 'out_in',
    inFeatures: inF,
    outFeatures: outF,
  };
}

async function main(): Promise<void> {
  const { adapter, gpu } = await requestNodeAdapter();
  const ctx = await Context.create(adapter, gpu);
  const variant = VARIANT ?? matmulVariant(ctx);
  const v = { variant };
  console.log(`Adapter: ${ctx.adapter.description || ctx.adapter.architecture}; matmul variant ${variant}; ${REPS} repetitions of ${REPEAT} calls; medians in ms`);
  const cols = ['base', 'unfused', 'fused'].map((c) => c.padStart(8)).join(' ') + ' ' + ['unf/b', 'fus/b', 'fus/u'].map((c) => c.padStart(5)).join(' ');
  const header = `${'shape'.padEnd(18)} ${'M'.padStart(4)} ${'r'.padStart(3)} | ${cols} | ${cols}`;
  console.log(`${''.padEnd(28)} | ${'forward'.padEnd(cols.length)} | backward (base frozen)`);
  console.log(header);
  console.log('-'.repeat(header.length));
  const biasRows: string[] = [];
  /** fused/unfused ratios per case, for the geometric means at the end. */
  const gains: Record<'forward' | 'backward' | 'bias', number[]> = { forward: [], backward: [], bias: [] };
  for (const M of LORA ? TOKENS : []) {
    for (const s of SHAPES) {
      for (const r of RANKS) {
        const lin = linear(ctx, s.inF, s.outF, false);
        const W = lin.weight.parts[0]!;
        const lora = { a: ctx.upload([r, s.inF], fill(r * s.inF, r)), b: ctx.upload([s.outF, r], fill(s.outF * r, r + 1)) };
        const x = ctx.upload([M, s.inF], fill(M * s.inF, M));
        const dy = ctx.upload([M, s.outF], fill(M * s.outF, M + 3));
        const y = ctx.empty([M, s.outF]);
        const dx = ctx.zeros([M, s.inF]);
        const dA = ctx.zeros([r, s.inF]);
        const dB = ctx.zeros([s.outF, r]);
        const xa = ctx.empty([M, r]);
        const t = ctx.empty([M, r]);
        const scale = 2;
        const bias = ctx.upload([s.outF], fill(s.outF, 5));
        const vs = { ...v, alpha: scale, accumulate: true };
        const acc = { ...v, accumulate: true };
        const runs: Record<string, () => void> = {
          fwdBase: () => matmulNT(ctx, y, x, W, v),
          fwdUnfused: () => {
            matmulNT(ctx, y, x, W, v);
            matmulNT(ctx, xa, x, lora.a, v);
            matmulNT(ctx, y, xa, lora.b, vs);
          },
          fwdFused: () => linearForward(ctx, y, x, lin, lora, scale, false),
          bwdBase: () => matmulNN(ctx, dx, dy, W, acc),
          bwdUnfused: () => {
            matmulNN(ctx, dx, dy, W, acc);
            matmulNN(ctx, t, dy, lora.b, v);
            matmulTN(ctx, dA, t, x, vs);
            matmulNN(ctx, dx, t, lora.a, vs);
            matmulTN(ctx, dB, dy, xa, vs);
          },
          bwdFused: () => linearBackward(ctx, dx, { dA, dB }, dy, x, xa, lin, lora, scale),
        };
        if (r === RANKS[0]) {
          runs.biasUnfused = () => {
            matmulNT(ctx, y, x, W, v);
            biasAdd(ctx, y, bias);
          };
          runs.biasFused = () => matmulNT(ctx, y, x, W, { ...v, bias });
        }
        const times: Record<string, number[]> = {};
        for (const [k, run] of Object.entries(runs)) {
          run(); // compiles its pipelines
          times[k] = [];
        }
        await ctx.sync();
        for (let rep = 0; rep < REPS; rep++) {
          for (const [k, run] of Object.entries(runs)) times[k]!.push(await time(ctx, run));
        }
        const m = Object.fromEntries(Object.entries(times).map(([k, ts]) => [k, median(ts)])) as Record<string, number>;
        const f = (x: number, w = 8) => x.toFixed(1).padStart(w);
        const q = (a: number, b: number) => (a / b).toFixed(2).padStart(5);
        console.log(
          `${s.name.padEnd(18)} ${String(M).padStart(4)} ${String(r).padStart(3)} | ${f(m.fwdBase!)} ${f(m.fwdUnfused!)} ${f(m.fwdFused!)} ${q(m.fwdUnfused!, m.fwdBase!)} ${q(m.fwdFused!, m.fwdBase!)} ${q(m.fwdFused!, m.fwdUnfused!)} | ` +
            `${f(m.bwdBase!)} ${f(m.bwdUnfused!)} ${f(m.bwdFused!)} ${q(m.bwdUnfused!, m.bwdBase!)} ${q(m.bwdFused!, m.bwdBase!)} ${q(m.bwdFused!, m.bwdUnfused!)}`,
        );
        gains.forward.push(m.fwdFused! / m.fwdUnfused!);
        gains.backward.push(m.bwdFused! / m.bwdUnfused!);
        if (m.biasFused !== undefined) {
          gains.bias.push(m.biasFused! / m.biasUnfused!);
          biasRows.push(`${s.name.padEnd(18)} ${String(M).padStart(4)} | x·Wᵀ then + b ${f(m.biasUnfused!)}   x·Wᵀ + b fused ${f(m.biasFused!)}   fused/unfused ${q(m.biasFused!, m.biasUnfused!)}`);
        }
        for (const tt of [W, bias, lora.a, lora.b, x, dy, y, dx, dA, dB, xa, t]) tt.release();
        ctx.trimPool();
      }
    }
  }
  console.log('');
  for (const row of biasRows) console.log(row);
  const geo = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
  if (gains.forward.length > 0) {
    console.log(`geometric mean of fused/unfused: forward ${geo(gains.forward).toFixed(2)}, backward ${geo(gains.backward).toFixed(2)}, bias ${geo(gains.bias).toFixed(2)} (${gains.forward.length} cases)`);
  }
  if (CE) for (const N of TOKENS) await benchCrossEntropy(ctx, N, v);
  ctx.destroy();
}

async function benchCrossEntropy(ctx: GpuContext, N: number, v: { variant: Variant }): Promise<void> {
  const C = VOCAB_CHUNK;
  const h = ctx.upload([N, HIDDEN], fill(N * HIDDEN, N + 11));
  const w = ctx.upload([C, HIDDEN], fill(C * HIDDEN, 13));
  const logits = ctx.empty([N, C]);
  const dLogits = ctx.zeros([N, C]);
  const dh = ctx.zeros([N, HIDDEN]);
  const targets = ctx.upload([N], Int32Array.from({ length: N }, (_, i) => (i * 7919) % C), 'i32');
  const stats = ctx.empty([N, 2]);
  const targetLogit = ctx.empty([N]);
  const losses = ctx.empty([N]);
  const dLoss = ctx.upload([N], new Float32Array(N).fill(1 / N));
  const runs: Record<string, () => void> = {
    headFwd: () => matmulNT(ctx, logits, h, w, v),
    ceFwd: () => {
      crossEntropyInit(ctx, stats, targetLogit);
      crossEntropyChunk(ctx, stats, targetLogit, logits, targets, 0);
      crossEntropyFinish(ctx, losses, stats, targetLogit, targets);
    },
    headBwd: () => matmulNN(ctx, dh, dLogits, w, { ...v, accumulate: true }),
    ceBwd: () => {
      ctx.fill(dLogits, 0);
      crossEntropyChunkBackward(ctx, dLogits, logits, stats, targets, dLoss, 0);
    },
  };
  const times: Record<string, number[]> = {};
  for (const [k, run] of Object.entries(runs)) {
    run();
    times[k] = [];
  }
  await ctx.sync();
  for (let rep = 0; rep < REPS; rep++) for (const [k, run] of Object.entries(runs)) times[k]!.push(await time(ctx, run));
  const m = Object.fromEntries(Object.entries(times).map(([k, ts]) => [k, median(ts)])) as Record<string, number>;
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;
  const mib = (N * VOCAB * 4) / 2 ** 20;
  console.log('');
  console.log(`lm head + cross-entropy, N = ${N} tokens, one chunk of C = ${C} of SmolLM2's ${VOCAB} columns (H = ${HIDDEN}), medians in ms`);
  console.log(`  forward:  logits = h·Wᵀ ${m.headFwd!.toFixed(1)}   CE init+chunk+finish ${m.ceFwd!.toFixed(1)} (${pct(m.ceFwd!, m.headFwd!)} of the matmul)`);
  console.log(`  backward: dh += dLogits·W ${m.headBwd!.toFixed(1)}   zero dLogits + CE chunk backward ${m.ceBwd!.toFixed(1)} (${pct(m.ceBwd!, m.headBwd!)} of the matmul)`);
  console.log(`  the CE kernels are ${pct(m.ceFwd! + m.ceBwd!, m.headFwd! + m.headBwd!)} of the lm head's forward + dh; a fused kernel that recomputes the logits in the backward adds a whole forward matmul (+${pct(m.headFwd!, m.headFwd! + m.headBwd!)})`);
  console.log(`  memory: logits and dLogits of the whole vocabulary at N = ${N}: ${mib.toFixed(0)} MiB each`);
  for (const t of [h, w, logits, dLogits, dh, targets, stats, targetLogit, losses, dLoss]) t.release();
  ctx.trimPool();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
