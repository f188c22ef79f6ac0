// Model configuration read from a Hugging Face config.json: the architectures Graft runs, as flags of one
// decoder (docs/model.md, "Architectures"). Anything else is refused with an UnsupportedModelError that names it.
// Every number is checked here, when config.json is parsed, against what a model can be (checkValues): an absurd
// vocab_size, layer count or epsilon is refused with a sentence naming the setting, before anything is sized.
import type { RopeScaling } from '../engine/ops/rope';
import { CodedError } from '../engine/errors';

export type Architecture = 'LlamaForCausalLM' | 'Qwen2ForCausalLM' | 'Qwen3ForCausalLM' | 'Gemma3ForCausalLM' | 'GPT2LMHeadModel';

export const SUPPORTED_ARCHITECTURES: readonly Architecture[] = [
  'LlamaForCausalLM',
  'Qwen2ForCausalLM',
  'Qwen3ForCausalLM',
  'Gemma3ForCausalLM',
  'GPT2LMHeadModel',
];

/** A layer's attention: over every earlier position, or a sliding window of them (Gemma 3's local layers). */
export type LayerType = 'full' | 'sliding';

export interface ModelConfig {
  architecture: Architecture;
  /** config.json's model_type: 'llama', 'qwen2', 'qwen3', 'gemma3_text' or 'gpt2'. */
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
  /**
   * 'swiglu': down(silu(gate(x))·up(x)); 'geglu': down(gelu_tanh(gate(x))·up(x)) (Gemma's gelu_pytorch_tanh);
   * 'gelu_tanh': c_proj(gelu_tanh(c_fc(x))) (GPT-2's gelu_new).
   */
  mlp: 'swiglu' | 'geglu' | 'gelu_tanh';
  /** Whether q, k and v carry a bias (Qwen2, GPT-2, Llama with attention_bias). */
  qkvBias: boolean;
  /** Whether the attention output projection carries a bias (GPT-2, Llama with attention_bias). */
  oBias: boolean;
  /** Whether the MLP's linears carry biases (GPT-2, Llama with mlp_bias). */
  mlpBias: boolean;
  /** Qwen3, Gemma 3: RMSNorm with its own weight [head_dim] over each head of q and of k, before RoPE. */
  qkNorm: boolean;
  /** Gemma: every RMSNorm's gain is 1 + weight (the checkpoint stores the offset from 1). */
  normPlusOne: boolean;
  /**
   * Gemma 3's four norms a layer: input_layernorm before attention, post_attention_layernorm on the attention
   * output before the residual add, pre_feedforward_layernorm before the MLP, post_feedforward_layernorm on its
   * output before the residual add. False: the usual two (input_layernorm, post_attention_layernorm before the MLP).
   */
  sandwichNorms: boolean;
  /** The attention scores' scale: 1/√head_dim, or Gemma's 1/√query_pre_attn_scalar. */
  attentionScale: number;
  /** Each layer's attention (Gemma 3's layer_types, or its sliding_window_pattern); all 'full' elsewhere. */
  layerTypes: LayerType[];
  /** The window of 'sliding' layers (sliding_window): a query sees its own and the window − 1 positions before; 0: none. */
  slidingWindow: number;
  /** The RoPE base of 'sliding' layers (Gemma's rope_local_base_freq); 'full' layers use ropeTheta. */
  ropeLocalTheta?: number;
  /** Gemma: the token embeddings are multiplied by √hidden_size (rounded to the embedding's dtype, as transformers does). */
  embedScale?: number;
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
  gemma3_text: 'Gemma3ForCausalLM',
  gpt2: 'GPT2LMHeadModel',
};

function architectureOf(cfg: Json): Architecture {
  const archs = cfg.architectures;
  const named = Array.isArray(archs) && archs.length > 0 ? String(archs[0]) : undefined;
  const modelType = typeof cfg.model_type === 'string' ? cfg.model_type : undefined;
  const arch = named ?? (modelType ? (MODEL_TYPES[modelType] ?? modelType) : 'unknown');
  if ((SUPPORTED_ARCHITECTURES as readonly string[]).includes(arch)) return arch as Architecture;
  if (arch === 'Gemma3ForConditionalGeneration' || modelType === 'gemma3') {
    throw new UnsupportedModelError(
      'This is a Gemma 3 image-and-text model (Gemma3ForConditionalGeneration: gemma-3-4b and larger), which Graft does not run; Graft runs the text-only Gemma 3 models (Gemma3ForCausalLM: gemma-3-270m, gemma-3-1b and their -it versions).',
    );
  }
  const moe = /moe|mixtral|expert/i.test(arch) || /moe|mixtral/i.test(modelType ?? '');
  const why = moe ? ' (mixture-of-experts models are not supported)' : '';
  throw new UnsupportedModelError(
    `The architecture ${arch} is not supported${why}. Graft runs ${SUPPORTED_ARCHITECTURES.join(', ')}.`,
  );
}

