// finetuning_type "prompt" on the tiny Llama fixture: the settings (defaults, PEFT's capitals, the rules
// across keys), the only trainable tensor is prompt_embeddings [n, hidden], a few steps lower the loss while every
// base weight stays bit for bit what it was, TEXT init starts at the init ids' token embeddings, too-long
// examples are refused naming the virtual tokens, and a stopped run resumes to the same embeddings.
import { describe, expect, it } from 'vitest';
import { PROMPT_EMBEDDINGS, textInitIds } from '../../src/model/prompt-tuning';
import { decays } from '../../src/train/methods';
import { parseSettings, SettingsError } from '../../src/train/settings';
import { Trainer } from '../../src/train/trainer';
import { alpacaExamples, baseWeights, fixtureModel, settings } from './helpers';

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
