// Float64 reference of one decoder layer of Llama, Qwen2 (q/k/v bias) and Qwen3 (per-head q/k RMSNorm),
// following transformers' modeling_llama / modeling_qwen2 / modeling_qwen3:
//   h = x + o_proj(attention(rope(qnorm(q_proj(rms(x)))), rope(knorm(k_proj(rms(x)))), v_proj(rms(x))))
//   out = h + down_proj(silu(gate_proj(rms(h))) · up_proj(rms(h)))
// With bottleneck adapters, o_proj's and/or down_proj's output y becomes y + up(act(down(y))) (layers.ts).
import { addRef } from '../../src/engine/ref/elementwise';
import { attentionForwardRef } from '../../src/engine/ref/attention';
import { rmsnormForwardRef } from '../../src/engine/ref/norm';
import { ropeForwardRef } from '../../src/engine/ref/rope';
import { swigluForwardRef } from '../../src/engine/ref/swiglu';
import type { ModelConfig } from '../../src/model/config';
import { bottleneckRef, linearRef, normRef, type RefBottleneck, type RefLora, type RefWeights } from './layers';

export interface SequenceShape {
  B: number;
  T: number;
  positions: ArrayLike<number>; // [B·T]
  keyMask: ArrayLike<number> | null; // [B·T], 0 = padding
}

export function llamaLayerRef(
  cfg: ModelConfig,
  w: RefWeights,
  l: number,
  x: Float64Array,
  s: SequenceShape,
  invFreq: Float64Array,
  lora?: RefLora,
  bottleneck?: RefBottleneck,
): Float64Array {
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: D } = cfg;
  const N = s.B * s.T;
  const p = `model.layers.${l}`;
  const lin = (name: string, inF: number, outF: number, bias: boolean, input: Float64Array): Float64Array =>
    linearRef(w, { module: `${p}.${name}`, inF, outF, layout: 'out_in', bias }, input, N, lora);

  const h1 = normRef(cfg, w, `${p}.input_layernorm`, x, H);
  let q = lin('self_attn.q_proj', H, nh * D, cfg.qkvBias, h1);
  let k = lin('self_attn.k_proj', H, nkv * D, cfg.qkvBias, h1);
  const v = lin('self_attn.v_proj', H, nkv * D, cfg.qkvBias, h1);
  if (cfg.qkNorm) {
    q = rmsnormForwardRef(q, w(`${p}.self_attn.q_norm.weight`), N * nh, D, cfg.normEps).out;
    k = rmsnormForwardRef(k, w(`${p}.self_attn.k_norm.weight`), N * nkv, D, cfg.normEps).out;
  }
  q = ropeForwardRef(q, s.positions, { B: s.B, T: s.T, H: nh, D }, invFreq);
  k = ropeForwardRef(k, s.positions, { B: s.B, T: s.T, H: nkv, D }, invFreq);
  const shape = { B: s.B, T: s.T, S: s.T, H: nh, Hkv: nkv, D };
  const att = attentionForwardRef(q, k, v, s.keyMask, shape, 1 / Math.sqrt(D)).out;
  const x2 = addRef(x, bottleneckRef(bottleneck, l, 'attn', lin('self_attn.o_proj', nh * D, H, cfg.oBias, att), H));

  const h2 = normRef(cfg, w, `${p}.post_attention_layernorm`, x2, H);
  const gate = lin('mlp.gate_proj', H, I, cfg.mlpBias, h2);
  const up = lin('mlp.up_proj', H, I, cfg.mlpBias, h2);
  return addRef(x2, bottleneckRef(bottleneck, l, 'mlp', lin('mlp.down_proj', I, H, cfg.mlpBias, swigluForwardRef(gate, up)), H));
}