/**
 * The ranges a real model's numbers fall in. Values outside them are refused when config.json is parsed, naming
 * the setting: sizes like vocab_size 1e12 or num_hidden_layers 1e9 would otherwise reach array allocations and
 * kernels ("Invalid array length", a kernel error) long after the file was read.
 */
const LIMITS: [keys: string[], max: number, what: string][] = [
  [['vocab_size'], 2 ** 24, 'tokens in a vocabulary'],
  [['hidden_size', 'n_embd'], 65536, 'for the hidden size'],
  [['intermediate_size', 'n_inner'], 2 ** 20, 'for the MLP width'],
  [['num_hidden_layers', 'n_layer'], 1024, 'layers'],
  [['num_attention_heads', 'n_head', 'num_key_value_heads'], 1024, 'heads'],
  [['head_dim'], 1024, 'for the head dimension'],
  [['max_position_embeddings', 'n_positions', 'n_ctx'], 2 ** 24, 'positions'],
  [['sliding_window'], 2 ** 24, 'positions in a sliding window'],
];

function checkValues(cfg: Json): void {
  for (const [keys, max, what] of LIMITS) {
    for (const key of keys) {
      const v = cfg[key];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isInteger(v) || v <= 0) {
        throw new UnsupportedModelError(`config.json: "${key}" is ${JSON.stringify(v)}; it must be a positive whole number. The file is damaged or not a model configuration.`);
      }
      if (v > max) {
        throw new UnsupportedModelError(`config.json: "${key}" is ${v}, more than any model Graft can load has (at most ${max.toLocaleString('en-US')} ${what}). The file is damaged or not a model configuration.`);
      }
    }
  }
  for (const key of ['rms_norm_eps', 'layer_norm_epsilon']) {
    const v = cfg[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !(v > 0 && v < 1)) {
      throw new UnsupportedModelError(`config.json: "${key}" is ${JSON.stringify(v)}; a norm's epsilon must be a small positive number (such as 1e-6). The file is damaged or not a model configuration.`);
    }
  }
  for (const key of ['rope_theta', 'rope_local_base_freq', 'query_pre_attn_scalar']) {
    const v = cfg[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
      throw new UnsupportedModelError(`config.json: "${key}" is ${JSON.stringify(v)}; it must be a positive number. The file is damaged or not a model configuration.`);
    }
  }
}

