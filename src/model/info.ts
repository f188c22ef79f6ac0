// What a model is and what it needs, before it is loaded: from config.json and the safetensors headers only
// (with a source that has readHead, only the header bytes of each weight file are read). No GPU needed, so the
// app can show it in the model picker and warn before a download or a load that cannot fit.
import { checkConfigValues, parseConfig, UnsupportedModelError, type ModelConfig } from './config';
import { checkWeights } from './params';
import { PLAN_PRECISIONS, planTrainingStep, planWeightBytes, type PlanPrecision, type PlanShape } from './memory-plan';
import { DTYPE_SIZE } from './safetensors';
import { readJson, type ModelSource } from './source';
import { readWeightHeaders, type WeightHeaders } from './weights';

/** Memory figures by how the frozen base is held (memory-plan.ts's PlanPrecision). */
export type ByPrecision = Record<PlanPrecision, number>;

export interface MemoryEstimates {
  /** Generating with a KV cache for `seqLen` tokens. */
  inferenceBytes: number;
  /** LoRA training (rank `loraRank` on all seven projections), batch 1, `seqLen` tokens. */
  loraTrainBytes: number;
  /** Full fine-tuning, batch 1, `seqLen` tokens. */
  fullTrainBytes: number;
  /**
   * The precision Graft holds this model's frozen weights in unless told otherwise: '16-bit' for an F16/BF16
   * checkpoint (its own precision), 'f32' for an F32 one.
   */
  defaultPrecision: PlanPrecision;
  /** LoRA training (as loraTrainBytes) with the base held f32, 16-bit, 8-bit or 4-bit (quantization_bit). */
  loraTrainByPrecision: ByPrecision;
  /** Generating (as inferenceBytes) with the base held f32, 16-bit, 8-bit or 4-bit. */
  inferenceByPrecision: ByPrecision;
}

export interface ModelInfo {
  /** `architectures[0]` of config.json (or its model_type). */
  architecture: string;
  /** Whether Graft can load it; when not, `unsupportedReason` says why. */
  supported: boolean;
  unsupportedReason?: string;
  /** Distinct parameters: the sum of the stored tensors' sizes, a tied lm_head counted once. */
  parameters: number;
  layers: number;
  hidden: number;
  vocab: number;
  /** The stored dtype ('BF16'); several, by bytes descending, when mixed ('BF16+F32'). */
  weightDtype: string;
  /** Bytes of the stored tensors (as stored: BF16 is 2 bytes a weight). */
  weightBytes: number;
  /** The weight files and their sizes. */
  files: { path: string; size: number }[];
  /** GPU memory in bytes, everything in f32; see {@link estimateMemory} for the formula. */
  estimates: MemoryEstimates;
}

/** The shape numbers the estimates need, read leniently (Llama/Qwen names, and GPT-2's n_embd, n_layer, ...). */
export interface ShapeNumbers extends Pick<PlanShape, 'layers' | 'hidden' | 'intermediate' | 'heads' | 'kvHeads' | 'headDim' | 'vocab' | 'gatedMlp'> {
  /** Optional details for the memory planner (absent: inferred, see planShapeFromNumbers). */
  tied?: boolean;
  qkvBias?: boolean;
  qkNorm?: boolean;
  /** GPT-2's n_positions. */
  positionTable?: number;
  /** Gemma 3: post-attention and post-MLP norms, RoPE tables for its sliding layers, scaled embeddings. */
  sandwichNorms?: boolean;
  localRope?: boolean;
  embedScaled?: boolean;
}

export const ESTIMATE_SEQ_LEN = 512;
export const ESTIMATE_LORA_RANK = 8;

/**
 * GPU memory estimates (bytes, f32 everywhere, batch 1, S = `seqLen` tokens). P = parameters, L = layers,
 * H = hidden, I = intermediate, V = vocabulary, q = heads·headDim, kv = kvHeads·headDim, m = 3 for a gated MLP
 * (2 for GPT-2).
 *
 * - inference = W + KV cache 4·2·L·S·kv + one layer's transient prefill activations 4·S·(3H + q + 2kv + m·I)
 *   + logits 4·S·V, with W = 4·P.
 * - LoRA train (rank `loraRank` on every linear) and full train: the memory planner's predicted peak of one
 *   training step (src/model/memory-plan.ts: weights, adapter, gradients, AdamW moments, saved activations,
 *   logits and dLogits, the backward's temporaries, the pool's size classes), which matches the peak a real
 *   step holds on the GPU. The browser's own overhead is not included.
 */
