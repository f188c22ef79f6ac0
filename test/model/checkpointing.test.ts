// Activation checkpointing (ForwardOptions.checkpoint, src/model/transformer.ts): the backward recomputes each
// layer's forward from its saved input, so the gradients are those of the plain backward bit for bit — with
// LoRA (and LoRA dropout, whose masks the recompute must draw again identically), full fine-tuning, bottleneck
// adapters and prompt tuning (whose layers run over the virtual tokens too), on a Llama and a GPT-2 — and for
// LoRA and full the step's peak of GPU bytes in use drops by what the memory planner predicts.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { planShape, planTrainingStep } from '../../src/model/memory-plan';
import { CausalLM, type LoraDropout } from '../../src/model/transformer';
import { shiftedTargets } from '../../src/train/loss';
import { setupMethod } from '../../src/train/methods';
import { parseSettings } from '../../src/train/settings';
import { testContext } from '../helpers/gpu';
import { makeRandomModel, randomIds } from '../helpers/random-model';
import { Rng } from '../helpers/rng';
import { sftMicroStep } from '../helpers/sft-step';

const CONFIGS: Record<string, Record<string, unknown>> = {
  llama: {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_act: 'silu',
    rms_norm_eps: 1e-5,
    max_position_embeddings: 128,
    hidden_size: 128,
    intermediate_size: 344,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 700,
    tie_word_embeddings: true,
  },
  gpt2: {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    n_embd: 96,
    n_head: 4,
    n_layer: 3,
    n_positions: 64,
    n_inner: null,
    vocab_size: 500,
    layer_norm_epsilon: 1e-5,
  },
};

interface Run {
  grads: Map<string, Float32Array>;
  peak: number;
}

async function step(ctx: GpuContext, model: CausalLM, select: Parameters<CausalLM['createGradients']>[0], ids: number[][], checkpoint: boolean, loraDropout?: LoraDropout): Promise<Run> {
  const grads = model.createGradients(select);
  const labels = ids.map((row) => row.map((id, t) => (t < 8 ? -100 : id)));
  const targets = shiftedTargets(labels);
  const count = targets.filter((t) => t !== -100).length;
  const stats = ctx.zeros([1], 'f32', { persistent: true });
  await ctx.sync();
  ctx.resetPeaks();
  sftMicroStep(model, { ids, targets }, stats, 1 / count, grads, { checkpoint, ...(loraDropout ? { loraDropout } : {}) });
  const peak = ctx.stats.peakBytesInUse;
  const out = new Map<string, Float32Array>();
  for (const [name, parts] of grads.entries()) out.set(name, Float32Array.from((await Promise.all(parts.map((t) => ctx.readF32(t)))).flatMap((a) => [...a])));
  grads.release();
  stats.release();
  return { grads: out, peak };
}

describe('activation checkpointing', () => {
  const cases: { model: string; method: 'lora' | 'full' | 'adapter' | 'prompt'; dropout: number; B: number; T: number; extra?: Record<string, unknown> }[] = [
    { model: 'llama', method: 'lora', dropout: 0.1, B: 2, T: 48 },
    { model: 'llama', method: 'full', dropout: 0, B: 1, T: 64 },
    { model: 'gpt2', method: 'lora', dropout: 0, B: 2, T: 40 },
    { model: 'llama', method: 'adapter', dropout: 0, B: 2, T: 32, extra: { adapter_placement: 'houlsby' } },
    { model: 'llama', method: 'prompt', dropout: 0, B: 2, T: 32, extra: { num_virtual_tokens: 4 } },
  ];
  for (const c of cases) {
    it(`${c.model} ${c.method}${c.dropout ? ` with LoRA dropout ${c.dropout}` : ''}: the same gradients bit for bit, and the planned saving`, async () => {
      const ctx = await testContext();
      const m = makeRandomModel({ name: c.model, seed: 21, config: CONFIGS[c.model]! });
      const model = CausalLM.create(ctx, m.cfg, m.weights, { maxPositions: c.T + 8 });
      const settings = parseSettings(
        { model_name_or_path: 'x', dataset: 'x', finetuning_type: c.method, per_device_train_batch_size: c.B, cutoff_len: c.T, ...(c.method === 'lora' ? { lora_rank: 4, lora_target: 'all' } : {}), ...c.extra },
        'the test',
      );
      const setup = setupMethod(model, settings);
      try {
        const rng = new Rng(4);
        // LoRA starts with B = 0, which would leave A's gradient 0: give B values, so that A's gradient (and the
        // recomputed dropout masks it depends on) are compared too.
        for (const p of setup.params) if (p.name.includes('lora_B')) for (const t of p.parts) ctx.write(t, Float32Array.from(rng.tensor(t.size, 0.05, 0)));
        const ids = randomIds(rng, c.B, c.T, m.cfg.vocabSize);
        const dropout = c.dropout > 0 ? { p: c.dropout, seed: 77, offset: 1000 } : undefined;
        // Warm-up of both variants first, so that both measured steps find the same context buffers.
        await step(ctx, model, setup.select, ids, false, dropout);
        await step(ctx, model, setup.select, ids, true, dropout);
        const plain = await step(ctx, model, setup.select, ids, false, dropout);
        const ckpt = await step(ctx, model, setup.select, ids, true, dropout);

        expect([...ckpt.grads.keys()]).toEqual([...plain.grads.keys()]);
        expect([...plain.grads.values()].some((g) => g.some((v) => v !== 0)), 'some gradient is not zero').toBe(true);
        for (const [name, g] of plain.grads) {
          const h = ckpt.grads.get(name)!;
          if (name.includes('lora_')) expect(g.some((v) => v !== 0), `${name} has a gradient`).toBe(true);
          const diff = g.findIndex((v, i) => !Object.is(v, h[i]));
          expect(diff, `${name}: first element that differs`).toBe(-1);
        }

        if (c.method !== 'lora' && c.method !== 'full') return; // the planner knows LoRA and full fine-tuning
        const shape = planShape(m.cfg);
        const o = { method: c.method, batch: c.B, seqLen: c.T, loraRank: 4, maxPositions: c.T + 8, maxBindingBytes: ctx.limits.maxStorageBufferBindingSize };
        const planned = planTrainingStep(shape, o).total - planTrainingStep(shape, { ...o, checkpoint: true }).total;
        const measured = plain.peak - ckpt.peak;
        console.log(`${c.model} ${c.method}: peak ${(plain.peak / 2 ** 20).toFixed(3)} → ${(ckpt.peak / 2 ** 20).toFixed(3)} MiB with checkpointing; saving measured ${(measured / 2 ** 10).toFixed(1)} KiB, planned ${(planned / 2 ** 10).toFixed(1)} KiB`);
        expect(measured).toBeGreaterThan(0);
        expect(Math.abs(measured - planned)).toBeLessThanOrEqual(0.01 * plain.peak);
      } finally {
        setup.release();
        model.dispose();
      }
    });
  }
});
