// The parameters of each architecture: their Hugging Face names and shapes, and loading them from a WeightSource
// onto the GPU (kept 16-bit or quantized, split by rows when larger than a binding): docs/model.md ("Parameters on
// the GPU").
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { quantizeWeight, type QuantFormat } from '../engine/quantize';
import { isQuantized, readWeightF32, uploadQuantized, weightFormatOf, type WeightFormat, type WeightTensor } from '../engine/weight';
import { unpackBf16, unpackF16 } from '../engine/ops/unpack';
import type { ModelConfig } from './config';
import type { SafetensorsDType } from './safetensors';
import { CodedError } from '../engine/errors';

/** Where weights come from (the loader builds one from a single or sharded safetensors; SafetensorsFile is one). */
export interface WeightSource {
  names: string[];
  info(name: string): { dtype: SafetensorsDType; shape: number[] };
  /** The tensor widened to f32 on the CPU (F32/F16/BF16). */
  float32(name: string): Float32Array;
  /** An F16 or BF16 tensor's values as their 16 bits (no widening); absent: 16-bit weights are widened. */
  bits16?(name: string): Uint16Array;
}

/** How the weights are held on the GPU (docs/model.md, "Parameters on the GPU"). */
export interface WeightOptions {
  /** 'file' (default): F16/BF16 matrices stay 16-bit; 'f32': every weight widened to f32 (as before packing). */
  precision?: 'file' | 'f32';
  /** QLoRA: quantize the decoder blocks' linear weights as they load. */
  quantize?: { format: QuantFormat; doubleQuant: boolean } | null;
}

/** Missing, mis-shaped or non-float weights: the checkpoint does not match its config.json. */
export class ModelWeightsError extends CodedError<'bad-weights'> {
  constructor(message: string) {
    super('ModelWeightsError', 'bad-weights', message);
  }
}

/** A parameter on the GPU: one tensor, or row blocks when it is larger than one binding may be. */
export interface ParamTensor {
  /** The Hugging Face name (GPT-2's with the `transformer.` prefix, as GPT2LMHeadModel's state dict has it). */
  name: string;
  /** The name in the checkpoint it came from (GPT-2 checkpoints may lack the prefix). */
  sourceName: string;
  /** The full shape, as stored in the checkpoint (GPT-2's Conv1D weights are [in, out]). */
  shape: number[];
  /**
   * Row blocks in order; parts[i] holds rows [rowStarts[i], rowStarts[i] + parts[i].shape[0]). f32, or a frozen
   * weight kept packed (bf16/f16) or quantized; what trains is f32 (methods.ts widens it).
   */
  parts: WeightTensor[];
  rowStarts: number[];
  /** The checkpoint's dtype of this tensor (exports write it back in it). */
  fileDtype: SafetensorsDType;
  /** A quantized GPT-2 Conv1D weight: held transposed, [out, in] (its `shape` stays the checkpoint's). */
  transposed?: boolean;
}

/** A parameter's f32 tensors: every part must be one (trainable parameters, norm weights, biases). */
export function f32Parts(p: ParamTensor): Tensor[] {
  return p.parts.map((t) => {
    if (weightFormatOf(t) !== 'f32') throw new Error(`${p.name} is held as ${weightFormatOf(t)} on the GPU; this needs it in f32`);
    return t as Tensor;
  });
}

/** How a parameter is held on the GPU. */
export function paramFormat(p: ParamTensor): WeightFormat {
  return weightFormatOf(p.parts[0]!);
}

/**
 * A parameter's values in f32, in the checkpoint's layout (row blocks joined; 16-bit widened exactly; a quantized
 * weight dequantized, and a transposed one put back into [in, out]): for exports.
 */
export async function readParamF32(ctx: GpuContext, p: ParamTensor): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for (const t of p.parts) parts.push(await readWeightF32(ctx, t));
  let out = parts.length === 1 ? parts[0]! : new Float32Array(parts.reduce((n, x) => n + x.length, 0));
  if (parts.length > 1) parts.reduce((at, x) => (out.set(x, at), at + x.length), 0);
  if (p.transposed) {
    const [r, c] = p.shape as [number, number]; // held [c, r]
    const t = new Float32Array(out.length);
    for (let j = 0; j < c; j++) for (let i = 0; i < r; i++) t[i * c + j] = out[j * r + i]!;
    out = t;
  }
  return out;
}

/**
 * Makes a parameter trainable: a 16-bit one is replaced, part by part, by an exact f32 copy (the master weights
 * AdamW updates), in place, so the model reads the copy from now on. f32 parameters are left as they are; a
 * quantized one cannot train (settings refuse full and freeze with quantization_bit).
 */
