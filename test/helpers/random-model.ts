// Small random models of every supported architecture, written as Hugging Face folders are (config.json and
// model.safetensors via writeSafetensors), with odd sizes that match no tile: GQA, tied and untied embeddings,
// a Qwen3 whose head_dim differs from hidden/heads, GPT-2 with and without the `transformer.` prefix, and
// weights stored as F32, F16 or BF16. Tensor names and shapes are written out here independently of the
// loader, so a naming mistake on either side shows.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { f32ToBf16Bits, f32ToF16Bits } from '../../src/engine/half';
import { parseConfig, type ModelConfig } from '../../src/model/config';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/model/safetensors';
import { Rng } from './rng';

export interface RandomModelSpec {
  name: string;
  /** config.json as written. */
  config: Record<string, unknown>;
  seed: number;
  /** How the weights are stored (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** GPT-2: names with the `transformer.` prefix (as GPT2LMHeadModel saves them) or without (as the gpt2 repo has them). */
  gpt2Prefix?: boolean;
  /** Write lm_head.weight even when the embeddings are tied (some checkpoints do). */
  writeTiedHead?: boolean;
}

export interface RandomModel {
  spec: RandomModelSpec;
  cfg: ModelConfig;
  /** model.safetensors */
  bytes: Uint8Array;
  weights: SafetensorsFile;
}

/** [name, shape, kind] of every tensor the architecture stores. */
function tensorList(cfg: ModelConfig, spec: RandomModelSpec): [string, number[], 'w' | 'norm' | 'bias' | 'embed'][] {
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: D, vocabSize: V } = cfg;
  const out: [string, number[], 'w' | 'norm' | 'bias' | 'embed'][] = [];
  if (cfg.architecture === 'GPT2LMHeadModel') {
    const p = spec.gpt2Prefix ? 'transformer.' : '';
    out.push([`${p}wte.weight`, [V, H], 'embed'], [`${p}wpe.weight`, [cfg.maxPositions, H], 'embed']);
    for (let l = 0; l < cfg.numLayers; l++) {
      const h = `${p}h.${l}`;
      out.push(
        [`${h}.ln_1.weight`, [H], 'norm'],
        [`${h}.ln_1.bias`, [H], 'bias'],
        [`${h}.attn.c_attn.weight`, [H, 3 * H], 'w'],
        [`${h}.attn.c_attn.bias`, [3 * H], 'bias'],
        [`${h}.attn.c_proj.weight`, [H, H], 'w'],
        [`${h}.attn.c_proj.bias`, [H], 'bias'],
        [`${h}.ln_2.weight`, [H], 'norm'],
        [`${h}.ln_2.bias`, [H], 'bias'],
        [`${h}.mlp.c_fc.weight`, [H, I], 'w'],
        [`${h}.mlp.c_fc.bias`, [I], 'bias'],
        [`${h}.mlp.c_proj.weight`, [I, H], 'w'],
        [`${h}.mlp.c_proj.bias`, [H], 'bias'],
      );
    }
    out.push([`${p}ln_f.weight`, [H], 'norm'], [`${p}ln_f.bias`, [H], 'bias']);
  } else {
    out.push(['model.embed_tokens.weight', [V, H], 'embed']);
    for (let l = 0; l < cfg.numLayers; l++) {
      const p = `model.layers.${l}`;
      out.push([`${p}.input_layernorm.weight`, [H], 'norm']);
      for (const [n, o] of [['q', nh * D], ['k', nkv * D], ['v', nkv * D]] as const) {
        out.push([`${p}.self_attn.${n}_proj.weight`, [o, H], 'w']);
        if (cfg.qkvBias) out.push([`${p}.self_attn.${n}_proj.bias`, [o], 'bias']);
      }
      if (cfg.qkNorm) out.push([`${p}.self_attn.q_norm.weight`, [D], 'norm'], [`${p}.self_attn.k_norm.weight`, [D], 'norm']);
      out.push([`${p}.self_attn.o_proj.weight`, [H, nh * D], 'w']);
      out.push([`${p}.post_attention_layernorm.weight`, [H], 'norm']);
      // Gemma 3's sandwich: a norm before the MLP and one after it.
      if (cfg.sandwichNorms) out.push([`${p}.pre_feedforward_layernorm.weight`, [H], 'norm'], [`${p}.post_feedforward_layernorm.weight`, [H], 'norm']);
      out.push([`${p}.mlp.gate_proj.weight`, [I, H], 'w'], [`${p}.mlp.up_proj.weight`, [I, H], 'w'], [`${p}.mlp.down_proj.weight`, [H, I], 'w']);
    }
    out.push(['model.norm.weight', [H], 'norm']);
  }
  if (!cfg.tieWordEmbeddings || spec.writeTiedHead) out.push(['lm_head.weight', [V, H], 'embed']);
  return out;
}

