import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exportHfModel, mergeLora, planShards, weightNameFor, type WeightTensor } from '../../src/export/merged-model';
import type { LoraModuleWeights } from '../../src/export/peft-adapter';
import { SafetensorsFile } from '../../src/model/safetensors';
import { f32ToBf16Bits } from '../../src/engine/half';

/** Deterministic values in [-1, 1) with a few outliers (xorshift32). */
function values(n: number, seed: number, scale = 1): Float32Array {
  let x = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const u = x / 2 ** 32;
    out[i] = (u * 2 - 1) * scale * (i % 97 === 0 ? 50 : 1);
  }
  return out;
}

/** W + s·B·A in float64, written the plain way: the full product first, then one rounding to float32. */
function reference(w: Float32Array, a: Float32Array, b: Float32Array, out: number, r: number, inF: number, s: number, fanInFanOut: boolean): Float32Array {
  const ba: number[][] = Array.from({ length: out }, () => new Array<number>(inF).fill(0));
  for (let o = 0; o < out; o++) for (let k = 0; k < r; k++) for (let i = 0; i < inF; i++) ba[o]![i]! += b[o * r + k]! * a[k * inF + i]!;
  const res = new Float32Array(out * inF);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inF; i++) {
      const at = fanInFanOut ? i * out + o : o * inF + i;
      res[at] = Math.fround(w[at]! + s * ba[o]![i]!);
    }
  }
  return res;
}