export function widenParam(ctx: GpuContext, p: ParamTensor): Tensor[] {
  p.parts.forEach((t, i) => {
    if (isQuantized(t)) throw new ModelWeightsError(`${p.name} is ${t.format}-quantized; a quantized weight cannot be trained (train an adapter on it instead).`);
    if (t.dtype === 'f32') return;
    const wide = ctx.empty(t.shape, 'f32', { persistent: true, label: `${p.name} (f32 master copy)` });
    if (t.dtype === 'bf16') unpackBf16(ctx, wide, t);
    else unpackF16(ctx, wide, t);
    t.release(); // the recorded unpack still reads it: buffers are destroyed after the submit
    p.parts[i] = wide;
  });
  return f32Parts(p);
}

export interface NormParams {
  weight: ParamTensor; // [C]
  bias: ParamTensor | null; // [C] (LayerNorm)
}

/** A linear layer: y = x·Wᵀ + b with W [out, in] ('out_in'), or y = x·W + b with W [in, out] ('in_out', Conv1D). */
export interface LinearParams {
  /** The Hugging Face module path, e.g. 'model.layers.0.self_attn.q_proj'; LoRA adapters are keyed by it. */
  module: string;
  weight: ParamTensor;
  bias: ParamTensor | null; // [out]
  layout: 'out_in' | 'in_out';
  inFeatures: number;
  outFeatures: number;
}

export interface LayerParams {
  /** The norm before attention (input_layernorm, GPT-2's ln_1). */
  norm1: NormParams;
  /** GPT-2's fused c_attn: [q | k | v] along the output. Null when q, k, v are separate. */
  qkv: LinearParams | null;
  q: LinearParams | null;
  k: LinearParams | null;
  v: LinearParams | null;
  /** Qwen3's per-head RMSNorm weights [head_dim]. */
  qNorm: ParamTensor | null;
  kNorm: ParamTensor | null;
  o: LinearParams;
  /** Gemma 3: the norm of the attention output before the residual add (its post_attention_layernorm). */
  postAttnNorm: NormParams | null;
  /** The norm before the MLP (post_attention_layernorm; Gemma 3's pre_feedforward_layernorm; GPT-2's ln_2). */
  norm2: NormParams;
  /** SwiGLU's gate (null for GPT-2's plain MLP). */
  gate: LinearParams | null;
  /** up_proj, or GPT-2's c_fc. */
  up: LinearParams;
  /** down_proj, or GPT-2's mlp.c_proj. */
  down: LinearParams;
  /** Gemma 3: the norm of the MLP output before the residual add (post_feedforward_layernorm). */
  postMlpNorm: NormParams | null;
}

export interface ModelParams {
  embed: ParamTensor; // [V, H]
  /** GPT-2's learned position embeddings wpe [n_positions, H]. */
  positions: ParamTensor | null;
  layers: LayerParams[];
  finalNorm: NormParams;
  /** [V, H]; the same object as `embed` when the embeddings are tied. */
  lmHead: ParamTensor;
}

/** Every linear layer of a layer, in forward order. */
export function layerLinears(layer: LayerParams): LinearParams[] {
  return [layer.qkv, layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down].filter(
    (l): l is LinearParams => l !== null,
  );
}

/** Every distinct parameter, embedding first (a tied lm_head appears once, as the embedding). */
export function allParams(p: ModelParams): ParamTensor[] {
  const out: ParamTensor[] = [p.embed];
  if (p.positions) out.push(p.positions);
  for (const layer of p.layers) out.push(...layerParams(layer));
  out.push(p.finalNorm.weight);
  if (p.finalNorm.bias) out.push(p.finalNorm.bias);
  if (p.lmHead !== p.embed) out.push(p.lmHead);
  return out;
}

/** The parameters of one layer. */
export function layerParams(layer: LayerParams): ParamTensor[] {
  const out: ParamTensor[] = [];
  const norm = (n: NormParams) => out.push(n.weight, ...(n.bias ? [n.bias] : []));
  const lin = (l: LinearParams | null) => {
    if (l) out.push(l.weight, ...(l.bias ? [l.bias] : []));
  };
  norm(layer.norm1);
  lin(layer.qkv);
  lin(layer.q);
  lin(layer.k);
  lin(layer.v);
  if (layer.qNorm) out.push(layer.qNorm);
  if (layer.kNorm) out.push(layer.kNorm);
  lin(layer.o);
  if (layer.postAttnNorm) norm(layer.postAttnNorm);
  norm(layer.norm2);
  lin(layer.gate);
  lin(layer.up);
  lin(layer.down);
  if (layer.postMlpNorm) norm(layer.postMlpNorm);
  return out;
}

