// `graft train --finetuning_type adapter` and `graft generate` with several adapters, run in this process on one
// GPU device for the file (test/helpers/graft-in-process.ts), so the ten commands compile their kernels once: the
// run writes the bottleneck adapter folder (and no LLaMA-Factory job), its losses go down, and generate loads it
// beside a LoRA adapter of the same base (graft info describes it) and generates with the one --use names — the adapter's greedy tokens
// differ from the base's, and the same adapter gives the same tokens whether loaded alone or with others.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { lines } from './run';
import { ALPACA, FIXTURE } from '../train/helpers';


const scratch = mkdtempSync(join(tmpdir(), 'graft-cli-adapter-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Two records, one batch, a constant rate: every step sees the same batch, so the loss must fall. */
const FAST = ['--model', FIXTURE, '--dataset', ALPACA, '--cutoff_len', '64', '--max_samples', '2', '--per_device_train_batch_size', '2', '--learning_rate', '1e-2', '--lr_scheduler_type', 'constant', '--max_steps', '8'];

describe('graft train / generate with bottleneck adapters', () => {
  it('trains and exports an adapter, and generate switches between adapters on one base', async () => {
    const out = join(scratch, 'houlsby');
    const r = await graft(['train', ...FAST, '--finetuning_type', 'adapter', '--adapter_placement', 'houlsby', '--reduction_factor', '8', '--output_dir', out]);
    expect(r.code, r.graftStderr).toBe(0);
    // 2 layers × 2 sites × (down 8×64 + 8 + up 64×8 + 64) = 4,384
    expect(r.graftStderr).toMatch(/adapter on LlamaForCausalLM \(4,384 trainable parameters\)/);
    expect(r.graftStderr).toMatch(/no LLaMA-Factory job \(train\.yaml\) is written/);
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ adapter_type: 'bottleneck', placement: 'houlsby', reduction_factor: 8, bottleneck_size: 8, non_linearity: 'relu', hidden_size: 64, num_layers: 2 });
    const losses = lines(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).map((l) => (JSON.parse(l) as { loss: number }).loss);
    expect(losses).toHaveLength(8);
    for (let i = 1; i < 8; i++) expect(losses[i]!).toBeLessThan(losses[i - 1]!);
    expect(losses[7]!).toBeLessThan(losses[0]! - 0.5);

    const info = await graft(['info', '--model', FIXTURE, '--adapter', out, '--json']);
    expect(info.code, info.graftStderr).toBe(0);
    expect((JSON.parse(info.stdout) as { adapter: unknown }).adapter).toMatchObject({
      adapterType: 'bottleneck',
      placement: 'houlsby',
      reductionFactor: 8,
      bottleneckSize: 8,
      modules: 4,
      parameters: 4384,
      baseModel: FIXTURE,
    });
    const infoText = await graft(['info', '--model', FIXTURE, '--adapter', out]);
    expect(infoText.stdout).toMatch(/Adapter\s+bottleneck \(houlsby\), size 8 = hidden \/ 8, relu/);

    const lora = join(scratch, 'lora');
    const l = await graft(['train', ...FAST, '--max_steps', '2', '--lora_rank', '2', '--output_dir', lora]);
    expect(l.code, l.graftStderr).toBe(0);

    // The first training record's instruction, which the adapter has seen eight times.
    const prompt = (JSON.parse(readFileSync(ALPACA, 'utf8')) as { instruction: string }[])[0]!.instruction;
    const gen = async (...flags: string[]) => {
      const g = await graft(['generate', '--model', FIXTURE, '--chat', '--prompt', prompt, '--greedy', '-n', '6', '--ignore-eos', '--json', ...flags]);
      expect(g.code, g.graftStderr).toBe(0);
      return (JSON.parse(g.stdout) as { new_ids: number[] }).new_ids;
    };
    const both = ['--adapter', `bn=${out}`, '--adapter', `lo=${lora}`];
    const alone = await gen('--adapter', out);
    const bn = await gen(...both, '--use', 'bn');
    const base = await gen(...both, '--use', 'base');
    expect(bn).toEqual(alone);
    expect(bn).not.toEqual(base);
    expect(await gen()).toEqual(base);

    const which = await graft(['generate', '--model', FIXTURE, '--prompt', 'x', ...both]);
    expect(which.code).not.toBe(0);
    expect(which.graftStderr).toMatch(/2 adapters are loaded \(bn, lo\); choose one with --use NAME \(or --use base\)/);
    const unknown = await graft(['generate', '--model', FIXTURE, '--prompt', 'x', ...both, '--use', 'other']);
    expect(unknown.graftStderr).toMatch(/--use other names no loaded adapter; loaded: bn, lo \(or base\)/);
  });
});
