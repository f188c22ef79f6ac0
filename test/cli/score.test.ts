// graft score and graft train --stage rm: a reward model exported from a live one (LoRA on the fixture, merged on
// export) is rated by `graft score` exactly as the live model rates the same pair; a reward model trained by
// `graft train --stage rm` is a sequence-classification folder with the RM metrics; usage errors and a folder that
// is not a reward model fail in one line. The commands run in this process (test/helpers/graft-in-process.ts), on
// the one GPU device the file's live model uses too, so the kernels compile once for the file.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { folderSource } from '../../src/cli/folder-source';
import { writeJobResult } from '../../src/cli/folder-sink';
import { buildResult } from '../../src/job/results';
import { encodeConversation } from '../../src/data/encode';
import { parsePreferenceText, preparePreferenceData } from '../../src/data/preference';
import type { RewardObjective } from '../../src/train/objectives';
import { Trainer } from '../../src/train/trainer';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { FIXTURE, fixtureModel, initAdapter, settings } from '../train/helpers';
import { lines } from './run';


const scratch = mkdtempSync(join(tmpdir(), 'graft-score-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const PROMPT = 'How do I store medicine safely at home?';
const ANSWER = 'Keep it in the original box, locked, away from children.';

describe('graft score', () => {
  it('rates a prompt/answer pair as the live reward model does', async () => {
    const { lm } = await fixtureModel();
    const pairs = preparePreferenceData(parsePreferenceText(readFileSync('test/fixtures/data/dpo.json', 'utf8'), 'dpo.json').records.slice(0, 2), lm.tokenizer, lm.template, {
      cutoffLen: 40,
      shuffle: false,
    }).train;
    const s = settings({ stage: 'rm', dataset: 'dpo.json', seed: 7 });
    // LoRA from init_adapter (non-zero B) so that the export really merges, and a freshly drawn head.
    const trainer = Trainer.create({ model: lm.model, settings: s, train: pairs, padTokenId: lm.tokenizer.padTokenId ?? 0, startingAdapter: await initAdapter(lm), initializerRange: 0.5 });
    const dir = join(scratch, 'live');
    mkdirSync(dir, { recursive: true });
    await writeJobResult(dir, await buildResult(trainer, lm, await folderSource(FIXTURE), 'tiny-llama', s));
    const ids = encodeConversation(
      { messages: [{ role: 'user', content: PROMPT }, { role: 'assistant', content: ANSWER }] },
      lm.tokenizer,
      lm.template,
      { cutoffLen: lm.maxPositions },
    ).inputIds;
    const [live] = await (trainer.objective as RewardObjective).score([ids]);
    trainer.dispose();

    const r = await graft(['score', '--model', dir, '--prompt', PROMPT, '--answer', ANSWER, '--json']);
    expect(r.code, r.graftStderr).toBe(0);
    const out = JSON.parse(r.stdout) as { reward: number; tokens: number; truncated: boolean };
    expect(out.tokens).toBe(ids.length);
    expect(out.truncated).toBe(false);
    expect(Math.abs(out.reward - live!), `graft score ${out.reward} vs live ${live}`).toBeLessThan(1e-4 + 1e-4 * Math.abs(live!));
    expect(Math.abs(live!)).toBeGreaterThan(1e-3); // a real number, not a zero head
  });

  it('refuses a missing --answer and a model that is not a reward model, in one line', async () => {
    const usage = await graft(['score', '--model', FIXTURE, '--prompt', 'Hi']);
    expect(usage.code).toBe(2);
    expect(lines(usage.graftStderr)).toEqual([expect.stringMatching(/--answer "\.\.\." is required/) as unknown as string]);
    const notRm = await graft(['score', '--model', FIXTURE, '--prompt', 'Hi', '--answer', 'Hello']);
    expect(notRm.code).not.toBe(0);
    expect(lines(notRm.graftStderr).at(-1)).toMatch(/is not a reward model: its config\.json names LlamaForCausalLM/);
  });
});

describe('graft train --stage rm', () => {
  it('writes a sequence-classification reward model, its adapter and the RM metrics', async () => {
    const out = join(scratch, 'cli-rm');
    const r = await graft([
      'train', '--stage', 'rm', '--model', FIXTURE, '--dataset', 'test/fixtures/data/dpo.json', '--max_samples', '4', '--cutoff_len', '40',
      '--per_device_train_batch_size', '2', '--max_steps', '2', '--learning_rate', '1e-2', '--lora_rank', '2', '--save_strategy', 'no', '--output_dir', out,
    ]);
    expect(r.code, r.graftStderr).toBe(0);
    expect(r.graftStderr).toMatch(/reward model with lora .* 4 training pairs, 2 steps/);
    const metrics = lines(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).map((l) => JSON.parse(l) as Record<string, number>);
    expect(metrics.map((m) => m.step)).toEqual([1, 2]);
    for (const k of ['loss', 'grad_norm', 'pairs', 'rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies']) expect(metrics[0], k).toHaveProperty([k]);
    expect(metrics[0]!.pairs).toBe(2);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))).toMatchObject({ architectures: ['LlamaForSequenceClassification'], num_labels: 1 });
    for (const f of ['model.safetensors', 'tokenizer.json', 'adapter/adapter_config.json', 'adapter/adapter_model.safetensors']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(existsSync(join(out, 'adapter_config.json'))).toBe(false); // transformers would read the folder as an adapter
  });
});