export function releaseParams(p: ModelParams): void {
  for (const t of allParams(p)) for (const part of t.parts) part.release();
}

// ---- loading -----------------------------------------------------------------------------------------------

const FLOAT_DTYPES: readonly SafetensorsDType[] = ['F32', 'F16', 'BF16', 'F64'];

/** The largest number of rows of `rowElems` values (`bytes` each) one binding of `limit` bytes holds (16-byte rounded). */
export function rowsPerBlock(rowElems: number, limit: number, bytes = 4): number {
  const rowBytes = rowElems * bytes;
  let rows = Math.floor(limit / rowBytes);
  while (rows > 0 && Math.ceil((rows * rowBytes) / 16) * 16 > limit) rows--;
  return rows;
}

/** What a tensor is to the loader: a vector (f32), a matrix (kept in its precision) or a block's linear weight. */
type TensorKind = 'vector' | 'matrix' | 'linear';

class Loader {
  private readonly names: Set<string>;
  constructor(
    readonly ctx: GpuContext,
    readonly cfg: ModelConfig,
    readonly weights: WeightSource,
    /** The binding size above which a tensor is split into row blocks. */
    readonly maxBindingBytes: number,
    readonly opts: WeightOptions = {},
    /** Check names, shapes and dtypes only: no data is read and nothing is uploaded (checkWeights). */
    readonly dryRun = false,
  ) {
    this.names = new Set(weights.names);
  }

  /** The checkpoint's name for `name`: itself, or for GPT-2 the name without `transformer.`. */
  private find(name: string): string | undefined {
    if (this.names.has(name)) return name;
    if (name.startsWith('transformer.')) {
      const bare = name.slice('transformer.'.length);
      if (this.names.has(bare)) return bare;
    }
    return undefined;
  }

