// finetuning_type "prompt" on the tiny Llama fixture: the settings (defaults, PEFT's capitals, the rules
// across keys), the only trainable tensor is prompt_embeddings [n, hidden], a few steps lower the loss while every
// base weight stays bit for bit what it was, TEXT init starts at the init ids' token embeddings, too-long
// examples are refused naming the virtual tokens, a stopped run resumes to the same losses and embeddings (its
// checkpoint folder is the PEFT adapter), and DPO takes the model with the prompt switched off as its reference.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePreferenceText, preparePreferenceData } from '../../src/data/preference';
import { memorySource } from '../../src/model/source';
import { PROMPT_EMBEDDINGS, readPromptAdapter, textInitIds } from '../../src/model/prompt-tuning';
import { decodeCheckpoint } from '../../src/train/checkpoint';
import type { DpoObjective } from '../../src/train/objectives/dpo';
import { decays } from '../../src/train/methods';
import { parseSettings, SettingsError } from '../../src/train/settings';
import { Trainer } from '../../src/train/trainer';
import { alpacaExamples, baseWeights, fixtureModel, settings, shortExamples, stopAndResume } from './helpers';

const problems = (over: Record<string, unknown>): string[] => {
  try {
    parseSettings({ model_name_or_path: 'm', dataset: 'd.json', ...over }, 'the test');
  } catch (e) {
    if (e instanceof SettingsError) return e.problems.map((p) => `${p.key}: ${p.message}`);
    throw e;
  }
  return [];
};

describe('prompt tuning settings', () => {
  it('defaults, PEFT’s capitals, and the rules across keys', () => {
    const s = parseSettings({ model_name_or_path: 'm', dataset: 'd.json', finetuning_type: 'prompt' }, 'the test');
    expect([s.num_virtual_tokens, s.prompt_tuning_init, s.prompt_tuning_init_text]).toEqual([20, 'random', undefined]);
    const t = parseSettings({ model_name_or_path: 'm', dataset: 'd.json', finetuning_type: 'prompt', prompt_tuning_init_text: 'Answer briefly:' }, 'the test');
    expect(t.prompt_tuning_init).toBe('text');
    expect(parseSettings({ model_name_or_path: 'm', dataset: 'd.json', finetuning_type: 'prompt', prompt_tuning_init: 'RANDOM', prompt_tuning_init_text: 'x' }, 'the test').prompt_tuning_init).toBe('random');
    expect(problems({ finetuning_type: 'prompt', prompt_tuning_init: 'TEXT' })).toEqual([
      'prompt_tuning_init: is "text", so prompt_tuning_init_text must give the text whose token embeddings start the virtual tokens',
    ]);
    expect(problems({ finetuning_type: 'prompt', prompt_tuning_init: 'SAMPLE_VOCAB' })[0]).toMatch(/not available in Graft; use "random" or "text"/);
    expect(problems({ finetuning_type: 'prompt', num_virtual_tokens: 0 })[0]).toMatch(/num_virtual_tokens: must be at least 1/);
    expect(problems({ finetuning_type: 'lora', num_virtual_tokens: 8 })).toEqual(['num_virtual_tokens: is only valid with finetuning_type "prompt" (this job has "lora")']);
    expect(problems({ finetuning_type: 'prompt', stage: 'rm' })[0]).toMatch(/cannot train a reward model/);
    expect(decays(PROMPT_EMBEDDINGS)).toBe(true);
  });
});

