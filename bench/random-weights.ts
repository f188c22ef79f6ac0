// Random weights with the names and shapes of a checkpoint of the architecture (through the loader's own config
// check), made on demand: uniform in ±0.035 (std ≈ 0.02), norms at their neutral value. The memory, training and
// overlap benchmarks build their models from it; stored F32, or BF16 for the 2-D tensors with `bf16`.
import { parseConfig } from '../src/model/config';
import { f32ToBf16Bits } from '../src/engine/half';
import type { WeightSource } from '../src/model/params';

export function randomWeights(raw: Record<string, unknown>, opts: { bf16?: boolean; seed?: number } = {}): WeightSource {
  const cfg = parseConfig(raw);
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: D, vocabSize: V } = cfg;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [V, H]], ['model.norm.weight', [H]]]);
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    const norms = cfg.sandwichNorms ? ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm'] : ['input_layernorm', 'post_attention_layernorm'];
    for (const n of norms) shapes.set(`${p}.${n}.weight`, [H]);
    if (cfg.qkNorm) for (const n of ['q_norm', 'k_norm']) shapes.set(`${p}.self_attn.${n}.weight`, [D]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [nh * D, H]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [nkv * D, H]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [nkv * D, H]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [H, nh * D]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [I, H]);
    shapes.set(`${p}.mlp.up_proj.weight`, [I, H]);
    shapes.set(`${p}.mlp.down_proj.weight`, [H, I]);
  }
  let seed = opts.seed ?? 12345;
  const values = (name: string) => {
    const n = shapes.get(name)!.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    if (name.endsWith('norm.weight')) return out.fill(cfg.normPlusOne ? 0 : 1);
    let s = seed++ >>> 0;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      out[i] = (s / 2 ** 32 - 0.5) * 0.07;
    }
    return out;
  };
  const bf16 = opts.bf16 === true;
  const source: WeightSource = {
    names: [...shapes.keys()],
    info: (name) => ({ dtype: bf16 && shapes.get(name)!.length > 1 ? 'BF16' : 'F32', shape: shapes.get(name)! }),
    float32: (name) => values(name),
  };
  if (bf16) {
    source.bits16 = (name) => {
      const v = values(name);
      const out = new Uint16Array(v.length); // a loop, not Uint16Array.from(v, f): that iterates through the JS heap
      for (let i = 0; i < v.length; i++) out[i] = f32ToBf16Bits(v[i]!);
      return out;
    };
  }
  return source;
}
