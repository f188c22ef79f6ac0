// The memory planner against measured peaks at reduced depth, for the models issue 12 targets: each model's real
// shapes (hidden, heads, MLP, vocabulary) with 1 or 2 of its layers and random weights, the frozen base held f32,
// 16-bit (a BF16 checkpoint kept packed) and 4-bit (NF4, double quantization), LoRA r 16 on every linear,
// batch 1; the peak of bytes in use GpuContext measured during the second Trainer step next to the planner's
// prediction for the same shape, depth and length. (The full-depth figures are the planner's alone: see README,
// "Models, weight precision and QLoRA".)
//
//   npx tsx bench/memory.ts [--quick] [--models smollm2,gemma,llama]
import { pathToFileURL } from 'node:url';
import type { GpuContext } from '../src/engine/context';
import type { PlanPrecision } from '../src/model/memory-plan';

await import(new URL('./raw-loader.mjs', import.meta.url).href);
const { parseConfig } = await import('../src/model/config');
const { CausalLM } = await import('../src/model/transformer');
const { planShape, planTrainingStep } = await import('../src/model/memory-plan');
const { parseSettings } = await import('../src/train/settings');
const { Trainer } = await import('../src/train/trainer');
const { randomWeights } = await import('./random-weights');

interface MemoryCase {
  model: string;
  config: Record<string, unknown>;
  layers: number;
  seqLen: number;
  precisions: PlanPrecision[];
}

const llama = (c: Record<string, unknown>) => ({ architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_act: 'silu', rms_norm_eps: 1e-5, max_position_embeddings: 8192, tie_word_embeddings: true, ...c });

export const MEMORY_CASES: MemoryCase[] = [
  { model: 'SmolLM2-135M', config: llama({ hidden_size: 576, intermediate_size: 1536, num_attention_heads: 9, num_key_value_heads: 3, vocab_size: 49152 }), layers: 2, seqLen: 512, precisions: ['f32', '16-bit', '4-bit'] },
  {
    model: 'Gemma-3-270M',
    config: { architectures: ['Gemma3ForCausalLM'], model_type: 'gemma3_text', hidden_size: 640, intermediate_size: 2048, num_attention_heads: 4, num_key_value_heads: 1, head_dim: 256, vocab_size: 262144, sliding_window: 512, query_pre_attn_scalar: 256, max_position_embeddings: 32768, layer_types: ['sliding_attention', 'full_attention'] },
    layers: 2,
    seqLen: 128,
    precisions: ['16-bit', '4-bit'],
  },
  { model: 'Llama-3.2-1B', config: llama({ hidden_size: 2048, intermediate_size: 8192, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, vocab_size: 128256 }), layers: 1, seqLen: 64, precisions: ['16-bit', '4-bit'] },
];

export interface MemoryRow {
  model: string;
  layers: number;
  seqLen: number;
  precision: PlanPrecision;
  plannedBytes: number;
  measuredBytes: number;
  /** (planned − measured) / measured. */
  error: number;
}

export async function runMemoryBench(
  newContext: () => Promise<GpuContext>,
  opts: { quick?: boolean; models?: string[]; log?: (l: string) => void } = {},
): Promise<MemoryRow[]> {
  const log = opts.log ?? (() => {});
  const rows: MemoryRow[] = [];
  const wanted = (c: MemoryCase) => !opts.models?.length || opts.models.some((m) => c.model.toLowerCase().startsWith(m.toLowerCase()));
  for (const c of opts.quick ? MEMORY_CASES.slice(0, 1) : MEMORY_CASES.filter(wanted)) {
    for (const precision of c.precisions) {
      const ctx = await newContext();
      const raw = { ...c.config, num_hidden_layers: c.layers };
      const cfg = parseConfig(raw);
      const quantize = precision === '4-bit' ? { format: 'nf4' as const, doubleQuant: true } : null;
      const model = CausalLM.create(ctx, cfg, randomWeights(raw, { bf16: precision !== 'f32' }), { maxPositions: c.seqLen, weights: { quantize } });
      const ids = Array.from({ length: c.seqLen }, (_, t) => 3 + ((t * 7919) % (cfg.vocabSize - 3)));
      const settings = parseSettings(
        { model_name_or_path: c.model, dataset: 'memory', lora_rank: 16, lora_alpha: 32, learning_rate: 1e-4, per_device_train_batch_size: 1, cutoff_len: c.seqLen, max_steps: 2, disable_shuffling: true, save_strategy: 'no' },
        'the memory bench',
      );
      // One step's peak between two onStep calls: without overlap (overlapped steps record the next step first).
      const trainer = Trainer.create({ model, settings, train: [{ inputIds: ids, labels: ids.map((id, t) => (t < c.seqLen / 2 ? -100 : id)) }], padTokenId: 0, overlap: false });
      const peaks: number[] = [];
      await trainer.run({
        onStep: () => {
          peaks.push(ctx.stats.peakBytesInUse);
          ctx.resetPeaks();
        },
      });
      trainer.dispose();
      model.dispose();
      const planned = planTrainingStep(planShape(cfg), { method: 'lora', batch: 1, seqLen: c.seqLen, loraRank: 16, maxPositions: c.seqLen, maxBindingBytes: ctx.limits.maxStorageBufferBindingSize, precision }).total;
      const row: MemoryRow = { model: c.model, layers: c.layers, seqLen: c.seqLen, precision, plannedBytes: planned, measuredBytes: peaks[1]!, error: (planned - peaks[1]!) / peaks[1]! };
      rows.push(row);
      log(`${c.model.padEnd(14)} ${c.layers} layer${c.layers > 1 ? 's' : ' '} T ${String(c.seqLen).padStart(3)} ${precision.padEnd(6)} planned ${(planned / 2 ** 20).toFixed(2).padStart(8)} MiB  measured ${(row.measuredBytes / 2 ** 20).toFixed(2).padStart(8)} MiB  (${(100 * row.error).toFixed(2)}%)`);
      ctx.trimPool();
      ctx.destroy();
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const { requestNodeAdapter } = await import('../src/engine/adapter-node');
  const { GpuContext } = await import('../src/engine/context');
  // A fresh adapter and device per case (an adapter gives one device): each context counts only its own buffers.
  const fresh = async () => {
    const { adapter, gpu } = await requestNodeAdapter();
    return GpuContext.create(adapter, gpu);
  };
  const i = process.argv.indexOf('--models');
  const models = i >= 0 && process.argv[i + 1] ? process.argv[i + 1]!.split(',') : undefined;
  await runMemoryBench(fresh, { quick: process.argv.includes('--quick'), ...(models ? { models } : {}), log: (l) => console.log(l) });
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
