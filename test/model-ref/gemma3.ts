// Float64 reference of one Gemma 3 decoder layer, following transformers' modeling_gemma3:
//   a   = o_proj(attention(rope(qnorm(q_proj(n(x)))), rope(knorm(k_proj(n(x)))), v_proj(n(x))))   n = input_layernorm
//   h   = x + post_attention_layernorm(a)
//   out = h + post_feedforward_layernorm(down_proj(gelu_tanh(gate_proj(m(h))) · up_proj(m(h))))   m = pre_feedforward_layernorm
// Every RMSNorm's gain is 1 + weight; scores are scaled by query_pre_attn_scalar^−½; sliding layers attend to
// their last sliding_window positions with their own RoPE base (invFreqLocal). Bottleneck adapters wrap o_proj's
// and down_proj's outputs before the post norms (layers.ts).
import { addRef } from '../../src/engine/ref/elementwise';
import { attentionForwardRef } from '../../src/engine/ref/attention';
import { gegluForwardRef } from '../../src/engine/ref/geglu';
import { rmsnormForwardRef } from '../../src/engine/ref/norm';
import { ropeForwardRef } from '../../src/engine/ref/rope';
import type { ModelConfig } from '../../src/model/config';
import { bottleneckRef, linearRef, type RefBottleneck, type RefLora, type RefWeights } from './layers';
import type { SequenceShape } from './llama';

/** Gemma's RMSNorm: x · rstd · (1 + w). */
export function gemmaNormRef(cfg: ModelConfig, w: Float64Array, x: Float64Array, C: number): Float64Array {
  return rmsnormForwardRef(x, w.map((v) => 1 + v), x.length / C, C, cfg.normEps).out;
}

export function gemma3LayerRef(
  cfg: ModelConfig,
  w: RefWeights,
  l: number,
  x: Float64Array,
  s: SequenceShape,
  invFreq: Float64Array,
  invFreqLocal: Float64Array,
  lora?: RefLora,
  bottleneck?: RefBottleneck,
): Float64Array {
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: D } = cfg;
  const N = s.B * s.T;
  const p = `model.layers.${l}`;
  const lin = (name: string, inF: number, outF: number, input: Float64Array): Float64Array =>
    linearRef(w, { module: `${p}.${name}`, inF, outF, layout: 'out_in', bias: false }, input, N, lora);
  const norm = (name: string, input: Float64Array, C = H) => gemmaNormRef(cfg, w(`${p}.${name}.weight`), input, C);
  const sliding = cfg.layerTypes[l] === 'sliding';

  const h1 = norm('input_layernorm', x);
  let q = norm('self_attn.q_norm', lin('self_attn.q_proj', H, nh * D, h1), D);
  let k = norm('self_attn.k_norm', lin('self_attn.k_proj', H, nkv * D, h1), D);
  const v = lin('self_attn.v_proj', H, nkv * D, h1);
  const inv = sliding ? invFreqLocal : invFreq;
  q = ropeForwardRef(q, s.positions, { B: s.B, T: s.T, H: nh, D }, inv);
  k = ropeForwardRef(k, s.positions, { B: s.B, T: s.T, H: nkv, D }, inv);
  const shape = { B: s.B, T: s.T, S: s.T, H: nh, Hkv: nkv, D };
  const att = attentionForwardRef(q, k, v, s.keyMask, shape, cfg.attentionScale, sliding ? cfg.slidingWindow : 0).out;
  const a = bottleneckRef(bottleneck, l, 'attn', lin('self_attn.o_proj', nh * D, H, att), H);
  const x2 = addRef(x, norm('post_attention_layernorm', a));

  const h2 = norm('pre_feedforward_layernorm', x2);
  const gate = lin('mlp.gate_proj', H, I, h2);
  const up = lin('mlp.up_proj', H, I, h2);
  const m = bottleneckRef(bottleneck, l, 'mlp', lin('mlp.down_proj', I, H, gegluForwardRef(gate, up)), H);
  return addRef(x2, norm('post_feedforward_layernorm', m));
}
