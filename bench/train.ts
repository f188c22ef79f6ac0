// Training benchmark: tokens per second and step time of SFT on a SmolLM2-135M-SHAPED model (random weights
// built here: hidden 576, 9 heads, 3 key/value heads, intermediate 1536, vocab 49152, tied embeddings), batch 1
// at sequence length 256, for LoRA (rank 8, every linear projection) and full fine-tuning.
//
//   npx tsx bench/train.ts [--layers N] [--seq T] [--steps N] [--trainer-steps N] [--methods lora,full]
//   (npm run bench:train)
//
// SmolLM2-135M has 30 layers; the default here is 2 (--layers 30 for the real depth), because on SwiftShader
// (no GPU) one 30-layer step takes minutes. The report says what was run. Each method: one warm-up step
// (compiles every pipeline), then --steps timed steps, each split into
//   forward    embedding, layers, lm_head, cross-entropy (the loss sum stays on the GPU)
//   backward   dLogits, the backward pass into the gradients
//   optimizer  gradient norm, clip coefficient, AdamW, and the step's one readback [loss sum, norm]
// with ctx.sync() between the phases (only here: the trainer records a step without waiting in between). With
// --trainer-steps N (default 0, to keep the default run short) N steps of the real Trainer follow, without the
// syncs, and their own tokens_per_second is reported too.
import type { GpuContext } from '../src/engine/context';
import type { Tensor } from '../src/engine/tensor';
import type { Gradients } from '../src/model/gradients';
import type { WeightSource } from '../src/model/params';
import type { CausalLM as Model } from '../src/model/transformer';
import type { AdamW as Optimizer } from '../src/train/optimizer';

await import(new URL('./raw-loader.mjs', import.meta.url).href);
const { requestNodeAdapter } = await import('../src/engine/adapter-node');
const { GpuContext: Context } = await import('../src/engine/context');
const { clipCoefficient, gradNorm } = await import('../src/engine/ops/grad-norm');
const { parseConfig } = await import('../src/model/config');
const { CausalLM, releaseBatch, uploadBatch } = await import('../src/model/transformer');
const { parseSettings } = await import('../src/train/settings');
const { setupMethod } = await import('../src/train/methods');
const { AdamW } = await import('../src/train/optimizer');
const { shiftedTargets, sftLossBackward, sftLossForward, sumInto } = await import('../src/train/loss');
const { Trainer } = await import('../src/train/trainer');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const LAYERS = Number(arg('layers', '2'));
const SEQ = Number(arg('seq', '256'));
const STEPS = Number(arg('steps', '1'));
const METHODS = arg('methods', 'lora,full').split(',') as ('lora' | 'full')[];
const TRAINER_STEPS = Number(arg('trainer-steps', '0'));

const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: LAYERS,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  vocab_size: 49152,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  max_position_embeddings: 8192,
  tie_word_embeddings: true,
  hidden_act: 'silu',
};

