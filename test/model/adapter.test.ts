// PEFT LoRA adapter folders: the fixture adapters read and check against tiny-llama; broken and foreign
// adapters are refused with messages that say why. (Applying adapters on the GPU: load.test.ts.)
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { linearModules, parsePeftConfig, readAdapter, defaultAdapterName } from '../../src/model/adapter';
import { parseConfig } from '../../src/model/config';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/model/safetensors';
import { memorySource, ModelError } from '../../src/model/source';

const dir = new URL('../fixtures/tiny-llama/', import.meta.url);
const cfg = parseConfig(JSON.parse(readFileSync(new URL('config.json', dir), 'utf8')));

function adapterFiles(which: 'init_adapter' | 'final_adapter'): Record<string, Uint8Array> {
  const d = new URL(`reference/${which}/`, dir);
  return Object.fromEntries(readdirSync(d).map((f) => [f, new Uint8Array(readFileSync(new URL(f, d)))]));
}

const initConfig = () => JSON.parse(new TextDecoder().decode(adapterFiles('init_adapter')['adapter_config.json'])) as Record<string, unknown>;

function tensorsOf(bytes: Uint8Array): TensorToWrite[] {
  const st = new SafetensorsFile(bytes, 'adapter_model.safetensors');
  return st.names.map((n) => ({ name: n, dtype: st.info(n).dtype, shape: st.info(n).shape, data: st.raw(n) }));
}

/** The init adapter with its config and tensors edited. */
function variant(edit: { config?: Record<string, unknown>; tensors?: (t: TensorToWrite[]) => TensorToWrite[] }) {
  const files = adapterFiles('init_adapter');
  const config = { ...initConfig(), ...edit.config };
  const tensors = (edit.tensors ?? ((t) => t))(tensorsOf(files['adapter_model.safetensors']!));
  return memorySource('my-adapter', { 'adapter_config.json': JSON.stringify(config), 'adapter_model.safetensors': writeSafetensors(tensors) });
}

async function rejects(p: Promise<unknown>, re: RegExp, code = 'bad-adapter'): Promise<void> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e, 'should have thrown').toBeInstanceOf(ModelError);
  expect((e as ModelError).code).toBe(code);
  expect((e as Error).message).toMatch(re);
}

