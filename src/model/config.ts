// Model configuration read from a Hugging Face config.json: the four architectures Graft runs, as flags of one
// decoder (docs/model.md, "Architectures"). Anything else is refused with an UnsupportedModelError that names it.
import type { RopeScaling } from '../engine/ops/rope';
import { CodedError } from '../engine/errors';

export type Architecture = 'LlamaForCausalLM' | 'Qwen2ForCausalLM' | 'Qwen3ForCausalLM' | 'GPT2LMHeadModel';

export const SUPPORTED_ARCHITECTURES: readonly Architecture[] = [
  'LlamaForCausalLM',
  'Qwen2ForCausalLM',
  'Qwen3ForCausalLM',
  'GPT2LMHeadModel',
];

export interface ModelConfig {
  architecture: Architecture;
  /** config.json's model_type: 'llama', 'qwen2', 'qwen3' or 'gpt2'. */
  modelType: string;
  hiddenSize: number;
  /** The MLP's inner width (GPT-2: n_inner, or 4·n_embd). */
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** 'rmsnorm' (Llama, Qwen) or 'layernorm' with a bias (GPT-2). */
  norm: 'rmsnorm' | 'layernorm';
  /** rms_norm_eps or layer_norm_epsilon. */
  normEps: number;
  /** 'swiglu': down(silu(gate(x))·up(x)); 'gelu_tanh': c_proj(gelu_tanh(c_fc(x))) (GPT-2's gelu_new). */
  mlp: 'swiglu' | 'gelu_tanh';
  /** Whether q, k and v carry a bias (Qwen2, GPT-2, Llama with attention_bias). */
  qkvBias: boolean;
  /** Whether the attention output projection carries a bias (GPT-2, Llama with attention_bias). */
  oBias: boolean;
  /** Whether the MLP's linears carry biases (GPT-2, Llama with mlp_bias). */
  mlpBias: boolean;
  /** Qwen3: RMSNorm with its own weight [head_dim] over each head of q and of k, before RoPE. */
  qkNorm: boolean;
  /** 'rope' (Llama, Qwen) or 'learned' absolute position embeddings (GPT-2's wpe). */
  positions: 'rope' | 'learned';
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  /** max_position_embeddings (GPT-2: n_positions). */
  maxPositions: number;
  tieWordEmbeddings: boolean;
  /** The dtype the checkpoint declares (torch_dtype or dtype), e.g. 'bfloat16'; informational. */
  dtype?: string;
  bosTokenId?: number;
  /** eos_token_id as a list (config.json has a number or a list); may be empty. */
  eosTokenIds: number[];
}

export class UnsupportedModelError extends CodedError<'unsupported-model'> {
  constructor(message: string) {
    super('UnsupportedModelError', 'unsupported-model', message);
  }
}

type Json = Record<string, unknown>;

function num(cfg: Json, key: string, fallback?: number): number {
  const raw = cfg[key];
  const v = raw === undefined || raw === null ? fallback : raw;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new UnsupportedModelError(`config.json: "${key}" is missing or not a number`);
  }
  return v;
}

function posInt(cfg: Json, key: string, fallback?: number): number {
  const v = num(cfg, key, fallback);
  if (!Number.isInteger(v) || v <= 0) throw new UnsupportedModelError(`config.json: "${key}" is ${v}, not a positive integer`);
  return v;
}

const MODEL_TYPES: Record<string, Architecture> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  gpt2: 'GPT2LMHeadModel',
};

function architectureOf(cfg: Json): Architecture {
  const archs = cfg.architectures;
  const named = Array.isArray(archs) && archs.length > 0 ? String(archs[0]) : undefined;
  const modelType = typeof cfg.model_type === 'string' ? cfg.model_type : undefined;
  const arch = named ?? (modelType ? (MODEL_TYPES[modelType] ?? modelType) : 'unknown');
  if ((SUPPORTED_ARCHITECTURES as readonly string[]).includes(arch)) return arch as Architecture;
  const moe = /moe|mixtral|expert/i.test(arch) || /moe|mixtral/i.test(modelType ?? '');
  const why = moe ? ' (mixture-of-experts models are not supported)' : '';
  throw new UnsupportedModelError(
    `The architecture ${arch} is not supported${why}. Graft runs ${SUPPORTED_ARCHITECTURES.join(', ')}.`,
  );
}

