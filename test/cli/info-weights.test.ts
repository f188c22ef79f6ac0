// graft info checks the weights against config.json, as loading would, before anything more is downloaded or
// trained (issue 13): a missing tensor or one of the wrong shape is refused with the loader's sentence; absurd
// config.json values with a sentence naming the setting. And the memory by how the base is held (f32, 16-bit,
// 8-bit, 4-bit), with the precision it would pick when LoRA does not fit the budget otherwise.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, writeSafetensors } from '../../src/model/safetensors';
import { graftInProcess } from '../helpers/graft-in-process';

const FIXTURE = 'test/fixtures/tiny-llama';
const scratch = mkdtempSync(join(tmpdir(), 'graft-info-weights-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The fixture folder with model.safetensors rewritten by `edit` (and config.json by `config`). */
function variant(name: string, edit: (names: string[]) => { drop?: string; reshape?: string }, config?: (c: Record<string, unknown>) => void): string {
  const dir = join(scratch, name);
  cpSync(FIXTURE, dir, { recursive: true, filter: (src) => !src.includes('reference') });
  const st = new SafetensorsFile(new Uint8Array(readFileSync(join(FIXTURE, 'model.safetensors'))), 'model.safetensors');
  const { drop, reshape } = edit(st.names);
  const tensors = st.names
    .filter((n) => n !== drop)
    .map((n) => {
      const data = st.float32(n);
      const shape = n === reshape ? [data.length] : st.info(n).shape;
      return { name: n, dtype: 'F32' as const, shape, data };
    });
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors));
  if (config) {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    config(c);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
  }
  return dir;
}

describe('graft info checks the model before anyone downloads more or trains', () => {
  it('refuses a missing tensor and one of the wrong shape with the loader\'s sentence', async () => {
    const missing = variant('missing', () => ({ drop: 'model.layers.1.mlp.up_proj.weight' }));
    const r = await graftInProcess(['info', '--model', missing]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/The checkpoint has no tensor "model\.layers\.1\.mlp\.up_proj\.weight", which a LlamaForCausalLM with this config\.json needs \(shape \[176, 64\]\)/);
    expect(r.stderr).not.toMatch(/RangeError|at .*\.ts:/);

    const wrong = variant('wrong-shape', () => ({ reshape: 'model.layers.0.self_attn.k_proj.weight' }));
    const w = await graftInProcess(['info', '--model', wrong]);
    expect(w.code).not.toBe(0);
    expect(w.stderr).toMatch(/Weight "model\.layers\.0\.self_attn\.k_proj\.weight" has shape \[2048\], but config\.json implies \[32, 64\]/);
  });

  it('refuses absurd config.json values naming the setting', async () => {
    const dir = variant('absurd', () => ({}), (c) => (c.num_hidden_layers = 1e9));
    const r = await graftInProcess(['info', '--model', dir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/config\.json: "num_hidden_layers" is 1000000000, more than any model Graft can load has/);
    expect(r.stderr).not.toMatch(/RangeError|Invalid array length/);
  });

  it('shows LoRA memory by base precision; --budget picks a 4-bit base when nothing else fits, saying so', async () => {
    const r = await graftInProcess(['info', '--model', FIXTURE, '--budget', '1.75MiB', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      model: { estimates: { defaultPrecision: string; loraTrainByPrecision: Record<string, number> } };
      fit: { defaultPrecision: string; loraMaxSeqLen: number; loraMaxSeqLenByPrecision: Record<string, number>; pick?: { precision: string; maxSeqLen: number; sentence: string } };
    };
    const by = report.model.estimates.loraTrainByPrecision;
    expect(report.model.estimates.defaultPrecision).toBe('f32'); // the fixture is stored F32
    expect(by['f32']!).toBeGreaterThan(by['16-bit']!);
    expect(by['16-bit']!).toBeGreaterThan(by['8-bit']!);
    expect(by['8-bit']!).toBeGreaterThan(by['4-bit']!);
    expect(report.fit.loraMaxSeqLen).toBe(0);
    expect(report.fit.loraMaxSeqLenByPrecision['4-bit']).toBeGreaterThan(0);
    expect(report.fit.pick?.precision).toBe('4-bit');
    expect(report.fit.pick?.sentence).toMatch(/^LoRA does not fit 1\.8 MiB with f32 weights; with quantization_bit 4 \(QLoRA: a 4-bit NF4 base\) it fits up to \d+ tokens\.$/);
    const text = await graftInProcess(['info', '--model', FIXTURE, '--budget', '1.75MiB']);
    expect(text.stdout).toMatch(/LoRA training by how the base is held/);
    expect(text.stdout).toMatch(/  4-bit\s+[\d.]+ MiB\s+\(quantization_bit 4 \(QLoRA\)\)/);
    expect(text.stdout).toMatch(/LoRA does not fit 1\.8 MiB with f32 weights; with quantization_bit 4/);
  });
});