describe('PEFT adapter folders', () => {
  it('reads the fixture init_adapter: r 4, alpha 8, all seven projections of both layers', async () => {
    const a = await readAdapter(memorySource('init_adapter', adapterFiles('init_adapter')), cfg);
    expect(a.config).toMatchObject({ r: 4, alpha: 8, useRslora: false, fanInFanOut: false, baseModel: 'tiny-llama' });
    expect([...a.modules.keys()].sort()).toEqual([...linearModules(cfg).keys()].sort());
    expect(a.modules.size).toBe(14);
    const q = a.modules.get('model.layers.0.self_attn.q_proj')!;
    expect([q.inFeatures, q.outFeatures, q.a.length, q.b.length]).toEqual([64, 64, 4 * 64, 64 * 4]);
    const down = a.modules.get('model.layers.1.mlp.down_proj')!;
    expect([down.a.length, down.b.length]).toEqual([4 * 176, 64 * 4]);
    // Values are the file's.
    const st = new SafetensorsFile(adapterFiles('init_adapter')['adapter_model.safetensors']!, 'x');
    expect([...q.b]).toEqual([...st.float32('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')]);
    expect(q.b.some((v) => v !== 0)).toBe(true);
  });

  it('reads final_adapter too, and the .default infix of older PEFT files', async () => {
    const a = await readAdapter(memorySource('final_adapter', adapterFiles('final_adapter')), cfg);
    expect(a.modules.size).toBe(14);
    const old = variant({ tensors: (ts) => ts.map((t) => ({ ...t, name: t.name.replace('.weight', '.default.weight') })) });
    expect((await readAdapter(old, cfg)).modules.size).toBe(14);
  });

  it('refuses non-LoRA, DoRA, rank/alpha patterns and other PEFT features it cannot apply', async () => {
    await rejects(readAdapter(variant({ config: { peft_type: 'IA3' } }), cfg), /IA3 adapter.*LoRA adapters only/);
    await rejects(readAdapter(variant({ config: { peft_type: undefined } }), cfg), /no peft_type/);
    await rejects(readAdapter(variant({ config: { use_dora: true } }), cfg), /DoRA/);
    await rejects(readAdapter(variant({ config: { rank_pattern: { q_proj: 8 } } }), cfg), /rank_pattern/);
    await rejects(readAdapter(variant({ config: { alpha_pattern: { q_proj: 16 } } }), cfg), /alpha_pattern/);
    await rejects(readAdapter(variant({ config: { modules_to_save: ['lm_head'] } }), cfg), /modules_to_save/);
    await rejects(readAdapter(variant({ config: { lora_bias: true } }), cfg), /biases/);
    await rejects(readAdapter(variant({ config: { r: 0 } }), cfg), /r in adapter_config\.json is 0/);
    // DoRA magnitudes in the file even without the flag.
    const mag = { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector', dtype: 'F32' as const, shape: [64], data: new Float32Array(64) };
    await rejects(readAdapter(variant({ tensors: (ts) => [...ts, mag] }), cfg), /DoRA/);
    const emb = { name: 'base_model.model.model.embed_tokens.lora_embedding_A', dtype: 'F32' as const, shape: [4, 512], data: new Float32Array(2048) };
    await rejects(readAdapter(variant({ tensors: (ts) => [...ts, emb] }), cfg), /embedding/);
  });

  it('refuses tensors whose shapes do not match r or the base layers', async () => {
    // r 8 in the config, rank-4 tensors in the file.
    await rejects(readAdapter(variant({ config: { r: 8 } }), cfg), /lora_A of model\.layers\.\d\.\S+ is \[4, \d+\], expected \[8, \d+\] \(r is 8/);
    // A q_proj lora_A made for hidden 128.
    const wide = (ts: TensorToWrite[]) =>
      ts.map((t) => (t.name.endsWith('layers.0.self_attn.q_proj.lora_A.weight') ? { ...t, shape: [4, 128], data: new Float32Array(512) } : t));
    await rejects(readAdapter(variant({ tensors: wide }), cfg), /lora_A of model\.layers\.0\.self_attn\.q_proj is \[4, 128\], expected \[4, 64\].*made for tiny-llama/);
    // A missing half.
    const noB = (ts: TensorToWrite[]) => ts.filter((t) => !t.name.endsWith('layers.1.mlp.up_proj.lora_B.weight'));
    await rejects(readAdapter(variant({ tensors: noB }), cfg), /up_proj has lora_A but no lora_B/);
  });

  it('refuses an adapter for another architecture, naming the module and the model it was made for', async () => {
    const gpt2 = (ts: TensorToWrite[]) => [
      ...ts.slice(2),
      { name: 'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', dtype: 'F32' as const, shape: [4, 64], data: new Float32Array(256) },
    ];
    await rejects(
      readAdapter(variant({ config: { base_model_name_or_path: 'gpt2', fan_in_fan_out: true }, tensors: gpt2 }), cfg),
      /transformer\.h\.0\.attn\.c_attn, which is not a linear layer of this LlamaForCausalLM \(it was made for gpt2\)/,
    );
    // And a GPT-2 adapter on a GPT-2 config is fine: fan_in_fan_out does not change the LoRA shapes.
    const gpt2Cfg = parseConfig({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: 64, n_layer: 1, n_head: 4, vocab_size: 512, n_positions: 64 });
    const files = {
      'adapter_config.json': JSON.stringify({ ...initConfig(), fan_in_fan_out: true, target_modules: ['c_attn'] }),
      'adapter_model.safetensors': writeSafetensors([
        { name: 'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', dtype: 'F32', shape: [4, 64], data: new Float32Array(256) },
        { name: 'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight', dtype: 'F32', shape: [192, 4], data: new Float32Array(768) },
      ]),
    };
    const a = await readAdapter(memorySource('gpt2-lora', files), gpt2Cfg);
    expect(a.config.fanInFanOut).toBe(true);
    expect(a.modules.get('transformer.h.0.attn.c_attn')).toMatchObject({ inFeatures: 64, outFeatures: 192 });
  });

  it('names missing files; a pickled adapter_model.bin gets its own message', async () => {
    await rejects(readAdapter(memorySource('a', { 'adapter_model.safetensors': new Uint8Array(8) }), cfg), /adapter_config\.json is missing from a/, 'missing-file');
    await rejects(readAdapter(memorySource('a', { 'adapter_config.json': JSON.stringify(initConfig()) }), cfg), /adapter_model\.safetensors is missing from a/, 'missing-file');
    await rejects(
      readAdapter(memorySource('a', { 'adapter_config.json': JSON.stringify(initConfig()), 'adapter_model.bin': new Uint8Array(4) }), cfg),
      /adapter_model\.bin \(a Python pickle\)/,
      'missing-file',
    );
    await rejects(
      readAdapter(memorySource('a', { 'adapter_config.json': '{not json', 'adapter_model.safetensors': new Uint8Array(8) }), cfg),
      /adapter_config\.json in a is not valid JSON/,
      'bad-file',
    );
  });

  it('parsePeftConfig defaults and default names', () => {
    expect(parsePeftConfig({ peft_type: 'LORA' }, 'x')).toMatchObject({ r: 8, alpha: 8, useRslora: false, targetModules: null });
    expect(parsePeftConfig({ peft_type: 'LORA', r: 16, lora_alpha: 32, use_rslora: true, target_modules: 'all-linear' }, 'x')).toMatchObject({
      r: 16,
      alpha: 32,
      useRslora: true,
      targetModules: 'all-linear',
    });
    expect(defaultAdapterName(memorySource('runs/sft/final/', {}))).toBe('final');
  });
});
