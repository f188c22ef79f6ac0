// A fine-tuned model as a Hugging Face model folder (LoRA merged in float64, weights written as F32) that
// from_pretrained reads. Plain data in, files out: nothing here touches the GPU. docs/export.md ("A merged model").
import { toFloat32, writeSafetensors, type SafetensorsDType, type TensorToWrite } from '../model/safetensors';
import { f32ToBf16Bits, f32ToF16Bits } from '../engine/half';
import { loraScaling, type LoraModuleWeights } from './peft-adapter';

export interface WeightTensor {
  dtype: SafetensorsDType;
  shape: readonly number[];
  /** Little-endian bytes of `dtype`, or a Float32Array for F32. */
  data: Uint8Array | Float32Array;
}

export interface LoraAdapterWeights {
  r: number;
  alpha: number;
  useRslora?: boolean;
  /** GPT-2 Conv1D layers: weights stored [in, out]. */
  fanInFanOut?: boolean;
  /** Module path ("model.layers.0.self_attn.q_proj") → its LoRA pair. */
  modules: ReadonlyMap<string, LoraModuleWeights>;
}

const FLOATS = new Set<SafetensorsDType>(['F32', 'F16', 'BF16', 'F64']);

function asFloat32(t: WeightTensor, name: string): Float32Array {
  if (t.data instanceof Float32Array) {
    if (t.dtype !== 'F32') throw new Error(`${name}: a Float32Array is given but the dtype says ${t.dtype}`);
    return t.data;
  }
  return toFloat32(t.data, t.dtype, name);
}

/**
 * The weight a LoRA module changes: "<module>.weight", or for GPT-2 checkpoints, whose tensor names lack
 * PEFT's "transformer." prefix (h.0.attn.c_attn.weight), that name without the prefix.
 */
export function weightNameFor(module: string, weights: ReadonlyMap<string, unknown>): string | undefined {
  const direct = `${module}.weight`;
  if (weights.has(direct)) return direct;
  if (module.startsWith('transformer.')) {
    const bare = `${module.slice('transformer.'.length)}.weight`;
    if (weights.has(bare)) return bare;
  }
  return undefined;
}

/**
 * The weights with every LoRA module of `adapter` merged in. Returns a new map; merged weights are new F32
 * tensors, the others are the same objects as in `weights`. Throws when a module has no weight or the shapes
 * do not fit.
 */
export function mergeLora(weights: ReadonlyMap<string, WeightTensor>, adapter: LoraAdapterWeights): Map<string, WeightTensor> {
  const out = new Map(weights);
  const scaling = loraScaling(adapter.r, adapter.alpha, adapter.useRslora ?? false);
  for (const [module, m] of adapter.modules) {
    const name = weightNameFor(module, weights);
    if (name === undefined) throw new Error(`mergeLora: the model has no weight "${module}.weight" for the adapter's module ${module}`);
    const w = weights.get(name)!;
    if (!FLOATS.has(w.dtype)) throw new Error(`mergeLora: ${name} is ${w.dtype}, not a float tensor`);
    const [r, inF] = m.aShape;
    const [outF, rb] = m.bShape;
    if (r !== adapter.r || rb !== adapter.r) throw new Error(`mergeLora: ${module} has rank ${r}/${rb}, the adapter says r = ${adapter.r}`);
    const expected = adapter.fanInFanOut ? [inF, outF] : [outF, inF];
    if (w.shape.length !== 2 || w.shape[0] !== expected[0] || w.shape[1] !== expected[1]) {
      throw new Error(
        `mergeLora: ${name} is [${w.shape.join(', ')}], but lora_A [${m.aShape.join(', ')}] and lora_B [${m.bShape.join(', ')}] ` +
          `need [${expected.join(', ')}]${adapter.fanInFanOut ? ' (fan_in_fan_out: stored [in, out])' : ''}`,
      );
    }
    const base = asFloat32(w, name);
    const merged = new Float32Array(outF * inF);
    const { a, b } = m;
    for (let o = 0; o < outF; o++) {
      for (let i = 0; i < inF; i++) {
        let delta = 0; // float64
        for (let k = 0; k < r; k++) delta += b[o * r + k]! * a[k * inF + i]!;
        const at = adapter.fanInFanOut ? i * outF + o : o * inF + i;
        merged[at] = base[at]! + scaling * delta;
      }
    }
    out.set(name, { dtype: 'F32', shape: [...w.shape], data: merged });
  }
  return out;
}