/** Settings no supported architecture may have: mixture of experts, sliding-window attention. */
function refuseUnsupportedSettings(cfg: Json, arch: Architecture): void {
  for (const key of ['num_experts', 'num_local_experts', 'n_routed_experts']) {
    const v = cfg[key];
    if (typeof v === 'number' && v > 0) {
      throw new UnsupportedModelError(`${arch} with ${key} = ${v} is a mixture-of-experts model, which Graft does not support`);
    }
  }
  if (cfg.use_sliding_window === true) {
    throw new UnsupportedModelError(
      `Sliding-window attention (use_sliding_window: true, sliding_window ${String(cfg.sliding_window)}) is not supported`,
    );
  }
  if (Array.isArray(cfg.layer_types) && cfg.layer_types.some((t) => t !== 'full_attention')) {
    const other = cfg.layer_types.find((t) => t !== 'full_attention');
    throw new UnsupportedModelError(`layer_types "${String(other)}" (sliding-window attention) is not supported`);
  }
  const partial = cfg.partial_rotary_factor;
  if (typeof partial === 'number' && partial !== 1) {
    throw new UnsupportedModelError(`partial_rotary_factor ${partial} is not supported (Graft rotates the whole head)`);
  }
}

/** rope_theta and rope scaling, from the top level or from rope_parameters. */
function ropeOf(cfg: Json): { ropeTheta: number; ropeScaling?: RopeScaling } {
  const params = (typeof cfg.rope_parameters === 'object' && cfg.rope_parameters !== null ? cfg.rope_parameters : {}) as Json;
  const theta = cfg.rope_theta ?? params.rope_theta ?? 10000;
  const ropeTheta = num({ rope_theta: theta }, 'rope_theta');
  const scaling = (cfg.rope_scaling ?? (params.rope_type !== undefined ? params : null)) as Json | null;
  if (!scaling) return { ropeTheta };
  const type = scaling.rope_type ?? scaling.type ?? 'default';
  if (type === 'default') return { ropeTheta };
  if (type !== 'llama3') {
    throw new UnsupportedModelError(`RoPE scaling type "${String(type)}" is not supported; Graft supports llama3 scaling`);
  }
  return {
    ropeTheta,
    ropeScaling: {
      type: 'llama3',
      factor: num(scaling, 'factor'),
      lowFreqFactor: num(scaling, 'low_freq_factor'),
      highFreqFactor: num(scaling, 'high_freq_factor'),
      originalMaxPositionEmbeddings: num(scaling, 'original_max_position_embeddings'),
    },
  };
}

function tokenIds(cfg: Json): { bosTokenId?: number; eosTokenIds: number[] } {
  const bos = cfg.bos_token_id;
  const eos = cfg.eos_token_id;
  const eosTokenIds = (Array.isArray(eos) ? eos : [eos]).filter((x): x is number => typeof x === 'number');
  return { ...(typeof bos === 'number' ? { bosTokenId: bos } : {}), eosTokenIds };
}

function dtypeOf(cfg: Json): { dtype?: string } {
  const d = cfg.dtype ?? cfg.torch_dtype;
  return typeof d === 'string' ? { dtype: d } : {};
}

