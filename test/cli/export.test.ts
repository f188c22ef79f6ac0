// `graft export` (LLaMA-Factory's export stage): the fixture's init_adapter merged into tiny-llama and written as a
// sharded Hugging Face folder; Graft loads it back and its logits equal PEFT's base + adapter merged
// (reference/merged_logits.safetensors, from scripts/fixtures/merged_export.py, which also checks that transformers
// loads the same folder to within 1e-5). The export keys Graft cannot honour are refused with the reason.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { folderSource } from '../../src/cli/folder-source';
import { loadModel } from '../../src/model/load';
import { SafetensorsFile } from '../../src/model/safetensors';
import { uploadBatch } from '../../src/model/transformer';
import { expectClose } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { graftInProcess as graft } from '../helpers/graft-in-process';

const scratch = mkdtempSync(join(tmpdir(), 'graft-cli-export-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const FIXTURE = 'test/fixtures/tiny-llama';
const MERGED_IDS = [[1, 316, 201, 362, 310, 223, 46, 81, 52, 35, 33, 2, 201, 1, 318, 201, 107, 351, 294, 422], [203, 290, 2, 239, 451, 327, 163, 54, 121, 360, 272, 272, 50, 322, 463, 276, 462, 38, 40, 483]];

describe('graft export', () => {
  it("merges a LoRA adapter from LLaMA-Factory's merge_lora.yaml keys into sharded safetensors that load to PEFT's merged logits", async () => {
    const out = join(scratch, 'merged');
    const job = join(scratch, 'merge_lora.yaml');
    writeFileSync(job, [`model_name_or_path: ${FIXTURE}`, `adapter_name_or_path: ${FIXTURE}/reference/init_adapter`, 'template: chatml', 'finetuning_type: lora', `export_dir: ${out}`, 'export_size: 5', 'export_device: cpu', 'export_legacy_format: false', ''].join('\n'));
    const r = await graft(['export', job, '--export_size', '0.0002']);
    expect(r.code, r.graftStderr).toBe(0);
    expect(r.graftStderr).toMatch(/note: template: the tokenizer files, with the model's chat template, are copied/);
    expect(readdirSync(out).sort()).toEqual([
      'config.json', 'generation_config.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json',
    ]);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    expect(Object.keys(index.weight_map)).toHaveLength(20);

    const ctx = await testContext();
    const lm = await loadModel(ctx, await folderSource(out, 'model'));
    try {
      const acts = lm.model.forward(uploadBatch(ctx, MERGED_IDS));
      const got = await ctx.readF32(acts.logits);
      const want = new SafetensorsFile(new Uint8Array(readFileSync(`${FIXTURE}/reference/merged_logits.safetensors`)), 'merged_logits.safetensors').float32('logits');
      expectClose('merged logits', got, want, { atol: 1e-5, rtol: 1e-4 });
      acts.release?.();
    } finally {
      lm.dispose();
    }
  });

  it('refuses what it cannot honour, with the reason', async () => {
    const base = ['export', '--model', FIXTURE, '--export_dir', join(scratch, 'x')];
    expect((await graft([...base, '--export_quantization_bit', '4'])).graftStderr).toMatch(/export_quantization_bit: Graft writes unquantized models/);
    expect((await graft([...base, '--export_legacy_format'])).graftStderr).toMatch(/export_legacy_format: true would write PyTorch \.bin files/);
    expect((await graft([...base, '--finetuning_type', 'freeze'])).graftStderr).toMatch(/only a LoRA adapter merges into the weights/);
    expect((await graft(['export', '--model', FIXTURE])).graftStderr).toMatch(/export_dir is required/);
  });
});
