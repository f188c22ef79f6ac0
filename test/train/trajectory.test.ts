// THE fixture trajectory through the trainer API and through `graft train`: 5 AdamW steps from init_adapter on sft_alpaca.json[0:4]
// (one batch of 4, cutoff 64) give PyTorch's losses before each step and its final adapter; so do 2 LoRA+ steps
// (loraplus_lr_ratio 16, weight decay 0.1: scripts/fixtures/loraplus_tiny_llama.py).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collate } from '../../src/data';
import { SafetensorsFile } from '../../src/model/safetensors';
import { Trainer } from '../../src/train/trainer';
import { lines } from '../cli/run';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { ALPACA, alpacaExamples, expectRel, FIXTURE, FIXTURE_DIR, fixtureModel, initAdapter, maxAbsDiff, reference, safetensors, settings } from './helpers';

const loraplus = JSON.parse(readFileSync(new URL('reference/loraplus/loraplus.json', FIXTURE_DIR), 'utf8')) as {
  settings: Record<string, number | string>;
  losses_before_each_step: number[];
};

// `graft train` runs in this process on the file's one GPU device (test/helpers/graft-in-process.ts).

const scratch = mkdtempSync(join(tmpdir(), 'graft-trajectory-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The trainer's weights hold exactly the tensors of the PyTorch run's final adapter, each within 2e-4. */
async function expectFinalAdapter(trainer: Trainer, file: string): Promise<void> {
  const final = safetensors(file);
  const weights = await trainer.trainableWeights();
  expect([...weights.keys()].sort()).toEqual(final.names.sort());
  let worst = 0;
  for (const name of final.names) worst = Math.max(worst, maxAbsDiff(weights.get(name)!, final.float32(name)));
  expect(worst, file).toBeLessThan(2e-4);
}

describe('the fixture LoRA trajectory through the trainer API', () => {
  it('losses before each step (rel 1e-4) and the final adapter (abs 2e-4) equal PyTorch', async () => {
    const { ctx, lm } = await fixtureModel();
    const train = alpacaExamples(lm);
    // The batch the trainer builds is the fixture's sft_batch.
    const b = collate(train, { padTokenId: lm.tokenizer.padTokenId ?? 0 });
    expect(b.inputIds).toEqual(reference.sft_batch.input_ids);
    expect(b.labels).toEqual(reference.sft_batch.labels);
    expect(b.attentionMask).toEqual(reference.sft_batch.attention_mask);

    const trainer = Trainer.create({ model: lm.model, settings: settings(), train, padTokenId: 0, startingAdapter: await initAdapter(lm) });
    const readbacks = ctx.stats.readbacks;
    const result = await trainer.run();
    expect(result.status).toBe('completed');
    expect(ctx.stats.readbacks - readbacks).toBe(5); // one per optimizer step
    const want = reference.lora_trajectory.losses_before_each_step;
    expect(result.metrics.map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
    result.metrics.forEach((m, i) => expectRel(`loss ${i + 1}`, m.loss, want[i]!, 1e-4));
    expect(result.metrics.every((m) => m.learning_rate === 1e-3 && m.skipped_steps === 0 && m.tokens === 115)).toBe(true); // answer tokens of the batch: LLaMA-Factory's cutoff rule keeps 115

    await expectFinalAdapter(trainer, 'reference/final_adapter/adapter_model.safetensors');
    trainer.dispose();
    expect(lm.model.adapter).toBeNull();
  });
});

describe('the fixture LoRA+ trajectory (loraplus_lr_ratio) through the trainer API', () => {
  it('the trajectory equals PyTorch AdamW with LLaMA-Factory\'s LoRA+ groups: losses (rel 1e-4), final adapter (abs 2e-4)', async () => {
    const { lm } = await fixtureModel();
    const s = settings(loraplus.settings);
    expect(s.loraplus_lr_ratio).toBe(16);
    const trainer = Trainer.create({ model: lm.model, settings: s, train: alpacaExamples(lm), padTokenId: 0, startingAdapter: await initAdapter(lm) });
    const result = await trainer.run();
    expect(result.status).toBe('completed');
    const want = loraplus.losses_before_each_step;
    expect(result.metrics.length).toBe(want.length);
    result.metrics.forEach((m, i) => expectRel(`loss ${i + 1}`, m.loss, want[i]!, 1e-4));
    // The logged learning rate is the schedule's (lora_A's group), as Hugging Face logs the first group's.
    expect(result.metrics.every((m) => m.learning_rate === 1e-3)).toBe(true);
    await expectFinalAdapter(trainer, 'reference/loraplus/final_adapter/adapter_model.safetensors');
    trainer.dispose();
  });
});

describe('the fixture LoRA trajectory through `graft train`', () => {
  it('metrics.jsonl holds PyTorch\'s losses and the exported adapter is its final adapter', async () => {
    const out = join(scratch, 'cli');
    // The fixtures' job in LLaMA-Factory's words: sft_alpaca.json[0:4], one batch of 4 in file order, cutoff 64.
    const r = await graft([
      'train',
      '--model', FIXTURE,
      '--dataset', ALPACA,
      '--max_samples', '4',
      '--adapter_name_or_path', `${FIXTURE}/reference/init_adapter`,
      '--per_device_train_batch_size', '4',
      '--cutoff_len', '64',
      '--learning_rate', '1e-3',
      '--lr_scheduler_type', 'constant',
      '--adam_beta1', '0.9',
      '--adam_beta2', '0.999',
      '--adam_epsilon', '1e-8',
      '--weight_decay', '0',
      '--max_grad_norm', '0',
      '--max_steps', '5',
      '--shuffle', 'false',
      '--output_dir', out,
    ]);
    expect(r.code, r.graftStderr).toBe(0);
    expect(r.stdout).toMatch(/trained 5 steps; final loss 6\.04/);
    const metrics = lines(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).map((l) => JSON.parse(l) as { step: number; loss: number; tokens: number });
    expect(metrics.map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
    const want = reference.lora_trajectory.losses_before_each_step;
    metrics.forEach((m, i) => expectRel(`loss ${i + 1}`, m.loss, want[i]!, 1e-4));
    for (const m of metrics) {
      expect(Object.keys(m).sort()).toEqual(['elapsed_s', 'epoch', 'grad_norm', 'input_tokens', 'learning_rate', 'loss', 'skipped_steps', 'step', 'tokens', 'tokens_per_second']);
    }

    const exported = new SafetensorsFile(new Uint8Array(readFileSync(join(out, 'adapter_model.safetensors'))), 'adapter_model.safetensors');
    const final = safetensors('reference/final_adapter/adapter_model.safetensors');
    expect(exported.names.sort()).toEqual(final.names.sort());
    let worst = 0;
    for (const name of final.names) worst = Math.max(worst, maxAbsDiff(exported.float32(name), final.float32(name)));
    expect(worst).toBeLessThan(2e-4);
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, use_rslora: false });
    expect((config.target_modules as string[]).sort()).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    // The LLaMA-Factory job: the same settings under LLaMA-Factory's names, with the data it trained on.
    const yaml = readFileSync(join(out, 'train.yaml'), 'utf8');
    for (const line of ['finetuning_type: lora', 'learning_rate: 0.001', 'lr_scheduler_type: constant', 'max_grad_norm: 0.0', 'max_steps: 5', 'disable_shuffling: true', 'cutoff_len: 64']) {
      expect(yaml).toContain(line);
    }
    expect((JSON.parse(readFileSync(join(out, 'sft_alpaca.json'), 'utf8')) as unknown[]).length).toBe(4);
  });
});