export function estimateMemory(
  p: number,
  s: ShapeNumbers,
  seqLen = ESTIMATE_SEQ_LEN,
  loraRank = ESTIMATE_LORA_RANK,
  defaultPrecision: PlanPrecision = 'f32',
): MemoryEstimates {
  const { layers: L, hidden: H, intermediate: I, vocab: V } = s;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const m = s.gatedMlp ? 3 : 2;
  const S = seqLen;
  const F = 4;
  const kvCache = F * 2 * L * S * kv;
  const rest = kvCache + F * S * (3 * H + q + 2 * kv + m * I) + F * S * V;
  const inference = F * p + rest;
  const shape = planShapeFromNumbers(s, p);
  const plan = (method: 'lora' | 'full', precision: PlanPrecision = 'f32') =>
    planTrainingStep(shape, { method, batch: 1, seqLen, loraRank, maxPositions: seqLen, precision }).total;
  // Generating with the base held at each precision: its weights as the planner holds them, instead of 4·P.
  const f32Weights = planWeightBytes(shape, 'f32', seqLen);
  const byPrecision = (f: (x: PlanPrecision) => number) => Object.fromEntries(PLAN_PRECISIONS.map((x) => [x, f(x)])) as ByPrecision;
  return {
    inferenceBytes: inference,
    loraTrainBytes: plan('lora'),
    fullTrainBytes: plan('full'),
    defaultPrecision,
    loraTrainByPrecision: byPrecision((x) => plan('lora', x)),
    inferenceByPrecision: byPrecision((x) => inference - f32Weights + planWeightBytes(shape, x, seqLen)),
  };
}

/** The precision Graft holds a checkpoint's frozen weights in by default: 16-bit for F16/BF16 files, f32 else. */
export function defaultPrecisionOf(weightDtype: string): PlanPrecision {
  const first = weightDtype.split('+')[0];
  return first === 'BF16' || first === 'F16' ? '16-bit' : 'f32';
}

/**
 * The planner's shape from the lenient shape numbers. A gated MLP means a Llama/Qwen layout (RMSNorm, RoPE,
 * separate q/k/v), otherwise GPT-2's (LayerNorm, learned positions, fused c_attn, biases everywhere, tied).
 * Details the numbers leave out: q/k/v biases and per-head norms absent, and tied embeddings when the
 * parameter count `p` (if given) is nearer the tied count than the untied one.
 */
export function planShapeFromNumbers(s: ShapeNumbers, p?: number): PlanShape {
  const gpt2 = !s.gatedMlp;
  const base: PlanShape = {
    layers: s.layers,
    hidden: s.hidden,
    intermediate: s.intermediate,
    heads: s.heads,
    kvHeads: s.kvHeads,
    headDim: s.headDim,
    vocab: s.vocab,
    gatedMlp: s.gatedMlp,
    norm: gpt2 ? 'layernorm' : 'rmsnorm',
    fusedQkv: gpt2,
    qkvBias: s.qkvBias ?? gpt2,
    oBias: gpt2,
    mlpBias: gpt2,
    qkNorm: s.qkNorm ?? false,
    positions: gpt2 ? 'learned' : 'rope',
    positionTable: gpt2 ? (s.positionTable ?? 1024) : 0,
    tied: s.tied ?? true,
    ...(s.sandwichNorms ? { sandwichNorms: true } : {}),
    ...(s.localRope ? { localRope: true } : {}),
    ...(s.embedScaled ? { embedScaled: true } : {}),
  };
  if (s.tied === undefined && p !== undefined) {
    const head = s.vocab * s.hidden;
    const untiedCount = shapeParameters({ ...base, tied: false });
    base.tied = Math.abs(p - (untiedCount - head)) <= Math.abs(p - untiedCount);
  }
  return base;
}

/** Parameters of a plan shape (a tied head once). */
function shapeParameters(s: PlanShape): number {
  const { hidden: H, intermediate: I } = s;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const normW = s.norm === 'layernorm' ? 2 * H : H;
  const attn = H * (q + 2 * kv) + q * H + (s.qkvBias ? q + 2 * kv : 0) + (s.oBias ? H : 0) + (s.qkNorm ? 2 * s.headDim : 0);
  const mlp = (s.gatedMlp ? 3 : 2) * H * I + (s.mlpBias ? (s.gatedMlp ? 2 * I + H : I + H) : 0);
  return s.vocab * H * (s.tied ? 1 : 2) + s.positionTable * H + normW + s.layers * (2 * normW + attn + mlp);
}

