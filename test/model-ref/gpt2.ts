// Float64 reference of one GPT-2 block, following transformers' modeling_gpt2 (Conv1D weights [in, out]):
//   q, k, v = split(c_attn(ln_1(x)));  h = x + attn.c_proj(attention(q, k, v))
//   out = h + mlp.c_proj(gelu_new(c_fc(ln_2(h))))
// With bottleneck adapters, attn.c_proj's and/or mlp.c_proj's output y becomes y + up(act(down(y))) (layers.ts).
import { addRef } from '../../src/engine/ref/elementwise';
import { attentionForwardRef } from '../../src/engine/ref/attention';
import { geluForwardRef } from '../../src/engine/ref/gelu';
import type { ModelConfig } from '../../src/model/config';
import { bottleneckRef, columnsRef, linearRef, normRef, type RefBottleneck, type RefLora, type RefWeights } from './layers';
import type { SequenceShape } from './llama';

export function gpt2LayerRef(
  cfg: ModelConfig,
  w: RefWeights,
  l: number,
  x: Float64Array,
  s: SequenceShape,
  lora?: RefLora,
  bottleneck?: RefBottleneck,
): Float64Array {
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, headDim: D } = cfg;
  const N = s.B * s.T;
  const p = `transformer.h.${l}`;
  const conv1d = (name: string, inF: number, outF: number, input: Float64Array): Float64Array =>
    linearRef(w, { module: `${p}.${name}`, inF, outF, layout: 'in_out', bias: true }, input, N, lora);

  const qkv = conv1d('attn.c_attn', H, 3 * H, normRef(cfg, w, `${p}.ln_1`, x, H));
  const q = columnsRef(qkv, 3 * H, 0, H);
  const k = columnsRef(qkv, 3 * H, H, H);
  const v = columnsRef(qkv, 3 * H, 2 * H, H);
  const shape = { B: s.B, T: s.T, S: s.T, H: nh, Hkv: nh, D };
  const att = attentionForwardRef(q, k, v, s.keyMask, shape, 1 / Math.sqrt(D)).out;
  const x2 = addRef(x, bottleneckRef(bottleneck, l, 'attn', conv1d('attn.c_proj', H, H, att), H));

  const up = conv1d('mlp.c_fc', H, I, normRef(cfg, w, `${p}.ln_2`, x2, H));
  return addRef(x2, bottleneckRef(bottleneck, l, 'mlp', conv1d('mlp.c_proj', I, H, geluForwardRef(up)), H));
}