function encode(values: Float64Array, dtype: 'F32' | 'F16' | 'BF16'): Float32Array | Uint16Array {
  if (dtype === 'F32') return Float32Array.from(values);
  const bits = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  return Uint16Array.from(values, (v) => bits(v));
}

export function makeRandomModel(spec: RandomModelSpec): RandomModel {
  const cfg = parseConfig(spec.config);
  const rng = new Rng(spec.seed);
  const dtype = spec.dtype ?? 'F32';
  const tensors: TensorToWrite[] = tensorList(cfg, spec).map(([name, shape, kind]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const fanIn = kind === 'w' ? (cfg.architecture === 'GPT2LMHeadModel' ? shape[0]! : shape[1]!) : 1;
    const values =
      kind === 'norm'
        ? rng.tensor(n, 0.1, 0).map((v) => (cfg.normPlusOne ? v : 1 + v)) // Gemma stores the gain's offset from 1
        : kind === 'bias'
          ? rng.tensor(n, 0.1, 0)
          : kind === 'embed'
            ? rng.tensor(n, 0.5, 0)
            : rng.tensor(n, 1 / Math.sqrt(fanIn), 0);
    return { name, dtype, shape, data: encode(values, dtype) };
  });
  if (cfg.architecture === 'GPT2LMHeadModel' && !spec.gpt2Prefix) {
    // Old GPT-2 checkpoints also store the causal mask buffers; the loader must ignore them.
    const P = cfg.maxPositions;
    tensors.push({ name: 'h.0.attn.bias', dtype: 'F32', shape: [1, 1, P, P], data: new Float32Array(P * P) });
  }
  const bytes = writeSafetensors(tensors, { format: 'pt' });
  return { spec, cfg, bytes, weights: new SafetensorsFile(bytes, `${spec.name}/model.safetensors`) };
}

/** Writes config.json and model.safetensors into dir/<name>/ and returns that folder. */
export function writeRandomModel(dir: string, model: RandomModel): string {
  const folder = join(dir, model.spec.name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'config.json'), JSON.stringify(model.spec.config, null, 2));
  writeFileSync(join(folder, 'model.safetensors'), model.bytes);
  return folder;
}

const llama = (extra: Record<string, unknown>): Record<string, unknown> => ({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_act: 'silu',
  rms_norm_eps: 1e-5,
  max_position_embeddings: 64,
  ...extra,
});