/** Random weights with the names and shapes of a Llama checkpoint, made on demand (N(0, 0.02)-like, norms 1). */
function randomWeights(): WeightSource {
  const cfg = parseConfig(CONFIG);
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: D, vocabSize: V } = cfg;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [V, H]], ['model.norm.weight', [H]]]);
  for (let l = 0; l < LAYERS; l++) {
    const p = `model.layers.${l}`;
    shapes.set(`${p}.input_layernorm.weight`, [H]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [H]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [nh * D, H]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [nkv * D, H]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [nkv * D, H]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [H, nh * D]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [I, H]);
    shapes.set(`${p}.mlp.up_proj.weight`, [I, H]);
    shapes.set(`${p}.mlp.down_proj.weight`, [H, I]);
  }
  let seed = 12345;
  return {
    names: [...shapes.keys()],
    info: (name) => ({ dtype: 'F32', shape: shapes.get(name)! }),
    float32: (name) => {
      const n = shapes.get(name)!.reduce((a, b) => a * b, 1);
      const out = new Float32Array(n);
      if (name.endsWith('norm.weight')) return out.fill(1);
      let s = seed++ >>> 0;
      for (let i = 0; i < n; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        out[i] = (s / 2 ** 32 - 0.5) * 0.07; // uniform with std ≈ 0.02
      }
      return out;
    },
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

interface PhaseTimes {
  forward: number;
  backward: number;
  optimizer: number;
}

async function timedStep(
  ctx: GpuContext,
  model: Model,
  opt: Optimizer,
  grads: Gradients,
  ex: ReturnType<typeof example>,
  stats: Tensor,
  norm: Tensor,
  scale: Tensor,
): Promise<PhaseTimes & { loss: number }> {
  const targets = shiftedTargets([ex.labels]);
  const count = targets.filter((t) => t !== -100).length;
  await ctx.sync();
  const t0 = performance.now();
  ctx.fill(stats, 0);
  grads.zero();
  const batch = uploadBatch(ctx, [ex.inputIds]);
  const acts = model.forward(batch, { logits: 'chunks' });
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
  const [lossSum] = await ctx.readF32(stats);
  opt.step(grads, 1e-4, scale);
  await ctx.sync();
  const t3 = performance.now();
  return { forward: (t1 - t0) / 1000, backward: (t2 - t1) / 1000, optimizer: (t3 - t2) / 1000, loss: lossSum! / count };
}

const { adapter, gpu } = await requestNodeAdapter();
const ctx = await Context.create(adapter, gpu);
const weights = randomWeights();
const cfg = parseConfig(CONFIG);
const model = CausalLM.create(ctx, cfg, weights, { maxPositions: SEQ });
await ctx.sync();
const params = model.parameters().reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
console.log(`adapter: ${ctx.adapter.description || ctx.adapter.vendor} (${ctx.adapter.vendor}, ${ctx.adapter.architecture})`);
console.log(
  `model: SmolLM2-135M-shaped, random weights: hidden 576, ${LAYERS} of 30 layers, 9 heads / 3 kv heads, intermediate 1536, vocab 49152, tied; ` +
    `${(params / 1e6).toFixed(1)}M parameters${LAYERS === 30 ? '' : ` (the real depth: --layers 30)`}`,
);
console.log(`batch 1 × ${SEQ} tokens (loss on the last ${SEQ / 2}); ${STEPS} timed step(s) after 1 warm-up; phases separated by ctx.sync()\n`);

const ex = example(SEQ);
const rows: string[] = [];
for (const method of METHODS) {
  const settings = parseSettings(
    {
      model_name_or_path: 'bench',
      dataset: 'bench',
      finetuning_type: method,
      lora_rank: 8,
      lora_target: 'all',
      learning_rate: 1e-4,
      per_device_train_batch_size: 1,
      cutoff_len: SEQ,
      max_steps: Math.max(1, TRAINER_STEPS),
      save_strategy: 'no',
      disable_shuffling: true,
    },
    'bench',
  );
  const setup = setupMethod(model, settings);
  const trainable = setup.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  const grads = model.createGradients(setup.select);
  const opt = new AdamW(ctx, setup.params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  const stats = ctx.zeros([2], 'f32', { persistent: true });
  const norm = ctx.zeros([1], 'f32', { persistent: true });
  const scale = ctx.zeros([1], 'f32', { persistent: true });
  const tw = performance.now();
  const warm = await timedStep(ctx, model, opt, grads, ex, stats, norm, scale);
  const warmS = (performance.now() - tw) / 1000;
  const sum: PhaseTimes = { forward: 0, backward: 0, optimizer: 0 };
  let loss = warm.loss;
  for (let i = 0; i < STEPS; i++) {
    const t = await timedStep(ctx, model, opt, grads, ex, stats, norm, scale);
    sum.forward += t.forward;
    sum.backward += t.backward;
    sum.optimizer += t.optimizer;
    loss = t.loss;
  }
  for (const t of [stats, norm, scale]) t.release();
  opt.release();
  grads.release();
  setup.release();
  const step = (sum.forward + sum.backward + sum.optimizer) / STEPS;
  const ms = (x: number) => `${((x / STEPS) * 1000).toFixed(0)} ms`;
  const pct = (x: number) => `${((100 * x) / STEPS / step).toFixed(0)}%`;
  console.log(
    `${method.padEnd(4)} (${(trainable / 1e6).toFixed(2)}M trainable): step ${(step * 1000).toFixed(0)} ms = forward ${ms(sum.forward)} (${pct(sum.forward)}) + backward ${ms(sum.backward)} (${pct(sum.backward)}) + optimizer ${ms(sum.optimizer)} (${pct(sum.optimizer)}); ` +
      `${(SEQ / step).toFixed(1)} tokens/s; warm-up step ${warmS.toFixed(1)} s; loss ${loss.toFixed(3)}`,
  );
  rows.push(`| ${method} | ${(trainable / 1e6).toFixed(2)}M | ${(step * 1000).toFixed(0)} | ${ms(sum.forward)} | ${ms(sum.backward)} | ${ms(sum.optimizer)} | ${(SEQ / step).toFixed(1)} |`);

  // The real trainer, no syncs between phases: its own metrics.
  if (TRAINER_STEPS > 0) {
    const trainer = Trainer.create({ model, settings, train: [ex], padTokenId: 0 });
    const r = await trainer.run();
    trainer.dispose();
    const tps = r.metrics.map((m) => m.tokens_per_second.toFixed(1)).join(', ');
    console.log(`     Trainer.run, ${TRAINER_STEPS} steps: tokens_per_second per step ${tps} (one readback per step, phases not separated)`);
  }
  ctx.trimPool();
}
console.log('\n| method | trainable | step ms | forward | backward | optimizer | tokens/s |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(r);
model.dispose();
ctx.destroy();
process.exit(0);