function pick(cfg: Record<string, unknown>, ...keys: string[]): number | undefined {
  for (const k of keys) {
    const v = cfg[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

/** Reads the shape numbers of any decoder config.json; throws an UnsupportedModelError naming a missing one. */
export function shapeNumbers(cfg: Record<string, unknown>): ShapeNumbers {
  const need = (what: string, ...keys: string[]) => {
    const v = pick(cfg, ...keys);
    if (v === undefined) throw new UnsupportedModelError(`config.json: "${keys[0]}" is missing or not a number`);
    return v;
  };
  const hidden = need('hidden size', 'hidden_size', 'n_embd', 'd_model');
  const heads = need('heads', 'num_attention_heads', 'n_head');
  const modelType = String(cfg.model_type ?? '');
  const gatedMlp = !['gpt2', 'gpt_neox', 'gptj', 'opt', 'phi'].includes(modelType);
  const gemma3 = modelType === 'gemma3_text';
  return {
    layers: need('layers', 'num_hidden_layers', 'n_layer'),
    hidden,
    intermediate: pick(cfg, 'intermediate_size', 'n_inner', 'ffn_dim') ?? 4 * hidden,
    heads,
    kvHeads: pick(cfg, 'num_key_value_heads') ?? heads,
    headDim: pick(cfg, 'head_dim') ?? (gemma3 ? 256 : hidden / heads),
    vocab: need('vocabulary', 'vocab_size'),
    gatedMlp,
    // transformers' defaults: GPT-2 and Gemma 3 tie, Llama and Qwen2 do not unless config.json says so.
    tied: cfg.tie_word_embeddings === true || (cfg.tie_word_embeddings === undefined && (modelType === 'gpt2' || gemma3)),
    qkvBias: modelType === 'qwen2' || cfg.attention_bias === true || !gatedMlp,
    qkNorm: modelType === 'qwen3' || gemma3,
    ...(gemma3 ? { sandwichNorms: true, localRope: true, embedScaled: true } : {}),
    ...(gatedMlp ? {} : { positionTable: pick(cfg, 'n_positions', 'max_position_embeddings') ?? 1024 }),
  };
}

/**
 * Describes a model from its config.json and weight headers. Works for models Graft cannot load too (they get
 * `supported: false` and the reason), so the app can say what a repository holds.
 */
export async function describeModel(source: ModelSource): Promise<ModelInfo> {
  const cfg = await readJson(source, 'config.json', true, 'every model folder needs one');
  return describeFrom(cfg, await readWeightHeaders(source));
}

/** describeModel from a parsed config.json and the weight headers (the loader has both in hand). */
export function describeFrom(cfg: Record<string, unknown>, headers: WeightHeaders): ModelInfo {
  // Numbers no model has (vocab_size 1e12, ...) are refused here too, before anything is sized from them.
  checkConfigValues(cfg);
  const archs = cfg.architectures;
  const architecture = Array.isArray(archs) && archs.length > 0 ? String(archs[0]) : String(cfg.model_type ?? 'unknown');
  let unsupportedReason: string | undefined;
  let parsed: ModelConfig | undefined;
  try {
    parsed = parseConfig(cfg);
  } catch (e) {
    if (!(e instanceof UnsupportedModelError)) throw e;
    unsupportedReason = e.message;
  }
  // A model Graft runs must hold every tensor its config.json calls for, in its shape: refused here with the
  // loader's sentence (ModelWeightsError), before anything is downloaded or trained.
  if (parsed && headers.tensors.size > 0) checkWeights(parsed, { names: [...headers.tensors.keys()], info: (n) => headers.tensors.get(n)! });
  const shape = shapeNumbers(cfg);
  // transformers' default for tie_word_embeddings is per model class: LlamaConfig and Qwen2Config say false,
  // GPT-2 ties always. Only a tied lm_head that is stored anyway needs skipping below.
  const tied = shape.tied === true;
  let parameters = 0;
  let weightBytes = 0;
  const bytesByDtype = new Map<string, number>();
  for (const [name, t] of headers.tensors) {
    const bytes = t.end - t.begin;
    weightBytes += bytes;
    bytesByDtype.set(t.dtype, (bytesByDtype.get(t.dtype) ?? 0) + bytes);
    // A tied lm_head stored anyway is the embedding again: count it once.
    if (tied && name === 'lm_head.weight' && (headers.tensors.has('model.embed_tokens.weight') || headers.tensors.has('transformer.wte.weight') || headers.tensors.has('wte.weight'))) continue;
    parameters += bytes / DTYPE_SIZE[t.dtype];
  }
  const weightDtype = [...bytesByDtype].sort((a, b) => b[1] - a[1]).map(([d]) => d).join('+') || 'none';
  const info: ModelInfo = {
    architecture,
    supported: unsupportedReason === undefined,
    parameters,
    layers: shape.layers,
    hidden: shape.hidden,
    vocab: shape.vocab,
    weightDtype,
    weightBytes,
    files: headers.files,
    estimates: estimateMemory(parameters, shape, ESTIMATE_SEQ_LEN, ESTIMATE_LORA_RANK, defaultPrecisionOf(weightDtype)),
  };
  if (unsupportedReason !== undefined) info.unsupportedReason = unsupportedReason;
  return info;
}
