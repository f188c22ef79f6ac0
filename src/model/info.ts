// What a model is and what it needs, before it is loaded: from config.json and the safetensors headers only
// (with a source that has readHead, only the header bytes of each weight file are read). No GPU needed, so the
// app can show it in the model picker and warn before a download or a load that cannot fit.
import { parseConfig, UnsupportedModelError } from './config';
import { DTYPE_SIZE } from './safetensors';
import { readJson, type ModelSource } from './source';
import { readWeightHeaders, type WeightHeaders } from './weights';

export interface MemoryEstimates {
  /** Generating with a KV cache for `seqLen` tokens. */
  inferenceBytes: number;
  /** LoRA training (rank `loraRank` on all seven projections), batch 1, `seqLen` tokens. */
  loraTrainBytes: number;
  /** Full fine-tuning, batch 1, `seqLen` tokens. */
  fullTrainBytes: number;
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
export interface ShapeNumbers {
  layers: number;
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  /** Gated MLP (gate, up, down: Llama, Qwen) or two matrices (fc, proj: GPT-2). */
  gatedMlp: boolean;
}

export const ESTIMATE_SEQ_LEN = 512;
export const ESTIMATE_LORA_RANK = 8;

/**
 * GPU memory estimates (bytes, f32 everywhere, batch 1, S = `seqLen` tokens). P = parameters, L = layers,
 * H = hidden, I = intermediate, V = vocabulary, q = heads·headDim, kv = kvHeads·headDim, m = 3 for a gated MLP
 * (2 for GPT-2).
 *
 * - weights W = 4·P.
 * - saved activations per token and layer (what the forward keeps for the backward, as llama.ts saves them):
 *   a = 4H (x, h1, x2, h2) + 2q (q, attention out) + 2kv (k, v) + (m)·I (gate, up, act) + 2 + heads (rstd, lse);
 *   A = 4·S·(L·a + 3H) + 4·2·S·V (the logits and their gradient) + transient backward buffers
 *   4·S·(2H + 3I + 2q + 2kv). Attention scores are never materialised (row-wise kernels with a saved lse).
 * - inference = W + KV cache 4·2·L·S·kv + one layer's transient prefill activations 4·S·(3H + q + 2kv + m·I)
 *   + logits 4·S·V.
 * - LoRA train = W + 4·4·R (LoRA weights, gradients, Adam m and v; R = r·Σ(in + out) over the q, k, v, o and
 *   MLP projections of every layer) + A + 4·S·L·7·r (the LoRA down-projections saved for the backward).
 * - full train = 4·4·P (weights, gradients, Adam m and v) + A.
 * Buffer pooling rounds allocations up by at most ~19%, not included; nor is the browser's own overhead.
 */
export function estimateMemory(p: number, s: ShapeNumbers, seqLen = ESTIMATE_SEQ_LEN, loraRank = ESTIMATE_LORA_RANK): MemoryEstimates {
  const { layers: L, hidden: H, intermediate: I, heads, vocab: V } = s;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const m = s.gatedMlp ? 3 : 2;
  const S = seqLen;
  const F = 4;
  const weights = F * p;
  const perTokenLayer = 4 * H + 2 * q + 2 * kv + m * I + 2 + heads;
  const activations = F * S * (L * perTokenLayer + 3 * H) + F * 2 * S * V + F * S * (2 * H + 3 * I + 2 * q + 2 * kv);
  const kvCache = F * 2 * L * S * kv;
  const inference = weights + kvCache + F * S * (3 * H + q + 2 * kv + m * I) + F * S * V;
  const mlpLora = s.gatedMlp ? 2 * (H + I) + (I + H) : 2 * (H + I);
  const loraParams = L * loraRank * ((H + q) * 2 + (H + kv) * 2 + mlpLora);
  const loraTrain = weights + F * 4 * loraParams + activations + F * S * L * 7 * loraRank;
  const fullTrain = F * 4 * p + activations;
  return { inferenceBytes: inference, loraTrainBytes: loraTrain, fullTrainBytes: fullTrain };
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
  return {
    layers: need('layers', 'num_hidden_layers', 'n_layer'),
    hidden,
    intermediate: pick(cfg, 'intermediate_size', 'n_inner', 'ffn_dim') ?? 4 * hidden,
    heads,
    kvHeads: pick(cfg, 'num_key_value_heads') ?? heads,
    headDim: pick(cfg, 'head_dim') ?? hidden / heads,
    vocab: need('vocabulary', 'vocab_size'),
    gatedMlp,
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
  const archs = cfg.architectures;
  const architecture = Array.isArray(archs) && archs.length > 0 ? String(archs[0]) : String(cfg.model_type ?? 'unknown');
  let unsupportedReason: string | undefined;
  try {
    parseConfig(cfg);
  } catch (e) {
    if (!(e instanceof UnsupportedModelError)) throw e;
    unsupportedReason = e.message;
  }
  const shape = shapeNumbers(cfg);
  // transformers' default for tie_word_embeddings is per model class: LlamaConfig and Qwen2Config say false,
  // GPT-2 ties always. Only a tied lm_head that is stored anyway needs skipping below.
  const tied = cfg.tie_word_embeddings === true || (cfg.tie_word_embeddings === undefined && cfg.model_type === 'gpt2');
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
    estimates: estimateMemory(parameters, shape),
  };
  if (unsupportedReason !== undefined) info.unsupportedReason = unsupportedReason;
  return info;
}