describe('prompt tuning on the tiny Llama', () => {
  it('trains only prompt_embeddings: the loss falls, every base weight is bit-identical', async () => {
    const { lm } = await fixtureModel();
    const before = await baseWeights(lm);
    const train = alpacaExamples(lm, 4);
    const job = settings({ finetuning_type: 'prompt', num_virtual_tokens: 6, learning_rate: 3e-2, max_steps: 6 });
    const trainer = Trainer.create({ model: lm.model, settings: job, train, padTokenId: 0 });
    expect(trainer.params.map((p) => [p.name, p.shape])).toEqual([[PROMPT_EMBEDDINGS, [6, 64]]]);
    expect(lm.model.adapter).not.toBeNull();
    const start = (await trainer.trainableWeights()).get(PROMPT_EMBEDDINGS)!;
    const result = await trainer.run();
    const losses = result.metrics.map((m) => m.loss);
    console.log(`prompt tuning losses: ${losses.map((l) => l.toFixed(4)).join(' ')}`);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[5]!).toBeLessThan(losses[0]! - 0.05);
    const end = (await trainer.trainableWeights()).get(PROMPT_EMBEDDINGS)!;
    expect(end).not.toEqual(start);
    const after = await baseWeights(lm);
    for (const [name, w] of before) expect(after.get(name), name).toEqual(w);
    trainer.dispose();
    expect(lm.model.adapter).toBeNull();
  });

  it('TEXT init starts at the token embeddings of the init ids, repeated and cut to n', async () => {
    const { lm } = await fixtureModel();
    const ids = lm.tokenizer.encode('Answer briefly:', { addSpecialTokens: true });
    const job = settings({ finetuning_type: 'prompt', num_virtual_tokens: 13, prompt_tuning_init_text: 'Answer briefly:', max_steps: 1 });
    const trainer = Trainer.create({ model: lm.model, settings: job, train: alpacaExamples(lm, 2), padTokenId: 0, promptInitIds: ids });
    const start = (await trainer.trainableWeights()).get(PROMPT_EMBEDDINGS)!;
    const table = (await baseWeights(lm)).get('model.embed_tokens.weight')!;
    const want = new Float32Array(13 * 64);
    textInitIds(ids, 13).forEach((id, j) => want.set(table.subarray(id * 64, (id + 1) * 64), j * 64));
    expect(ids.length).toBeLessThan(13); // so the ids repeat, then are cut
    expect(start).toEqual(want);
    trainer.dispose();
    expect(() => Trainer.create({ model: lm.model, settings: job, train: alpacaExamples(lm, 2), padTokenId: 0 })).toThrow(/prompt_tuning_init_text: was not tokenized/);
  });

  it('refuses an example that does not fit after the virtual tokens, naming them', async () => {
    const { ctx, lm } = await fixtureModel();
    const { loadModel } = await import('../../src/model/load');
    const { folderSource } = await import('../../src/cli/folder-source');
    const small = await loadModel(ctx, await folderSource('test/fixtures/tiny-llama'), { maxPositions: 40 });
    const train = [{ inputIds: Array.from({ length: 30 }, (_, i) => 5 + i), labels: Array.from({ length: 30 }, (_, i) => 5 + i) }];
    const job = settings({ finetuning_type: 'prompt', num_virtual_tokens: 12, max_steps: 1, per_device_train_batch_size: 1 });
    expect(() => Trainer.create({ model: small.model, settings: job, train, padTokenId: 0 })).toThrow(
      /cutoff_len: an example has 30 tokens, more than the model instance holds \(28 after the prompt adapter's 12 virtual tokens\)/,
    );
    expect(small.model.adapter).toBeNull(); // the failed setup let go of its embeddings
    small.dispose();
    expect(lm.model.adapter).toBeNull();
  });
});

describe('prompt tuning: resume and DPO', () => {
  it('3 steps straight equal 2 + stop + resume 1; the checkpoint folder is the PEFT PROMPT_TUNING adapter', async () => {
    const { lm } = await fixtureModel();
    const train = shortExamples(lm, 6);
    const s = settings({ finetuning_type: 'prompt', num_virtual_tokens: 4, learning_rate: 3e-2, per_device_train_batch_size: 2, max_steps: 3, save_strategy: 'steps', save_steps: 100 });
    const { straight, stopped, files, resumed } = await stopAndResume(lm, s, train, 2);
    expect(stopped.metrics).toHaveLength(2);
    const saved = decodeCheckpoint(files, 'memory').weights.get(PROMPT_EMBEDDINGS)!;
    const folder = await readPromptAdapter(memorySource('checkpoint-2', files), lm.config);
    expect([folder.numVirtualTokens, folder.tokenDim]).toEqual([4, 64]);
    expect(folder.embeddings).toEqual(saved);
    expect(resumed.metrics.map((m) => m.loss)).toEqual(straight.metrics.map((m) => m.loss));
    expect(resumed.weights.get(PROMPT_EMBEDDINGS)).toEqual(straight.weights.get(PROMPT_EMBEDDINGS));
    expect(straight.weights.get(PROMPT_EMBEDDINGS)).not.toEqual(saved);
  });

  it('DPO without a reference copy: the reference log-probs are the base model’s, and the margin grows', async () => {
    const { lm } = await fixtureModel();
    const text = readFileSync(new URL('../fixtures/data/dpo.json', import.meta.url), 'utf8');
    const train = preparePreferenceData(parsePreferenceText(text, 'dpo.json').records.slice(0, 2), lm.tokenizer, lm.template, { cutoffLen: 40, shuffle: false }).train;
    const s = settings({ stage: 'dpo', finetuning_type: 'prompt', num_virtual_tokens: 4, per_device_train_batch_size: 2, max_steps: 4, learning_rate: 3e-2, dataset: 'dpo.json' });
    const trainer = Trainer.create({ model: lm.model, settings: s, train, padTokenId: lm.tokenizer.padTokenId ?? 0 });
    await trainer.prepare();
    const dpo = trainer.objective as DpoObjective;
    const ref = dpo.referenceLogps!;
    const prompt = lm.model.adapter;
    expect(prompt?.kind).toBe('prompt');
    lm.model.setAdapter(null);
    const base = await dpo.sequenceLogps('policy');
    lm.model.setAdapter(prompt);
    expect([...ref.chosen, ...ref.rejected]).toEqual([...base.chosen, ...base.rejected]);
    const policy = await dpo.sequenceLogps('policy');
    expect([...policy.chosen]).not.toEqual([...ref.chosen]); // the random prompt moves the policy off the base
    const result = await trainer.run();
    const margins = result.metrics.map((m) => (m as unknown as Record<string, number>)['rewards/margins']!);
    expect(margins.every(Number.isFinite)).toBe(true);
    expect(margins[3]!).toBeGreaterThan(margins[0]!);
    trainer.dispose();
    expect(lm.model.adapter).toBeNull();
  });
});