describe('mergeLora', () => {
  const out = 13;
  const inF = 11;
  const r = 3;
  const a = values(r * inF, 1, 0.5);
  const b = values(out * r, 2, 0.5);
  const w = values(out * inF, 3);
  const module = (m: Partial<LoraModuleWeights> = {}): LoraModuleWeights => ({ a, aShape: [r, inF], b, bShape: [out, r], ...m });

  it('W + (alpha / r)·B·A for a Linear weight [out, in], against a float64 reference', () => {
    const weights = new Map<string, WeightTensor>([
      ['model.layers.0.self_attn.q_proj.weight', { dtype: 'F32', shape: [out, inF], data: w }],
      ['model.norm.weight', { dtype: 'F32', shape: [inF], data: values(inF, 9) }],
    ]);
    const merged = mergeLora(weights, { r, alpha: 6, modules: new Map([['model.layers.0.self_attn.q_proj', module()]]) });
    const got = merged.get('model.layers.0.self_attn.q_proj.weight')!;
    expect(got.dtype).toBe('F32');
    expect(got.shape).toEqual([out, inF]);
    // The same sums in the same order, in float64, rounded once: identical bits.
    expect(Array.from(got.data as Float32Array)).toEqual(Array.from(reference(w, a, b, out, r, inF, 2, false)));
    // untouched weights are passed through as they are; the input map is not changed
    expect(merged.get('model.norm.weight')).toBe(weights.get('model.norm.weight'));
    expect(weights.get('model.layers.0.self_attn.q_proj.weight')!.data).toBe(w);
  });

  it('accumulates in float64: a float32 running sum would differ', () => {
    // B·A with terms that cancel: 1e8 + 1 - 1e8 is 1 in float64 and 0 in float32.
    const a1 = new Float32Array([1e8, 1, -1e8]); // A [3, 1]
    const b1 = new Float32Array([1, 1, 1]); // B [1, 3]
    const merged = mergeLora(new Map([['l.weight', { dtype: 'F32', shape: [1, 1], data: new Float32Array([0.25]) } satisfies WeightTensor]]), {
      r: 3,
      alpha: 3,
      modules: new Map([['l', { a: a1, aShape: [3, 1], b: b1, bShape: [1, 3] }]]),
    });
    expect((merged.get('l.weight')!.data as Float32Array)[0]).toBe(1.25);
  });

  it('rsLoRA scales by alpha / sqrt(r)', () => {
    const weights = new Map<string, WeightTensor>([['p.weight', { dtype: 'F32', shape: [out, inF], data: w }]]);
    const merged = mergeLora(weights, { r, alpha: 6, useRslora: true, modules: new Map([['p', module()]]) });
    expect(Array.from(merged.get('p.weight')!.data as Float32Array)).toEqual(Array.from(reference(w, a, b, out, r, inF, 6 / Math.sqrt(3), false)));
  });

  it('GPT-2 Conv1D (fan_in_fan_out): W stored [in, out] gets (B·A)ᵀ; names without "transformer." are found', () => {
    const wt = values(inF * out, 4);
    const weights = new Map<string, WeightTensor>([['h.0.attn.c_attn.weight', { dtype: 'F32', shape: [inF, out], data: wt }]]);
    expect(weightNameFor('transformer.h.0.attn.c_attn', weights)).toBe('h.0.attn.c_attn.weight');
    const merged = mergeLora(weights, { r, alpha: 3, fanInFanOut: true, modules: new Map([['transformer.h.0.attn.c_attn', module()]]) });
    expect(Array.from(merged.get('h.0.attn.c_attn.weight')!.data as Float32Array)).toEqual(Array.from(reference(wt, a, b, out, r, inF, 1, true)));
    // the same module without fan_in_fan_out does not fit the stored shape
    expect(() => mergeLora(weights, { r, alpha: 3, modules: new Map([['transformer.h.0.attn.c_attn', module()]]) })).toThrow(/is \[11, 13\].*need \[13, 11\]/);
  });

  it('widens a BF16 weight exactly before adding', () => {
    const bits = new Uint16Array(out * inF);
    const wide = new Float32Array(out * inF);
    for (let i = 0; i < bits.length; i++) {
      bits[i] = f32ToBf16Bits(w[i]!);
      wide[i] = new Float32Array(new Uint32Array([bits[i]! << 16]).buffer)[0]!;
    }
    const weights = new Map<string, WeightTensor>([['p.weight', { dtype: 'BF16', shape: [out, inF], data: new Uint8Array(bits.buffer) }]]);
    const merged = mergeLora(weights, { r, alpha: 3, modules: new Map([['p', module()]]) });
    expect(merged.get('p.weight')!.dtype).toBe('F32');
    expect(Array.from(merged.get('p.weight')!.data as Float32Array)).toEqual(Array.from(reference(wide, a, b, out, r, inF, 1, false)));
  });

  it('merges the tiny-llama fixture with its init_adapter', () => {
    const model = new SafetensorsFile(new Uint8Array(readFileSync(new URL('../fixtures/tiny-llama/model.safetensors', import.meta.url))), 'model.safetensors');
    const adapter = new SafetensorsFile(
      new Uint8Array(readFileSync(new URL('../fixtures/tiny-llama/reference/init_adapter/adapter_model.safetensors', import.meta.url))),
      'adapter_model.safetensors',
    );
    const weights = new Map<string, WeightTensor>(model.names.map((n) => [n, { dtype: model.info(n).dtype, shape: model.info(n).shape, data: model.float32(n) }]));
    const modules = new Map<string, LoraModuleWeights>();
    for (const n of adapter.names) {
      const m = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(n);
      if (!m) continue;
      const bName = n.replace('lora_A', 'lora_B');
      modules.set(m[1]!, { a: adapter.float32(n), aShape: adapter.info(n).shape as [number, number], b: adapter.float32(bName), bShape: adapter.info(bName).shape as [number, number] });
    }
    const merged = mergeLora(weights, { r: 4, alpha: 8, modules });
    let changed = 0;
    for (const [name, t] of merged) {
      const before = weights.get(name)!.data as Float32Array;
      if (t === weights.get(name)) continue;
      changed++;
      const module = name.replace(/\.weight$/, '');
      const m = modules.get(module)!;
      const [outF, inFF] = t.shape as [number, number];
      expect(Array.from(t.data as Float32Array), name).toEqual(Array.from(reference(before, m.a, m.b, outF, 4, inFF, 2, false)));
      // init_adapter has non-zero lora_B: the merge changes the weight
      expect(Array.from(t.data as Float32Array)).not.toEqual(Array.from(before));
    }
    expect(changed).toBe(14); // 2 layers × 7 projections
  });

  it('refuses a module the model does not have, and a rank that does not match', () => {
    const weights = new Map<string, WeightTensor>([['p.weight', { dtype: 'F32', shape: [out, inF], data: w }]]);
    expect(() => mergeLora(weights, { r, alpha: 1, modules: new Map([['q', module()]]) })).toThrow(/no weight "q.weight"/);
    expect(() => mergeLora(weights, { r: 2, alpha: 1, modules: new Map([['p', module()]]) })).toThrow(/rank 3\/3, the adapter says r = 2/);
  });
});

describe('planShards', () => {
  it('fills shards in order and gives an oversized tensor a shard of its own', () => {
    const sizes = [
      { name: 'a', bytes: 40 },
      { name: 'b', bytes: 50 },
      { name: 'c', bytes: 20 },
      { name: 'd', bytes: 150 },
      { name: 'e', bytes: 100 },
      { name: 'f', bytes: 1 },
    ];
    expect(planShards(sizes, 100)).toEqual([['a', 'b'], ['d'], ['c'], ['e'], ['f']]);
    expect(planShards(sizes, 1000)).toEqual([['a', 'b', 'c', 'd', 'e', 'f']]);
  });
});

