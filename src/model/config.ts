// Model configuration read from a Hugging Face config.json. Only what Graft can run is accepted; anything
// else is refused with a message that names the architecture or setting.
import type { RopeScaling } from '../engine/ops/rope';

export interface ModelConfig {
  architecture: 'LlamaForCausalLM';
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  maxPositions: number;
  tieWordEmbeddings: boolean;
}

export class UnsupportedModelError extends Error {
  readonly code = 'unsupported-model';
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedModelError';
  }
}

function num(cfg: Record<string, unknown>, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new UnsupportedModelError(`config.json: "${key}" is missing or not a number`);
  }
  return v;
}

export function parseConfig(json: unknown): ModelConfig {
  if (typeof json !== 'object' || json === null) throw new UnsupportedModelError('config.json is not a JSON object');
  const cfg = json as Record<string, unknown>;
  const archs = cfg.architectures;
  const arch = Array.isArray(archs) ? String(archs[0]) : String(cfg.model_type ?? 'unknown');
  if (arch !== 'LlamaForCausalLM') {
    throw new UnsupportedModelError(`The architecture ${arch} is not supported yet; Graft runs LlamaForCausalLM.`);
  }
  const act = cfg.hidden_act ?? 'silu';
  if (act !== 'silu') throw new UnsupportedModelError(`hidden_act "${String(act)}" is not supported; Llama models use silu`);
  if (cfg.attention_bias === true || cfg.mlp_bias === true) {
    throw new UnsupportedModelError('Llama models with attention_bias or mlp_bias are not supported yet');
  }
  const ropeParams = (cfg.rope_parameters ?? {}) as Record<string, unknown>;
  const ropeTheta = num({ ...ropeParams, ...cfg }, 'rope_theta', typeof ropeParams.rope_theta === 'number' ? ropeParams.rope_theta : 10000);
  const scalingRaw = (cfg.rope_scaling ?? (ropeParams.rope_type && ropeParams.rope_type !== 'default' ? ropeParams : null)) as
    | Record<string, unknown>
    | null;
  let ropeScaling: RopeScaling | undefined;
  if (scalingRaw) {
    const type = scalingRaw.rope_type ?? scalingRaw.type;
    if (type === 'llama3') {
      ropeScaling = {
        type: 'llama3',
        factor: num(scalingRaw, 'factor'),
        lowFreqFactor: num(scalingRaw, 'low_freq_factor'),
        highFreqFactor: num(scalingRaw, 'high_freq_factor'),
        originalMaxPositionEmbeddings: num(scalingRaw, 'original_max_position_embeddings'),
      };
    } else if (type !== 'default') {
      throw new UnsupportedModelError(`rope_scaling type "${String(type)}" is not supported; Graft supports llama3`);
    }
  }
  const hiddenSize = num(cfg, 'hidden_size');
  const numHeads = num(cfg, 'num_attention_heads');
  const numKvHeads = num(cfg, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new UnsupportedModelError(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  return {
    architecture: 'LlamaForCausalLM',
    hiddenSize,
    intermediateSize: num(cfg, 'intermediate_size'),
    numLayers: num(cfg, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim: num(cfg, 'head_dim', hiddenSize / numHeads),
    vocabSize: num(cfg, 'vocab_size'),
    rmsNormEps: num(cfg, 'rms_norm_eps', 1e-6),
    ropeTheta,
    ...(ropeScaling ? { ropeScaling } : {}),
    maxPositions: num(cfg, 'max_position_embeddings', 2048),
    tieWordEmbeddings: cfg.tie_word_embeddings === true,
  };
}
