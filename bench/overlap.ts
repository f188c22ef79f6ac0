// Overlapped training steps, on and off, side by side in one run: the same LoRA job through the real Trainer
// (Trainer.create's `overlap`), alternating off / on so that drift in the machine's speed falls on both, on the
// tiny Llama fixture (test/fixtures/tiny-llama: small steps, where the CPU's recording is a large part of a step)
// or, with --smol, a 2-layer SmolLM2-135M-shaped model of random weights. Prints steps/s of each and the ratio.
//
//   npx tsx bench/overlap.ts [--steps N] [--rounds N] [--seq T] [--batch B] [--smol]
//
// A run's first 2 steps are warm-up (pipelines, buffer pool, bind groups) and not timed; steps/s counts the steps
// between the record of the last warm-up step and the record of the last step. docs/training.md, "Overlapped steps".
import { fileURLToPath } from 'node:url';
import type { CausalLM } from '../src/model/transformer';

await import(new URL('./raw-loader.mjs', import.meta.url).href);
const { requestNodeAdapter } = await import('../src/engine/adapter-node');
const { GpuContext } = await import('../src/engine/context');
const { folderSource } = await import('../src/cli/folder-source');
const { loadModel } = await import('../src/model/load');
const { parseSettings } = await import('../src/train/settings');
const { Trainer } = await import('../src/train/trainer');

const arg = (name: string, d: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const steps = arg('steps', 12);
const rounds = arg('rounds', 3);
const seq = arg('seq', 32);
const batch = arg('batch', 2);
const WARMUP = 2;

const { adapter, gpu } = await requestNodeAdapter();
const ctx = await GpuContext.create(adapter, gpu);
console.log(`Adapter: ${ctx.adapter.description || ctx.adapter.architecture || ctx.adapter.vendor}`);

let model: CausalLM;
let vocab: number;
let dispose: () => void;
if (process.argv.includes('--smol')) {
  const { CausalLM: Model } = await import('../src/model/transformer');
  const { parseConfig } = await import('../src/model/config');
  const { randomWeights } = await import('./random-weights');
  const raw = { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 2, num_attention_heads: 9, num_key_value_heads: 3, vocab_size: 49152, rms_norm_eps: 1e-5, rope_theta: 100000, max_position_embeddings: 8192, tie_word_embeddings: true, hidden_act: 'silu' };
  const cfg = parseConfig(raw);
  model = Model.create(ctx, cfg, randomWeights(raw, { seed: 1 }), { maxPositions: seq });
  vocab = cfg.vocabSize;
  dispose = () => model.dispose();
} else {
  const lm = await loadModel(ctx, await folderSource(fileURLToPath(new URL('../test/fixtures/tiny-llama/', import.meta.url))), { maxPositions: seq });
  model = lm.model;
  vocab = lm.config.vocabSize;
  dispose = () => lm.dispose();
}

const total = WARMUP + steps;
let s = 7;
const train = Array.from({ length: batch * total }, () => {
  const ids = Array.from({ length: seq }, () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % vocab);
  return { inputIds: ids, labels: ids.map((id, t) => (t < seq / 2 ? -100 : id)) };
});
const settings = parseSettings(
  { model_name_or_path: 'bench', dataset: 'synthetic', finetuning_type: 'lora', lora_rank: 8, lora_target: 'all', learning_rate: 1e-4, lr_scheduler_type: 'constant', per_device_train_batch_size: batch, max_steps: total, max_grad_norm: 1, cutoff_len: seq, save_strategy: 'no', disable_shuffling: true },
  'the benchmark',
);

async function timed(overlap: boolean): Promise<{ steps: number; seconds: number; losses: number[] }> {
  const trainer = Trainer.create({ model, settings, train, padTokenId: 0, overlap });
  let t0 = 0;
  let t1 = 0;
  const losses: number[] = [];
  try {
    await trainer.run({
      onStep: (r) => {
        losses.push(r.loss);
        if (r.step === WARMUP) t0 = performance.now();
        if (r.step === total) t1 = performance.now();
      },
    });
  } finally {
    trainer.dispose();
  }
  return { steps, seconds: (t1 - t0) / 1000, losses };
}

const sum = { off: { steps: 0, seconds: 0 }, on: { steps: 0, seconds: 0 } };
let same = true;
for (let r = 0; r < rounds; r++) {
  const off = await timed(false);
  const on = await timed(true);
  same &&= off.losses.every((l, i) => Object.is(l, on.losses[i]));
  for (const [k, v] of [['off', off], ['on', on]] as const) {
    sum[k].steps += v.steps;
    sum[k].seconds += v.seconds;
  }
  console.log(`round ${r + 1}: off ${(off.steps / off.seconds).toFixed(2)} steps/s, on ${(on.steps / on.seconds).toFixed(2)} steps/s`);
}
const off = sum.off.steps / sum.off.seconds;
const on = sum.on.steps / sum.on.seconds;
console.log(`${process.argv.includes('--smol') ? 'SmolLM2-135M-shaped, 2 layers' : 'tiny-llama fixture'}, LoRA r 8 (all linear), batch ${batch} × ${seq} tokens, ${steps} timed steps × ${rounds} rounds`);
console.log(`without overlap ${off.toFixed(2)} steps/s, with overlap ${on.toFixed(2)} steps/s: ratio ${(on / off).toFixed(3)}; losses ${same ? 'bit-identical' : 'DIFFER'}`);
dispose();
ctx.destroy();
