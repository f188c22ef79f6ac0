import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, exportPeftAdapter, loraScaling, peftAdapterConfig, type LoraModuleWeights } from '../../src/export/peft-adapter';
import { SafetensorsFile } from '../../src/model/safetensors';

const DIR = new URL('../fixtures/tiny-llama/reference/init_adapter/', import.meta.url);
const fixtureBytes = new Uint8Array(readFileSync(new URL('adapter_model.safetensors', DIR)));
const fixtureConfig = JSON.parse(readFileSync(new URL('adapter_config.json', DIR), 'utf8')) as Record<string, unknown>;
const fixture = new SafetensorsFile(fixtureBytes, 'init_adapter/adapter_model.safetensors');

/** The fixture adapter's tensors as the exporter's input. */
function fixtureModules(): Map<string, LoraModuleWeights> {
  const modules = new Map<string, LoraModuleWeights>();
  for (const name of fixture.names) {
    const m = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(name);
    if (!m) continue;
    const path = m[1]!;
    const bName = `base_model.model.${path}.lora_B.weight`;
    const aInfo = fixture.info(name);
    const bInfo = fixture.info(bName);
    modules.set(path, {
      a: fixture.float32(name),
      aShape: aInfo.shape as [number, number],
      b: fixture.float32(bName),
      bShape: bInfo.shape as [number, number],
    });
  }
  return modules;
}

const input = () => ({
  baseModel: 'tiny-llama',
  r: 4,
  alpha: 8,
  dropout: 0,
  targetModules: fixtureConfig.target_modules as string[],
  modules: fixtureModules(),
});

describe('exportPeftAdapter', () => {
  it("has exactly the fixture adapter's tensor names, shapes and dtypes", () => {
    const files = exportPeftAdapter(input());
    expect([...files.keys()].sort()).toEqual([ADAPTER_CONFIG, ADAPTER_WEIGHTS]);
    const out = new SafetensorsFile(files.get(ADAPTER_WEIGHTS)!, ADAPTER_WEIGHTS);
    expect(out.names.slice().sort()).toEqual(fixture.names.slice().sort());
    expect(out.names).toHaveLength(28); // 2 layers × 7 projections × (A, B)
    for (const name of fixture.names) {
      expect(out.info(name).shape, name).toEqual(fixture.info(name).shape);
      expect(out.info(name).dtype, name).toBe('F32');
    }
    expect(out.header.metadata).toEqual(fixture.header.metadata);
  });

  it('reproduces the fixture tensors byte for byte (the whole file, as the safetensors writer lays it out)', () => {
    const out = new SafetensorsFile(exportPeftAdapter(input()).get(ADAPTER_WEIGHTS)!, ADAPTER_WEIGHTS);
    for (const name of fixture.names) expect(Buffer.from(out.raw(name)).equals(Buffer.from(fixture.raw(name))), name).toBe(true);
    // Sorted names, {"format": "pt"} metadata and space padding are what safetensors' own writer produces, so
    // the files match entirely (a header in another order would still be a valid, equivalent file).
    expect(Buffer.from(out.bytes).equals(Buffer.from(fixtureBytes))).toBe(true);
  });

  it("writes adapter_config.json with PEFT's fields and values for the fixture adapter", () => {
    const config = JSON.parse(new TextDecoder().decode(exportPeftAdapter(input()).get(ADAPTER_CONFIG)!)) as Record<string, unknown>;
    // every field written is one PEFT wrote for the fixture, with the same value
    for (const [k, v] of Object.entries(config)) expect(fixtureConfig[k], k).toEqual(v);
    expect(config).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, bias: 'none', inference_mode: true, use_rslora: false, fan_in_fan_out: false });
    // the fields PEFT 0.21 added after 0.10 are the only ones left out
    const missing = Object.keys(fixtureConfig).filter((k) => !(k in config));
    expect(missing.sort()).toEqual(
      [
        'alora_invocation_tokens', 'arrow_config', 'corda_config', 'ensure_weight_tying', 'eva_config', 'exclude_modules', 'kasa_config', 'lora_bias',
        'lora_ga_config', 'monteclora_config', 'peft_version', 'qalora_group_size', 'target_parameters', 'trainable_token_indices', 'use_bdlora',
        'use_qalora', 'velora_config',
      ].sort(),
    );
  });

  it('sets fan_in_fan_out for GPT-2, rsLoRA, dropout and the revision', () => {
    const c = peftAdapterConfig({ baseModel: 'openai-community/gpt2', revision: 'v1', r: 8, alpha: 16, useRslora: true, dropout: 0.05, targetModules: ['c_attn'], fanInFanOut: true });
    expect(c).toMatchObject({ base_model_name_or_path: 'openai-community/gpt2', revision: 'v1', fan_in_fan_out: true, use_rslora: true, lora_dropout: 0.05, target_modules: ['c_attn'] });
  });

  it('refuses inconsistent shapes, prefixed paths and an empty adapter', () => {
    const one = (m: Partial<LoraModuleWeights>, path = 'model.layers.0.self_attn.q_proj') =>
      exportPeftAdapter({
        baseModel: 'x',
        r: 2,
        alpha: 4,
        targetModules: ['q_proj'],
        modules: new Map([[path, { a: new Float32Array(6), aShape: [2, 3], b: new Float32Array(8), bShape: [4, 2], ...m } as LoraModuleWeights]]),
      });
    expect(() => one({})).not.toThrow();
    expect(() => one({ aShape: [3, 2] })).toThrow(/but r is 2/);
    expect(() => one({ b: new Float32Array(7) })).toThrow(/lora_B holds 7 values/);
    expect(() => one({}, 'base_model.model.model.layers.0.self_attn.q_proj')).toThrow(/without "base_model.model."/);
    expect(() => one({}, 'model.layers.0.self_attn.q_proj.weight')).toThrow(/not a module path/);
    expect(() => exportPeftAdapter({ baseModel: 'x', r: 2, alpha: 4, targetModules: [], modules: new Map() })).toThrow(/no modules/);
  });
});

describe('loraScaling', () => {
  it('is alpha / r, or alpha / sqrt(r) with rsLoRA', () => {
    expect(loraScaling(4, 8)).toBe(2);
    expect(loraScaling(16, 8, true)).toBe(2);
  });
});