describe('exportHfModel', () => {
  const config = { architectures: ['LlamaForCausalLM'], model_type: 'llama', torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 2, pad_token_id: null };
  const weights = new Map<string, WeightTensor>([
    ['model.embed_tokens.weight', { dtype: 'F32', shape: [8, 4], data: values(32, 11) }],
    ['model.layers.0.self_attn.q_proj.weight', { dtype: 'F32', shape: [4, 4], data: values(16, 12) }],
    ['model.layers.0.mlp.up_proj.weight', { dtype: 'BF16', shape: [6, 4], data: new Uint8Array(new Uint16Array(24).fill(0x3f80).buffer) }],
    ['model.norm.weight', { dtype: 'F32', shape: [4], data: values(4, 13) }],
    ['step', { dtype: 'I64', shape: [1], data: new Uint8Array([7, 0, 0, 0, 0, 0, 0, 0]) }],
  ]);
  const tokenizerFiles = new Map([
    ['tokenizer.json', new TextEncoder().encode('{"model":{}}')],
    ['tokenizer_config.json', new TextEncoder().encode('{"chat_template":"x"}')],
  ]);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);

  it('writes one model.safetensors, config.json with torch_dtype float32, generation_config.json and the tokenizer files', () => {
    const files = exportHfModel({ config, weights, tokenizerFiles });
    expect([...files.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(JSON.parse(text(files.get('config.json')!))).toEqual({ ...config, torch_dtype: 'float32' });
    expect(JSON.parse(text(files.get('generation_config.json')!))).toEqual({ bos_token_id: 1, eos_token_id: 2 });
    expect(files.get('tokenizer.json')).toBe(tokenizerFiles.get('tokenizer.json'));
    const st = new SafetensorsFile(files.get('model.safetensors')!, 'model.safetensors');
    expect(st.names).toEqual([...weights.keys()]);
    expect(st.info('model.layers.0.mlp.up_proj.weight').dtype).toBe('F32');
    expect(Array.from(st.float32('model.layers.0.mlp.up_proj.weight'))).toEqual(new Array(24).fill(1));
    expect(Array.from(st.float32('model.embed_tokens.weight'))).toEqual(Array.from(weights.get('model.embed_tokens.weight')!.data as Float32Array));
    expect(st.info('step').dtype).toBe('I64');
    expect(Array.from(st.raw('step'))).toEqual([7, 0, 0, 0, 0, 0, 0, 0]);
    expect(st.header.metadata).toEqual({ format: 'pt' });
  });

  it('shards past maxShardBytes with a correct model.safetensors.index.json', () => {
    // tensor bytes: embed 128, q 64, up 96 (as F32), norm 16, step 8 → shards [embed], [q], [up], [norm, step] at 100 bytes
    const files = exportHfModel({ config, weights, tokenizerFiles, maxShardBytes: 100, generationConfig: { eos_token_id: [2, 3] } });
    const shardNames = [...files.keys()].filter((k) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(k)).sort();
    expect(shardNames).toEqual(['model-00001-of-00004.safetensors', 'model-00002-of-00004.safetensors', 'model-00003-of-00004.safetensors', 'model-00004-of-00004.safetensors']);
    expect(files.has('model.safetensors')).toBe(false);
    expect(JSON.parse(text(files.get('generation_config.json')!))).toEqual({ eos_token_id: [2, 3] });
    const index = JSON.parse(text(files.get('model.safetensors.index.json')!)) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(index.metadata.total_size).toBe(128 + 64 + 96 + 16 + 8);
    expect(Object.keys(index.weight_map)).toEqual([...weights.keys()].sort());
    let dataBytes = 0;
    for (const shard of shardNames) {
      const st = new SafetensorsFile(files.get(shard)!, shard);
      const bytes = st.names.reduce((s, n) => s + st.raw(n).length, 0);
      dataBytes += bytes;
      if (st.names.length > 1) expect(bytes).toBeLessThanOrEqual(100);
      for (const n of st.names) {
        expect(index.weight_map[n]).toBe(shard);
        if (n !== 'step') {
          const src = weights.get(n)!;
          const expected = src.dtype === 'F32' ? Array.from(src.data as Float32Array) : new Array(24).fill(1);
          expect(Array.from(st.float32(n)), n).toEqual(expected);
        }
      }
    }
    expect(dataBytes).toBe(index.metadata.total_size);
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(shardNames));
  });

  it('refuses an empty model and a tokenizer file that would overwrite a model file', () => {
    expect(() => exportHfModel({ config, weights: new Map() })).toThrow(/no weights/);
    expect(() => exportHfModel({ config, weights, tokenizerFiles: new Map([['config.json', new Uint8Array(1)]]) })).toThrow(/overwrite/);
  });
});