  load(name: string, shape: number[], opts: { splittable?: boolean; kind?: TensorKind; storedInOut?: boolean } = {}): ParamTensor {
    const sourceName = this.find(name);
    if (sourceName === undefined) {
      throw new ModelWeightsError(
        `The checkpoint has no tensor "${name}", which a ${this.cfg.architecture} with this config.json needs (shape [${shape.join(', ')}]).`,
      );
    }
    const info = this.weights.info(sourceName);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new ModelWeightsError(
        `Weight "${sourceName}" has shape [${info.shape.join(', ')}], but config.json implies [${shape.join(', ')}].`,
      );
    }
    if (!FLOAT_DTYPES.includes(info.dtype)) {
      throw new ModelWeightsError(
        `Weight "${sourceName}" is ${info.dtype}; Graft loads F32, F16, BF16 and F64 weights${info.dtype.startsWith('F8') || info.dtype === 'I8' || info.dtype === 'U8' ? ' (checkpoints quantized ahead of time are not supported; use the unquantized model, and quantization_bit to quantize it as it loads)' : ''}.`,
      );
    }
    if (this.dryRun) return { name, sourceName, shape, parts: [], rowStarts: [], fileDtype: info.dtype };
    const kind = opts.kind ?? (shape.length < 2 ? 'vector' : 'matrix');
    const q = this.opts.quantize;
    if (kind === 'linear' && q) return this.quantized(name, sourceName, shape, info.dtype, q, opts.storedInOut === true);
    const half = kind !== 'vector' && this.opts.precision !== 'f32' && (info.dtype === 'F16' || info.dtype === 'BF16') && this.weights.bits16 !== undefined;
    const data: Float32Array | Uint16Array = half ? this.weights.bits16!(sourceName) : this.weights.float32(sourceName);
    const dtype = half ? (info.dtype === 'F16' ? 'f16' : 'bf16') : 'f32';
    const rowElems = shape.slice(1).reduce((a, b) => a * b, 1);
    const rows = shape[0]!;
    const perBlock = shape.length < 2 ? rows : rowsPerBlock(rowElems, this.maxBindingBytes, half ? 2 : 4);
    const fitsOne = perBlock >= rows;
    if (!fitsOne && !opts.splittable) {
      throw new ModelWeightsError(
        `Weight "${sourceName}" [${shape.join(', ')}] is larger than one GPU buffer binding may be (${this.maxBindingBytes} bytes); only the embedding and lm_head can be split.`,
      );
    }
    if (perBlock === 0) throw new ModelWeightsError(`Weight "${sourceName}": one row of ${rowElems} values exceeds the GPU's binding limit`);
    const parts: Tensor[] = [];
    const rowStarts: number[] = [];
    for (let r0 = 0; r0 < rows; r0 += perBlock) {
      const n = Math.min(perBlock, rows - r0);
      const partShape = [n, ...shape.slice(1)];
      const label = fitsOne ? name : `${name} rows ${r0}..${r0 + n}`;
      parts.push(this.ctx.upload(partShape, data.subarray(r0 * rowElems, (r0 + n) * rowElems), dtype, { persistent: true, label }));
      rowStarts.push(r0);
    }
    return { name, sourceName, shape, parts, rowStarts, fileDtype: info.dtype };
  }

  /** A block's linear weight quantized on the CPU as it loads (GPT-2's [in, out] transposed to [out, in] first). */
  private quantized(name: string, sourceName: string, shape: number[], fileDtype: SafetensorsDType, q: NonNullable<WeightOptions['quantize']>, inOut: boolean): ParamTensor {
    let values = this.weights.float32(sourceName);
    const [r, c] = shape as [number, number];
    if (inOut) {
      const t = new Float32Array(values.length);
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = values[i * c + j]!;
      values = t;
    }
    const held = inOut ? [c, r] : [r, c];
    const part = uploadQuantized(this.ctx, held, quantizeWeight(values, q.format, q.doubleQuant), name);
    return { name, sourceName, shape, parts: [part], rowStarts: [0], fileDtype, ...(inOut ? { transposed: true } : {}) };
  }

  norm(prefix: string, C: number): NormParams {
    const layer = this.cfg.norm === 'layernorm';
    return { weight: this.load(`${prefix}.weight`, [C]), bias: layer ? this.load(`${prefix}.bias`, [C]) : null };
  }

  /** The blocks' linear weights met so far (the checkpoint's names; quantized weights when quantizing). */
  readonly linears: { name: string; shape: number[]; inOut: boolean }[] = [];

  linear(module: string, inF: number, outF: number, bias: boolean, layout: 'out_in' | 'in_out'): LinearParams {
    const shape = layout === 'out_in' ? [outF, inF] : [inF, outF];
    const weight = this.load(`${module}.weight`, shape, { kind: 'linear', storedInOut: layout === 'in_out' });
    this.linears.push({ name: weight.sourceName, shape, inOut: layout === 'in_out' });
    return {
      module,
      weight,
      bias: bias ? this.load(`${module}.bias`, [outF]) : null,
      // A quantized Conv1D weight is held [out, in]: the matmuls then read it as nn.Linear's.
      layout: weight.transposed ? 'out_in' : layout,
      inFeatures: inF,
      outFeatures: outF,
    };
  }
}

function loadLlamaLike(l: Loader, cfg: ModelConfig): ModelParams {
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: D, vocabSize: V } = cfg;
  const embed = l.load('model.embed_tokens.weight', [V, H], { splittable: true });
  const layers = Array.from({ length: cfg.numLayers }, (_, i): LayerParams => {
    const p = `model.layers.${i}`;
    return {
      norm1: l.norm(`${p}.input_layernorm`, H),
      qkv: null,
      q: l.linear(`${p}.self_attn.q_proj`, H, nh * D, cfg.qkvBias, 'out_in'),
      k: l.linear(`${p}.self_attn.k_proj`, H, nkv * D, cfg.qkvBias, 'out_in'),
      v: l.linear(`${p}.self_attn.v_proj`, H, nkv * D, cfg.qkvBias, 'out_in'),
      qNorm: cfg.qkNorm ? l.load(`${p}.self_attn.q_norm.weight`, [D]) : null,
      kNorm: cfg.qkNorm ? l.load(`${p}.self_attn.k_norm.weight`, [D]) : null,
      o: l.linear(`${p}.self_attn.o_proj`, nh * D, H, cfg.oBias, 'out_in'),
      // Gemma 3's post_attention_layernorm normalizes the attention output; its MLP has a norm of its own.
      postAttnNorm: cfg.sandwichNorms ? l.norm(`${p}.post_attention_layernorm`, H) : null,
      norm2: l.norm(cfg.sandwichNorms ? `${p}.pre_feedforward_layernorm` : `${p}.post_attention_layernorm`, H),
      gate: l.linear(`${p}.mlp.gate_proj`, H, I, cfg.mlpBias, 'out_in'),
      up: l.linear(`${p}.mlp.up_proj`, H, I, cfg.mlpBias, 'out_in'),
      down: l.linear(`${p}.mlp.down_proj`, I, H, cfg.mlpBias, 'out_in'),
      postMlpNorm: cfg.sandwichNorms ? l.norm(`${p}.post_feedforward_layernorm`, H) : null,
    };
  });
  return {
    embed,
    positions: null,
    layers,
    finalNorm: l.norm('model.norm', H),
    lmHead: cfg.tieWordEmbeddings ? embed : l.load('lm_head.weight', [V, H], { splittable: true }),
  };
}