/** One model per case the architectures test covers. */
export const RANDOM_MODELS: Record<string, RandomModelSpec> = {
  llamaGqaUntied: {
    name: 'llama-gqa-untied',
    seed: 11,
    config: llama({
      hidden_size: 36,
      intermediate_size: 52,
      num_hidden_layers: 2,
      num_attention_heads: 6,
      num_key_value_heads: 2,
      vocab_size: 67,
      rope_theta: 10000,
      tie_word_embeddings: false,
      torch_dtype: 'float32',
    }),
  },
  llama3Tied: {
    name: 'llama3-scaled-tied-bf16',
    seed: 12,
    dtype: 'BF16',
    writeTiedHead: true,
    config: llama({
      hidden_size: 32,
      intermediate_size: 40,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      vocab_size: 59,
      tie_word_embeddings: true,
      dtype: 'bfloat16',
      // transformers ≥ 5 style: theta and scaling inside rope_parameters.
      rope_parameters: {
        rope_type: 'llama3',
        rope_theta: 500000,
        factor: 32,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8,
      },
    }),
  },
  qwen2: {
    name: 'qwen2-bias-tied',
    seed: 13,
    config: {
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      hidden_act: 'silu',
      hidden_size: 32,
      intermediate_size: 44,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      vocab_size: 71,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      max_position_embeddings: 64,
      tie_word_embeddings: true,
      use_sliding_window: false,
      sliding_window: 4096,
      max_window_layers: 2,
      torch_dtype: 'bfloat16',
    },
  },
  qwen3: {
    name: 'qwen3-headdim-untied-f16',
    seed: 14,
    dtype: 'F16',
    config: {
      architectures: ['Qwen3ForCausalLM'],
      model_type: 'qwen3',
      hidden_act: 'silu',
      hidden_size: 20,
      intermediate_size: 36,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 12,
      vocab_size: 61,
      rms_norm_eps: 1e-6,
      rope_parameters: { rope_type: 'default', rope_theta: 1000000 },
      max_position_embeddings: 64,
      tie_word_embeddings: false,
      attention_bias: false,
      layer_types: ['full_attention', 'full_attention'],
      dtype: 'bfloat16',
    },
  },
  gpt2Prefixed: {
    name: 'gpt2-prefixed-tied',
    seed: 15,
    gpt2Prefix: true,
    config: {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      activation_function: 'gelu_new',
      n_embd: 24,
      n_head: 3,
      n_layer: 2,
      n_positions: 32,
      n_ctx: 32,
      n_inner: null,
      vocab_size: 53,
      layer_norm_epsilon: 1e-5,
      torch_dtype: 'float32',
    },
  },
  gpt2Bare: {
    name: 'gpt2-bare-untied',
    seed: 16,
    gpt2Prefix: false,
    config: {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      activation_function: 'gelu_new',
      n_embd: 20,
      n_head: 4,
      n_layer: 2,
      n_positions: 24,
      n_inner: 37,
      vocab_size: 47,
      layer_norm_epsilon: 1e-5,
      tie_word_embeddings: false,
    },
  },
};

const gemma3 = (extra: Record<string, unknown>): Record<string, unknown> => ({
  architectures: ['Gemma3ForCausalLM'],
  model_type: 'gemma3_text',
  hidden_activation: 'gelu_pytorch_tanh',
  hidden_size: 24,
  intermediate_size: 40,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 12,
  vocab_size: 67,
  rms_norm_eps: 1e-6,
  query_pre_attn_scalar: 16,
  max_position_embeddings: 64,
  sliding_window: 4,
  final_logit_softcapping: null,
  attn_logit_softcapping: null,
  ...extra,
});

/** Gemma 3 in both config styles (same layers: sliding, full, sliding), windows shorter than the test batches. */
export const GEMMA3_MODELS: Record<string, RandomModelSpec> = {
  layerTypes: {
    name: 'gemma3-layer-types',
    seed: 21,
    config: gemma3({ layer_types: ['sliding_attention', 'full_attention', 'sliding_attention'], rope_theta: 1000000, rope_local_base_freq: 10000, torch_dtype: 'float32' }),
  },
  pattern: {
    name: 'gemma3-pattern-bf16',
    seed: 22,
    dtype: 'BF16',
    config: gemma3({ sliding_window_pattern: 2, rope_theta: 1000000, rope_local_base_freq: 10000, torch_dtype: 'bfloat16' }),
  },
};

/** A model whose vocabulary dwarfs everything else, for splitting the embedding and lm_head. */
export function bigVocabSpec(tied: boolean): RandomModelSpec {
  return {
    name: `llama-bigvocab-${tied ? 'tied' : 'untied'}`,
    seed: tied ? 17 : 18,
    config: llama({
      hidden_size: 16,
      intermediate_size: 24,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      vocab_size: 203,
      tie_word_embeddings: tied,
    }),
  };
}

/** Random token ids [B, T] below vocab. */
export function randomIds(rng: Rng, B: number, T: number, vocab: number): number[][] {
  return Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(0, vocab)));
}