function parseLlamaLike(cfg: Json, arch: Architecture): ModelConfig {
  const act = cfg.hidden_act ?? 'silu';
  if (act !== 'silu') {
    throw new UnsupportedModelError(`hidden_act "${String(act)}" is not supported for ${arch}; Graft supports silu`);
  }
  const hiddenSize = posInt(cfg, 'hidden_size');
  const numHeads = posInt(cfg, 'num_attention_heads');
  const numKvHeads = posInt(cfg, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new UnsupportedModelError(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  const headDim = posInt(cfg, 'head_dim', hiddenSize / numHeads);
  if (headDim % 2 !== 0) throw new UnsupportedModelError(`head_dim ${headDim} is odd; RoPE needs an even head_dim`);
  const attentionBias = cfg.attention_bias === true;
  const qwen2 = arch === 'Qwen2ForCausalLM';
  return {
    architecture: arch,
    modelType: typeof cfg.model_type === 'string' ? cfg.model_type : arch.replace('ForCausalLM', '').toLowerCase(),
    hiddenSize,
    intermediateSize: posInt(cfg, 'intermediate_size'),
    numLayers: posInt(cfg, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: posInt(cfg, 'vocab_size'),
    norm: 'rmsnorm',
    normEps: num(cfg, 'rms_norm_eps', 1e-6),
    mlp: 'swiglu',
    // Qwen2 always has q/k/v biases and no o_proj bias (its attention ignores attention_bias).
    qkvBias: qwen2 || attentionBias,
    oBias: !qwen2 && attentionBias,
    mlpBias: cfg.mlp_bias === true,
    qkNorm: arch === 'Qwen3ForCausalLM',
    positions: 'rope',
    ...ropeOf(cfg),
    maxPositions: posInt(cfg, 'max_position_embeddings', 2048),
    tieWordEmbeddings: cfg.tie_word_embeddings === true,
    ...dtypeOf(cfg),
    ...tokenIds(cfg),
  };
}

function parseGpt2(cfg: Json): ModelConfig {
  const act = cfg.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    throw new UnsupportedModelError(
      `activation_function "${String(act)}" is not supported for GPT2LMHeadModel; Graft supports gelu_new (GELU, tanh approximation)`,
    );
  }
  if (cfg.scale_attn_by_inverse_layer_idx === true) {
    throw new UnsupportedModelError('GPT-2 with scale_attn_by_inverse_layer_idx is not supported');
  }
  if (cfg.scale_attn_weights === false) throw new UnsupportedModelError('GPT-2 with scale_attn_weights: false is not supported');
  if (cfg.add_cross_attention === true) throw new UnsupportedModelError('GPT-2 with add_cross_attention is not supported');
  const hiddenSize = posInt(cfg, 'n_embd');
  const numHeads = posInt(cfg, 'n_head');
  if (hiddenSize % numHeads !== 0) {
    throw new UnsupportedModelError(`n_embd ${hiddenSize} is not a multiple of n_head ${numHeads}`);
  }
  return {
    architecture: 'GPT2LMHeadModel',
    modelType: 'gpt2',
    hiddenSize,
    intermediateSize: posInt(cfg, 'n_inner', 4 * hiddenSize),
    numLayers: posInt(cfg, 'n_layer'),
    numHeads,
    numKvHeads: numHeads,
    headDim: hiddenSize / numHeads,
    vocabSize: posInt(cfg, 'vocab_size'),
    norm: 'layernorm',
    normEps: num(cfg, 'layer_norm_epsilon', 1e-5),
    mlp: 'gelu_tanh',
    qkvBias: true,
    oBias: true,
    mlpBias: true,
    qkNorm: false,
    positions: 'learned',
    ropeTheta: 10000,
    maxPositions: posInt(cfg, 'n_positions', typeof cfg.n_ctx === 'number' ? cfg.n_ctx : 1024),
    tieWordEmbeddings: cfg.tie_word_embeddings !== false,
    ...dtypeOf(cfg),
    ...tokenIds(cfg),
  };
}

export function parseConfig(json: unknown): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new UnsupportedModelError('config.json is not a JSON object');
  }
  const cfg = json as Json;
  const arch = architectureOf(cfg);
  refuseUnsupportedSettings(cfg, arch);
  return arch === 'GPT2LMHeadModel' ? parseGpt2(cfg) : parseLlamaLike(cfg, arch);
}