/** Settings no supported architecture may have: mixture of experts, sliding-window attention. */
function refuseUnsupportedSettings(cfg: Json, arch: Architecture): void {
  const q = cfg.quantization_config;
  if (q !== undefined && q !== null) {
    const method = typeof q === 'object' && !Array.isArray(q) ? (q as Json).quant_method : undefined;
    throw new UnsupportedModelError(
      `This checkpoint is already quantized (config.json has a quantization_config${typeof method === 'string' ? `, quant_method "${method}"` : ''}), which Graft cannot load. Use the unquantized model (F32, F16 or BF16 weights) and set quantization_bit 4 or 8: Graft quantizes it as it loads.`,
    );
  }
  for (const key of ['num_experts', 'num_local_experts', 'n_routed_experts']) {
    const v = cfg[key];
    if (typeof v === 'number' && v > 0) {
      throw new UnsupportedModelError(`${arch} with ${key} = ${v} is a mixture-of-experts model, which Graft does not support`);
    }
  }
  if (cfg.use_sliding_window === true) {
    throw new UnsupportedModelError(
      `Sliding-window attention (use_sliding_window: true, sliding_window ${String(cfg.sliding_window)}) is not supported for ${arch}`,
    );
  }
  if (arch !== 'Gemma3ForCausalLM' && Array.isArray(cfg.layer_types) && cfg.layer_types.some((t) => t !== 'full_attention')) {
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

/** What every architecture but Gemma 3 has: plain norms, 1/√head_dim, full attention in every layer. */
function plainLayers(layers: number, headDim: number) {
  return {
    normPlusOne: false,
    sandwichNorms: false,
    attentionScale: 1 / Math.sqrt(headDim),
    layerTypes: Array.from({ length: layers }, (): LayerType => 'full'),
    slidingWindow: 0,
  };
}

/**
 * The shape of a RoPE decoder (Llama, Qwen2/3, Gemma 3): hidden size, attention heads and key/value heads (a
 * divisor of the heads), an even head_dim (its default from `defaultHeadDim`), and the layer count.
 */
function ropeDecoderShape(cfg: Json, defaultHeadDim: (hiddenSize: number, numHeads: number) => number) {
  const hiddenSize = posInt(cfg, 'hidden_size');
  const numHeads = posInt(cfg, 'num_attention_heads');
  const numKvHeads = posInt(cfg, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new UnsupportedModelError(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  const headDim = posInt(cfg, 'head_dim', defaultHeadDim(hiddenSize, numHeads));
  if (headDim % 2 !== 0) throw new UnsupportedModelError(`head_dim ${headDim} is odd; RoPE needs an even head_dim`);
  return { hiddenSize, numHeads, numKvHeads, headDim, numLayers: posInt(cfg, 'num_hidden_layers') };
}

function parseLlamaLike(cfg: Json, arch: Architecture): ModelConfig {
  const act = cfg.hidden_act ?? 'silu';
  if (act !== 'silu') {
    throw new UnsupportedModelError(`hidden_act "${String(act)}" is not supported for ${arch}; Graft supports silu`);
  }
  const { hiddenSize, numHeads, numKvHeads, headDim, numLayers } = ropeDecoderShape(cfg, (hidden, heads) => hidden / heads);
  const attentionBias = cfg.attention_bias === true;
  const qwen2 = arch === 'Qwen2ForCausalLM';
  return {
    architecture: arch,
    modelType: typeof cfg.model_type === 'string' ? cfg.model_type : arch.replace('ForCausalLM', '').toLowerCase(),
    hiddenSize,
    intermediateSize: posInt(cfg, 'intermediate_size'),
    numLayers,
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
    ...plainLayers(numLayers, headDim),
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
  const numLayers = posInt(cfg, 'n_layer');
  return {
    architecture: 'GPT2LMHeadModel',
    modelType: 'gpt2',
    hiddenSize,
    intermediateSize: posInt(cfg, 'n_inner', 4 * hiddenSize),
    numLayers,
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
    ...plainLayers(numLayers, hiddenSize / numHeads),
    positions: 'learned',
    ropeTheta: 10000,
    maxPositions: posInt(cfg, 'n_positions', typeof cfg.n_ctx === 'number' ? cfg.n_ctx : 1024),
    tieWordEmbeddings: cfg.tie_word_embeddings !== false,
    ...dtypeOf(cfg),
    ...tokenIds(cfg),
  };
}

/**
 * Gemma 3 text models (Gemma3ForCausalLM, model_type gemma3_text), in the three ways config.json writes them:
 * `layer_types` + `sliding_window` + `rope_theta` / `rope_local_base_freq` (transformers 4.5x); the older
 * `sliding_window_pattern` (every n-th layer full, the rest sliding: transformers' rule) instead of layer_types;
 * and transformers 5's `rope_parameters` per layer type ({full_attention: {rope_theta}, sliding_attention:
 * {rope_theta}}). Defaults are Gemma3TextConfig's (sliding_window_pattern 6, rope_theta 1e6, local 1e4,
 * query_pre_attn_scalar 256, tied embeddings).
 */
function parseGemma3(cfg: Json): ModelConfig {
  const act = cfg.hidden_activation ?? cfg.hidden_act ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh') {
    throw new UnsupportedModelError(`hidden_activation "${String(act)}" is not supported for Gemma3ForCausalLM; Graft supports gelu_pytorch_tanh`);
  }
  for (const key of ['final_logit_softcapping', 'attn_logit_softcapping']) {
    if (cfg[key] !== undefined && cfg[key] !== null) {
      throw new UnsupportedModelError(`${key} ${String(cfg[key])} is not supported (Gemma 3's own configs leave it null; Gemma 2 softcaps, Graft does not)`);
    }
  }
  if (cfg.use_bidirectional_attention === true) {
    throw new UnsupportedModelError('use_bidirectional_attention: true (an embedding model, not a causal language model) is not supported');
  }
  const { hiddenSize, numHeads, numKvHeads, headDim, numLayers } = ropeDecoderShape(cfg, () => 256);
  let layerTypes: LayerType[];
  if (Array.isArray(cfg.layer_types)) {
    if (cfg.layer_types.length !== numLayers) {
      throw new UnsupportedModelError(`config.json: "layer_types" lists ${cfg.layer_types.length} layers, but num_hidden_layers is ${numLayers}`);
    }
    layerTypes = cfg.layer_types.map((t, i) => {
      if (t === 'full_attention') return 'full';
      if (t === 'sliding_attention') return 'sliding';
      throw new UnsupportedModelError(`config.json: layer_types[${i}] is "${String(t)}"; Gemma 3 layers are "full_attention" or "sliding_attention"`);
    });
  } else {
    const pattern = posInt(cfg, 'sliding_window_pattern', 6);
    layerTypes = Array.from({ length: numLayers }, (_, i): LayerType => ((i + 1) % pattern !== 0 ? 'sliding' : 'full'));
  }
  const sliding = layerTypes.includes('sliding');
  const slidingWindow = sliding ? posInt(cfg, 'sliding_window', 4096) : 0;
  // RoPE: transformers 5 nests the two bases in rope_parameters by layer type; earlier configs give rope_theta
  // (full layers, with rope_scaling) and rope_local_base_freq (sliding layers).
  const rp = (typeof cfg.rope_parameters === 'object' && cfg.rope_parameters !== null ? cfg.rope_parameters : {}) as Json;
  const full = (typeof rp.full_attention === 'object' && rp.full_attention !== null ? rp.full_attention : null) as Json | null;
  const local = (typeof rp.sliding_attention === 'object' && rp.sliding_attention !== null ? rp.sliding_attention : null) as Json | null;
  for (const [name, r] of [['full_attention', full], ['sliding_attention', local]] as const) {
    const type = r?.rope_type ?? 'default';
    if (type !== 'default') throw new UnsupportedModelError(`RoPE scaling type "${String(type)}" (rope_parameters.${name}) is not supported for Gemma 3`);
  }
  const scaling = cfg.rope_scaling as Json | null | undefined;
  if (scaling && (scaling.rope_type ?? scaling.type ?? 'default') !== 'default') {
    throw new UnsupportedModelError(`RoPE scaling type "${String(scaling.rope_type ?? scaling.type)}" is not supported for Gemma 3 (the text-only models use none)`);
  }
  const ropeTheta = num({ v: full?.rope_theta ?? cfg.rope_theta ?? 1_000_000 }, 'v');
  const ropeLocalTheta = num({ v: local?.rope_theta ?? cfg.rope_local_base_freq ?? 10_000 }, 'v');
  if (!(ropeTheta > 0 && ropeLocalTheta > 0)) throw new UnsupportedModelError('config.json: the RoPE bases (rope_theta, rope_local_base_freq) must be positive');
  const queryPreAttnScalar = num(cfg, 'query_pre_attn_scalar', 256);
  return {
    architecture: 'Gemma3ForCausalLM',
    modelType: 'gemma3_text',
    hiddenSize,
    intermediateSize: posInt(cfg, 'intermediate_size'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: posInt(cfg, 'vocab_size'),
    norm: 'rmsnorm',
    normEps: num(cfg, 'rms_norm_eps', 1e-6),
    mlp: 'geglu',
    qkvBias: cfg.attention_bias === true,
    oBias: cfg.attention_bias === true,
    mlpBias: false,
    qkNorm: true,
    normPlusOne: true,
    sandwichNorms: true,
    attentionScale: 1 / Math.sqrt(queryPreAttnScalar),
    layerTypes,
    slidingWindow,
    ropeLocalTheta,
    // transformers: hidden_size ** 0.5 (the embedding rounds it to its dtype).
    embedScale: Math.sqrt(hiddenSize),
    positions: 'rope',
    ropeTheta,
    maxPositions: posInt(cfg, 'max_position_embeddings', 131072),
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
  checkValues(cfg);
  refuseUnsupportedSettings(cfg, arch);
  if (arch === 'GPT2LMHeadModel') return parseGpt2(cfg);
  return arch === 'Gemma3ForCausalLM' ? parseGemma3(cfg) : parseLlamaLike(cfg, arch);
}

/** The value checks of parseConfig alone (for describing a model Graft may not run): throws UnsupportedModelError. */
export function checkConfigValues(json: Record<string, unknown>): void {
  checkValues(json);
}
