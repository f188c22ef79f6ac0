// config.json values a model cannot have are refused when config.json is parsed, with a sentence naming the
// setting — never a RangeError, an "Invalid array length" or a kernel error later (issue 13). The same values
// make `describeModel` (graft info, the app's model card) refuse instead of sizing arrays from them. A
// checkpoint quantized ahead of time (quantization_config) is refused with what to do instead.
import { describe, expect, it } from 'vitest';
import { parseConfig, UnsupportedModelError } from '../../src/model/config';
import { describeFrom } from '../../src/model/info';
import { checkWeights, ModelWeightsError } from '../../src/model/params';
import { refusal } from '../helpers/config';

const llama = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 176,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 512,
  rms_norm_eps: 1e-5,
  max_position_embeddings: 256,
};
const noWeights = { files: [], tensors: new Map() };

describe('config.json values are checked when it is parsed', () => {
  it('refuses absurd sizes and epsilons with a sentence naming the setting', () => {
    expect(refusal({ ...llama, vocab_size: 1e12 })).toMatch(/^config\.json: "vocab_size" is 1000000000000, more than any model Graft can load has \(at most 16,777,216 tokens in a vocabulary\)\. The file is damaged/);
    expect(refusal({ ...llama, num_hidden_layers: 1e9 })).toMatch(/"num_hidden_layers" is 1000000000, more than .*at most 1,024 layers/);
    expect(refusal({ ...llama, rms_norm_eps: -1e-6 })).toMatch(/"rms_norm_eps" is -0\.000001; a norm's epsilon must be a small positive number/);
    expect(refusal({ ...llama, hidden_size: 64.5 })).toMatch(/"hidden_size" is 64\.5; it must be a positive whole number/);
    expect(refusal({ ...llama, num_attention_heads: -4 })).toMatch(/"num_attention_heads" is -4/);
    expect(refusal({ ...llama, intermediate_size: '176' })).toMatch(/"intermediate_size" is "176"/);
    expect(refusal({ ...llama, max_position_embeddings: 1e300 })).toMatch(/"max_position_embeddings"/);
    expect(refusal({ ...llama, rope_theta: 0 })).toMatch(/"rope_theta" is 0; it must be a positive number/);
    expect(refusal({ architectures: ['GPT2LMHeadModel'], n_embd: 8, n_head: 2, n_layer: 2e9, vocab_size: 10 })).toMatch(/"n_layer" is 2000000000/);
  });

  it('describing a model (graft info) refuses them too, instead of sizing arrays from them', () => {
    expect(() => describeFrom({ ...llama, num_hidden_layers: 1e9 }, noWeights)).toThrow(/"num_hidden_layers" is 1000000000/);
    expect(() => describeFrom({ ...llama, vocab_size: 1e12 }, noWeights)).toThrow(UnsupportedModelError);
  });

  it('refuses a checkpoint quantized ahead of time, saying what to do', () => {
    expect(refusal({ ...llama, quantization_config: { quant_method: 'bitsandbytes', load_in_4bit: true } })).toMatch(
      /already quantized \(config\.json has a quantization_config, quant_method "bitsandbytes"\).*set quantization_bit 4 or 8/,
    );
    expect(refusal({ ...llama, quantization_config: { quant_method: 'gptq', bits: 4 } })).toMatch(/quant_method "gptq"/);
    // describeModel still says what the repository holds, with the reason it cannot run.
    const info = describeFrom({ ...llama, quantization_config: { quant_method: 'awq' } }, noWeights);
    expect(info.supported).toBe(false);
    expect(info.unsupportedReason).toMatch(/already quantized/);
  });

  it('a weight stored in a dtype Graft cannot read is refused naming the tensor and the dtype', () => {
    const cfg = parseConfig({ ...llama, num_hidden_layers: 1, tie_word_embeddings: true });
    const shapes: Record<string, number[]> = {
      'model.embed_tokens.weight': [512, 64],
      'model.norm.weight': [64],
      'model.layers.0.input_layernorm.weight': [64],
      'model.layers.0.post_attention_layernorm.weight': [64],
      'model.layers.0.self_attn.q_proj.weight': [64, 64],
      'model.layers.0.self_attn.k_proj.weight': [32, 64],
      'model.layers.0.self_attn.v_proj.weight': [32, 64],
      'model.layers.0.self_attn.o_proj.weight': [64, 64],
      'model.layers.0.mlp.gate_proj.weight': [176, 64],
      'model.layers.0.mlp.up_proj.weight': [176, 64],
      'model.layers.0.mlp.down_proj.weight': [64, 176],
    };
    for (const dtype of ['F8_E4M3', 'I8', 'U8'] as const) {
      const weights = { names: Object.keys(shapes), info: (n: string) => ({ dtype: n.endsWith('up_proj.weight') ? dtype : ('BF16' as const), shape: shapes[n]! }) };
      let err: unknown;
      try {
        checkWeights(cfg, weights);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ModelWeightsError);
      expect((err as Error).message).toMatch(new RegExp(`^Weight "model\\.layers\\.0\\.mlp\\.up_proj\\.weight" is ${dtype}; Graft loads F32, F16, BF16 and F64 weights \\(checkpoints quantized ahead of time are not supported; use the unquantized model, and quantization_bit to quantize it as it loads\\)`));
    }
  });
});
