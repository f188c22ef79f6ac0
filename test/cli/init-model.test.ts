// graft init-model: a small random Llama in Hugging Face format, written without any network, that the model
// layer loads and generates with; the same seed writes the same bytes, and the committed demo model
// (public/demo/model) is exactly what the documented command writes. Usage mistakes end with one line.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { SafetensorsFile } from '../../src/model/safetensors';
import { lines, REPO_ROOT, runGraft } from './run';

let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'graft-init-model-'));
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

describe('graft init-model', () => {
  it('writes a Llama folder with the ChatML template, loadable and generating, deterministic by seed', async () => {
    const out = join(scratch, 'm1');
    const r = await runGraft(['init-model', '--out', out, '--hidden', '32', '--layers', '3', '--heads', '4', '--kv-heads', '2', '--seed', '7']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(out);
    expect(lines(r.graftStderr)).toEqual([expect.stringMatching(/^graft init-model: LlamaForCausalLM, hidden 32, 3 layers, 4 heads \(2 key\/value\), intermediate 96, vocab 512: [\d,]+ parameters, F32, seed 7/)]);
    expect(readdirSync(out).sort()).toEqual(FILES);

    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    const cfg = parseConfig(config);
    expect(cfg).toMatchObject({ architecture: 'LlamaForCausalLM', hiddenSize: 32, numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 96, vocabSize: 512, tieWordEmbeddings: true });
    const tokConfig = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')) as Record<string, string>;
    expect(tokConfig.chat_template).toContain('<|im_start|>');
    expect(tokConfig.eos_token).toBe('<|im_end|>');
    expect(readFileSync(join(out, 'tokenizer.json'))).toEqual(readFileSync(join(REPO_ROOT, 'test/fixtures/tiny-llama/tokenizer.json')));

    // Every tensor a tied Llama has, with its shape; weights ~ N(0, 0.02²), norms 1.
    const st = new SafetensorsFile(new Uint8Array(readFileSync(join(out, 'model.safetensors'))), 'model.safetensors');
    expect(st.names).toHaveLength(1 + 3 * 9 + 1);
    expect(st.info('model.embed_tokens.weight').shape).toEqual([512, 32]);
    expect(st.info('model.layers.2.self_attn.k_proj.weight').shape).toEqual([16, 32]);
    expect(st.info('model.layers.0.mlp.down_proj.weight').shape).toEqual([32, 96]);
    expect([...st.float32('model.norm.weight')].every((v) => v === 1)).toBe(true);
    const w = st.float32('model.layers.1.mlp.up_proj.weight');
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(0.017);
    expect(std).toBeLessThan(0.023);

    // The same seed writes the same bytes; another seed other weights.
    const again = join(scratch, 'm2');
    expect((await runGraft(['init-model', '--out', again, '--hidden', '32', '--layers', '3', '--heads', '4', '--kv-heads', '2', '--seed', '7'])).code).toBe(0);
    for (const f of FILES) expect(readFileSync(join(again, f)), f).toEqual(readFileSync(join(out, f)));
    const other = join(scratch, 'm3');
    expect((await runGraft(['init-model', '--out', other, '--hidden', '32', '--layers', '3', '--heads', '4', '--kv-heads', '2', '--seed', '8'])).code).toBe(0);
    expect(readFileSync(join(other, 'model.safetensors'))).not.toEqual(readFileSync(join(out, 'model.safetensors')));

    // The model layer loads it and generates with the chat template.
    const gen = await runGraft(['generate', '--model', out, '--chat', '--greedy', '--max-new-tokens', '5', '--ignore-eos', '--prompt', 'Hello', '--json'], { timeoutMs: 90_000 });
    expect(gen.code, gen.stderr).toBe(0);
    const result = JSON.parse(gen.stdout) as { prompt_ids: number[]; new_ids: number[] };
    expect(result.prompt_ids[0]).toBe(1); // <|im_start|>
    expect(result.new_ids).toHaveLength(5);
  }, 120_000);

  it('the committed demo model is what the documented command writes, and stays small', async () => {
    const out = join(scratch, 'demo');
    const r = await runGraft(['init-model', '--out', out, '--hidden', '64', '--layers', '2', '--init-std', '0.1', '--seed', '1']);
    expect(r.code, r.stderr).toBe(0);
    const demo = join(REPO_ROOT, 'public/demo/model');
    expect(readdirSync(demo).sort()).toEqual(FILES);
    for (const f of FILES) expect(readFileSync(join(out, f)), f).toEqual(readFileSync(join(demo, f)));
    const bytes = FILES.reduce((s, f) => s + statSync(join(demo, f)).size, 0);
    expect(bytes).toBeLessThan(2 * 1024 * 1024);
    // F16 halves the weights.
    const half = join(scratch, 'half');
    expect((await runGraft(['init-model', '--out', half, '--dtype', 'F16'])).code).toBe(0);
    expect(new SafetensorsFile(new Uint8Array(readFileSync(join(half, 'model.safetensors'))), 'x').info('model.norm.weight').dtype).toBe('F16');
  });

  it('refuses an existing model without --force, and bad sizes, with one line', async () => {
    const out = join(scratch, 'm1');
    const again = await runGraft(['init-model', '--out', out]);
    expect(again.code).toBe(1);
    expect(lines(again.graftStderr)).toEqual([`graft: ${out} already holds a model; pass --force to overwrite it, or choose another --out.`]);
    expect((await runGraft(['init-model', '--out', out, '--force'])).code).toBe(0);

    const cases: [string[], RegExp][] = [
      [[], /--out <dir> is required/],
      [['--out', join(scratch, 'x'), '--hidden', '30', '--heads', '4'], /--hidden 30 must be a multiple of --heads 4/],
      [['--out', join(scratch, 'x'), '--heads', '4', '--kv-heads', '3'], /--heads 4 must be a multiple of --kv-heads 3/],
      [['--out', join(scratch, 'x'), '--layers', '0'], /--layers must be an integer of at least 1, not "0"/],
      [['--out', join(scratch, 'x'), '--dtype', 'F8'], /--dtype must be F32, F16 or BF16/],
    ];
    for (const [args, message] of cases) {
      const r = await runGraft(['init-model', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(lines(r.graftStderr)).toHaveLength(1);
      expect(r.graftStderr).toMatch(message);
    }
    const help = await runGraft(['init-model', '--help']);
    expect(help.code).toBe(0);
    for (const f of ['--out', '--hidden', '--layers', '--seed', '--init-std', '--tokenizer']) expect(help.stdout).toContain(f);
    expect((await runGraft(['--help'])).stdout).toContain('init-model');
  });
});