export interface HfModelExportInput {
  /** The model's config.json as an object. */
  config: Record<string, unknown>;
  /** Tensor name → tensor, in the order to write them. */
  weights: ReadonlyMap<string, WeightTensor>;
  /** tokenizer.json, tokenizer_config.json, special_tokens_map.json, chat_template.jinja, ...: copied as they are. */
  tokenizerFiles?: ReadonlyMap<string, Uint8Array>;
  /** generation_config.json as an object; default: the token ids of config.json. */
  generationConfig?: Record<string, unknown>;
  /**
   * Largest shard, in bytes of tensor data (as transformers' max_shard_size). Default 2 GB (2·10⁹): browsers
   * cannot always hold one larger ArrayBuffer. A tensor larger than this gets a shard of its own.
   */
  maxShardBytes?: number;
  /**
   * The dtype the float tensors are written in (default F32): BF16 or F16 rounds each value to nearest even, as
   * torch's .to(dtype) does (a full fine-tune of a BF16 checkpoint is written back as BF16), and config.json's
   * torch_dtype says so.
   */
  dtype?: 'F32' | 'BF16' | 'F16';
}

export const DEFAULT_MAX_SHARD_BYTES = 2_000_000_000;
const encoder = new TextEncoder();
const json = (v: unknown) => encoder.encode(`${JSON.stringify(v, null, 2)}\n`);

/**
 * Groups tensors into shards as huggingface_hub's split_state_dict_into_shards does: in order, a tensor
 * starts a new shard when it would take the current one over the limit; a tensor above the limit alone.
 */
export function planShards(sizes: readonly { name: string; bytes: number }[], maxShardBytes: number): string[][] {
  const shards: string[][] = [];
  let current: string[] = [];
  let used = 0;
  for (const { name, bytes } of sizes) {
    if (bytes > maxShardBytes) {
      shards.push([name]);
      continue;
    }
    if (current.length > 0 && used + bytes > maxShardBytes) {
      shards.push(current);
      current = [];
      used = 0;
    }
    current.push(name);
    used += bytes;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

function tensorToWrite(name: string, t: WeightTensor, dtype: 'F32' | 'BF16' | 'F16' = 'F32'): TensorToWrite {
  if (FLOATS.has(t.dtype) && dtype !== 'F32') {
    const round = dtype === 'BF16' ? f32ToBf16Bits : f32ToF16Bits;
    return { name, dtype, shape: t.shape, data: Uint16Array.from(asFloat32(t, name), (v) => round(v)) };
  }
  if (FLOATS.has(t.dtype)) return { name, dtype: 'F32', shape: t.shape, data: asFloat32(t, name) };
  if (t.data instanceof Float32Array) throw new Error(`${name}: a Float32Array is given but the dtype says ${t.dtype}`);
  return { name, dtype: t.dtype, shape: t.shape, data: t.data };
}

/** The files of a Hugging Face model folder (name → bytes). */
export function exportHfModel(input: HfModelExportInput): Map<string, Uint8Array> {
  const maxShardBytes = input.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShardBytes > 0)) throw new Error(`exportHfModel: maxShardBytes must be positive, got ${maxShardBytes}`);
  if (input.weights.size === 0) throw new Error('exportHfModel: there are no weights to write');
  const files = new Map<string, Uint8Array>();

  const torchDtype = input.dtype === 'BF16' ? 'bfloat16' : input.dtype === 'F16' ? 'float16' : 'float32';
  const config: Record<string, unknown> = { ...input.config, torch_dtype: torchDtype };
  if ('dtype' in input.config) config.dtype = torchDtype; // transformers 5 writes `dtype`
  files.set('config.json', json(config));

  const generation =
    input.generationConfig ??
    Object.fromEntries(
      ['bos_token_id', 'eos_token_id', 'pad_token_id', 'decoder_start_token_id']
        .filter((k) => input.config[k] !== undefined && input.config[k] !== null)
        .map((k) => [k, input.config[k]]),
    );
  files.set('generation_config.json', json(generation));

  const tensors = [...input.weights].map(([name, t]) => tensorToWrite(name, t, input.dtype));
  const sizes = tensors.map((t) => ({ name: t.name, bytes: t.data.byteLength }));
  const shards = planShards(sizes, maxShardBytes);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const metadata = { format: 'pt' };
  if (shards.length === 1) {
    files.set('model.safetensors', writeSafetensors(tensors, metadata));
  } else {
    const n = shards.length;
    const pad = (i: number) => String(i).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    shards.forEach((names, i) => {
      const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
      files.set(file, writeSafetensors(names.map((x) => byName.get(x)!), metadata));
      for (const x of names) weightMap[x] = file;
    });
    const totalSize = sizes.reduce((s, x) => s + x.bytes, 0);
    const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
    files.set('model.safetensors.index.json', json({ metadata: { total_size: totalSize }, weight_map: sortedMap }));
  }

  for (const [name, bytes] of input.tokenizerFiles ?? []) {
    if (files.has(name)) throw new Error(`exportHfModel: the tokenizer file ${name} would overwrite a model file`);
    files.set(name, bytes);
  }
  return files;
}