function loadGpt2(l: Loader, cfg: ModelConfig): ModelParams {
  const { hiddenSize: H, intermediateSize: I, vocabSize: V } = cfg;
  const embed = l.load('transformer.wte.weight', [V, H], { splittable: true });
  const positions = l.load('transformer.wpe.weight', [cfg.maxPositions, H], { splittable: true });
  const layers = Array.from({ length: cfg.numLayers }, (_, i): LayerParams => {
    const p = `transformer.h.${i}`;
    return {
      norm1: l.norm(`${p}.ln_1`, H),
      qkv: l.linear(`${p}.attn.c_attn`, H, 3 * H, true, 'in_out'),
      q: null,
      k: null,
      v: null,
      qNorm: null,
      kNorm: null,
      o: l.linear(`${p}.attn.c_proj`, H, H, true, 'in_out'),
      postAttnNorm: null,
      norm2: l.norm(`${p}.ln_2`, H),
      gate: null,
      up: l.linear(`${p}.mlp.c_fc`, H, I, true, 'in_out'),
      down: l.linear(`${p}.mlp.c_proj`, I, H, true, 'in_out'),
      postMlpNorm: null,
    };
  });
  return {
    embed,
    positions,
    layers,
    finalNorm: l.norm('transformer.ln_f', H),
    lmHead: cfg.tieWordEmbeddings ? embed : l.load('lm_head.weight', [V, H], { splittable: true }),
  };
}

/**
 * Checks that `weights` hold every tensor `cfg` calls for, with the shape config.json implies and a float dtype,
 * without reading or uploading any data (a safetensors header is enough): throws the loader's ModelWeightsError,
 * so `graft info` and the app's model card refuse what loading would refuse, before a download or a run.
 */
export function checkWeights(cfg: ModelConfig, weights: Pick<WeightSource, 'names' | 'info'>): void {
  dryLoad(cfg, weights);
}

/**
 * The blocks' linear weights by their checkpoint names: what quantization_bit quantizes (GPT-2's Conv1D ones are
 * stored [in, out]: inOut). Throws like checkWeights.
 */
export function blockLinearWeights(cfg: ModelConfig, weights: Pick<WeightSource, 'names' | 'info'>): { name: string; shape: number[]; inOut: boolean }[] {
  return dryLoad(cfg, weights).linears;
}

function dryLoad(cfg: ModelConfig, weights: Pick<WeightSource, 'names' | 'info'>): Loader {
  const noData = () => {
    throw new Error('a check of the weights reads no tensor data');
  };
  // (Named members, not a spread: a WeightSource may be a class whose names and info live on its prototype.)
  const source: WeightSource = { names: weights.names, info: (n) => weights.info(n), float32: noData };
  const loader = new Loader(null as unknown as GpuContext, cfg, source, Infinity, {}, true);
  if (cfg.architecture === 'GPT2LMHeadModel') loadGpt2(loader, cfg);
  else loadLlamaLike(loader, cfg);
  return loader;
}

/**
 * Uploads every weight the config calls for, checking names, shapes and dtypes. Tensors larger than
 * `maxBindingBytes` (default: the device's maxStorageBufferBindingSize) are split by rows where allowed.
 * On an error, what was uploaded so far is released.
 */
export function loadParams(ctx: GpuContext, cfg: ModelConfig, weights: WeightSource, maxBindingBytes?: number, opts: WeightOptions = {}): ModelParams {
  const limit = Math.min(maxBindingBytes ?? Infinity, ctx.limits.maxStorageBufferBindingSize);
  const loaded: ParamTensor[] = [];
  const loader = new Loader(ctx, cfg, weights, limit, opts);
  const load = loader.load.bind(loader);
  loader.load = (name, shape, opts) => {
    const p = load(name, shape, opts);
    loaded.push(p);
    return p;
  };
  try {
    return cfg.architecture === 'GPT2LMHeadModel' ? loadGpt2(loader, cfg) : loadLlamaLike(loader, cfg);
  } catch (e) {
    for (const p of loaded) for (const t of p.parts) t.release();
    throw e;
  }
}
