// `graft train --finetuning_type prompt` writes PEFT's PROMPT_TUNING folder (and no
// LLaMA-Factory job, which has no prompt tuning); `graft info --adapter` describes it; `graft generate
// --adapter` on that folder puts the virtual tokens in front of the prompt and generates the same tokens as
// LoadedModel with the folder loaded, which differ from the base model's. The commands run in this process
// (test/helpers/graft-in-process.ts), on the one GPU device the file's LoadedModel uses too.
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { folderSource } from '../../src/cli/folder-source';
import { PROMPT_EMBEDDINGS } from '../../src/model/prompt-tuning';
import { SafetensorsFile } from '../../src/model/safetensors';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { fixtureModel, FIXTURE } from '../train/helpers';


const scratch = mkdtempSync(join(tmpdir(), 'graft-cli-prompt-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('graft train --finetuning_type prompt', () => {
  it('writes the PEFT PROMPT_TUNING folder, which graft generate applies', async () => {
    const out = join(scratch, 'prompt-out');
    const r = await graft([
      'train', '--model', FIXTURE, '--dataset', 'test/fixtures/data/sft_alpaca.json', '--max_samples', '4', '--cutoff_len', '24',
      '--per_device_train_batch_size', '2', '--max_steps', '2', '--learning_rate', '3e-2', '--finetuning_type', 'prompt',
      '--num_virtual_tokens', '5', '--prompt_tuning_init_text', 'Answer briefly:', '--output_dir', out,
    ]);
    expect(r.code, r.graftStderr).toBe(0);
    expect(r.graftStderr).toMatch(/prompt on LlamaForCausalLM \(320 trainable parameters\)/);
    expect(r.graftStderr).toMatch(/LLaMA-Factory has no prompt tuning/);
    expect(r.stdout).toMatch(/wrote adapter_config\.json, adapter_model\.safetensors, metrics\.jsonl/);
    expect(existsSync(join(out, 'train.yaml'))).toBe(false);
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({
      peft_type: 'PROMPT_TUNING',
      task_type: 'CAUSAL_LM',
      num_virtual_tokens: 5,
      token_dim: 64,
      num_attention_heads: 4,
      num_layers: 2,
      num_transformer_submodules: 1,
      prompt_tuning_init: 'TEXT',
      prompt_tuning_init_text: 'Answer briefly:',
      base_model_name_or_path: FIXTURE,
      tokenizer_name_or_path: FIXTURE,
      inference_mode: true,
    });
    const st = new SafetensorsFile(new Uint8Array(readFileSync(join(out, 'adapter_model.safetensors'))), 'adapter_model.safetensors');
    expect(st.names).toEqual([PROMPT_EMBEDDINGS]);
    expect(st.info(PROMPT_EMBEDDINGS).shape).toEqual([5, 64]);

    const info = await graft(['info', '--model', FIXTURE, '--adapter', out, '--json']);
    expect(info.code, info.graftStderr).toBe(0);
    expect((JSON.parse(info.stdout) as { adapter: unknown }).adapter).toEqual({
      dir: out,
      peftType: 'PROMPT_TUNING',
      numVirtualTokens: 5,
      tokenDim: 64,
      init: 'TEXT',
      initText: 'Answer briefly:',
      baseModel: FIXTURE,
      parameters: 320,
    });
    const plain = await graft(['info', '--model', FIXTURE, '--adapter', out]);
    expect(plain.stdout).toMatch(/PROMPT_TUNING, 5 virtual tokens × 64 \(320 parameters\), init TEXT "Answer briefly:", fits this model/);

    const gen = await graft(['generate', '--model', FIXTURE, '--adapter', out, '--prompt', 'Say hello', '--greedy', '-n', '6', '--ignore-eos', '--json']);
    expect(gen.code, gen.graftStderr).toBe(0);
    const cli = JSON.parse(gen.stdout) as { prompt_ids: number[]; new_ids: number[] };
    expect(cli.new_ids).toHaveLength(6);
    // The same adapter through the library (LoadedModel.loadAdapter reads PROMPT_TUNING folders): the same
    // greedy tokens; the base model says something else.
    const { lm } = await fixtureModel();
    const name = await lm.loadAdapter(await folderSource(out, 'adapter'), 'prompt-run');
    expect(lm.getAdapter(name)?.kind).toBe('prompt');
    const lib = await lm.generate(cli.prompt_ids, { maxNewTokens: 6, greedy: true, stopAtEos: false, adapter: name });
    const base = await lm.generate(cli.prompt_ids, { maxNewTokens: 6, greedy: true, stopAtEos: false });
    lm.unloadAdapter(name);
    expect(base.newIds).not.toEqual(cli.new_ids);
    expect(lib.newIds).toEqual(cli.new_ids);
  });
});
