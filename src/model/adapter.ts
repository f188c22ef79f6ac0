// PEFT LoRA adapter folders (`adapter_config.json` + `adapter_model.safetensors`) read into the model core's
// LoraAdapter, checked against the base model before anything reaches the GPU. What is read and what is refused:
// docs/model.md ("PEFT LoRA folders").
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import type { ModelConfig } from './config';
import type { LoraAdapter, LoraModule } from './lora';
import { SafetensorsError, SafetensorsFile, type TensorInfo } from './safetensors';
import { ModelError, readJson, type ModelSource } from './source';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

export interface PeftLoraConfig {
  r: number;
  alpha: number;
  useRslora: boolean;
  /** As written: a list of module-name suffixes, or a regular expression (a string). Informational. */
  targetModules: string[] | string | null;
  fanInFanOut: boolean;
  /** The base model the adapter was trained on, for messages. */
  baseModel: string | null;
}

const isEmptyish = (v: unknown) =>
  v === undefined || v === null || v === false || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);

/** Reads and checks adapter_config.json. `where` names the adapter in messages. */
export function parsePeftConfig(json: Record<string, unknown>, where: string): PeftLoraConfig {
  const bad = (why: string) => new ModelError('bad-adapter', `The adapter ${where} cannot be used: ${why}`, { file: ADAPTER_CONFIG });
  const peftType = json.peft_type;
  if (peftType !== 'LORA') {
    throw bad(
      peftType === undefined
        ? `${ADAPTER_CONFIG} has no peft_type; Graft loads PEFT LoRA adapters (peft_type "LORA").`
        : `it is a ${String(peftType)} adapter (peft_type in ${ADAPTER_CONFIG}); Graft loads LoRA adapters only.`,
    );
  }
  if (json.use_dora === true) throw bad('it is a DoRA adapter (use_dora: true), which Graft does not support yet. Use a plain LoRA adapter.');
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    if (!isEmptyish(json[key])) {
      throw bad(`${ADAPTER_CONFIG} sets ${key} (a different rank or alpha per module), which Graft does not support. Use one r and lora_alpha for every module.`);
    }
  }
  if (json.lora_bias === true) throw bad('it trains biases (lora_bias: true), which Graft does not support.');
  if (!isEmptyish(json.modules_to_save)) {
    throw bad(`it saves full copies of ${JSON.stringify(json.modules_to_save)} (modules_to_save), which Graft does not support.`);
  }
  if (!isEmptyish(json.target_parameters)) throw bad('it targets parameters (target_parameters) rather than linear layers, which Graft does not support.');
  if (!isEmptyish(json.trainable_token_indices)) throw bad('it trains token embeddings (trainable_token_indices), which Graft does not support.');
  if (!isEmptyish(json.alora_invocation_tokens)) throw bad('it is an activated LoRA (alora_invocation_tokens), which Graft does not support.');
  if (json.use_qalora === true) throw bad('it is a QALoRA adapter (use_qalora: true), which Graft does not support.');
  const r = json.r ?? 8;
  if (typeof r !== 'number' || !Number.isInteger(r) || r <= 0) throw bad(`r in ${ADAPTER_CONFIG} is ${JSON.stringify(r)}, not a positive integer.`);
  const alpha = json.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw bad(`lora_alpha in ${ADAPTER_CONFIG} is ${JSON.stringify(alpha)}, not a number.`);
  const tm = json.target_modules;
  return {
    r,
    alpha,
    useRslora: json.use_rslora === true,
    targetModules: typeof tm === 'string' || Array.isArray(tm) ? (tm as string[] | string) : null,
    fanInFanOut: json.fan_in_fan_out === true,
    baseModel: typeof json.base_model_name_or_path === 'string' ? json.base_model_name_or_path : null,
  };
}

/** Every linear layer of the base model that LoRA may adapt: HF module path → logical in/out features. */
export function linearModules(cfg: ModelConfig): Map<string, { inFeatures: number; outFeatures: number }> {
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: D } = cfg;
  const out = new Map<string, { inFeatures: number; outFeatures: number }>();
  const put = (m: string, inFeatures: number, outFeatures: number) => out.set(m, { inFeatures, outFeatures });
  for (let l = 0; l < cfg.numLayers; l++) {
    if (cfg.architecture === 'GPT2LMHeadModel') {
      const p = `transformer.h.${l}`;
      put(`${p}.attn.c_attn`, H, 3 * H);
      put(`${p}.attn.c_proj`, H, H);
      put(`${p}.mlp.c_fc`, H, I);
      put(`${p}.mlp.c_proj`, I, H);
    } else {
      const p = `model.layers.${l}`;
      put(`${p}.self_attn.q_proj`, H, nh * D);
      put(`${p}.self_attn.k_proj`, H, nkv * D);
      put(`${p}.self_attn.v_proj`, H, nkv * D);
      put(`${p}.self_attn.o_proj`, nh * D, H);
      put(`${p}.mlp.gate_proj`, H, I);
      put(`${p}.mlp.up_proj`, H, I);
      put(`${p}.mlp.down_proj`, I, H);
    }
  }
  return out;
}

/** A checked adapter on the CPU: what {@link uploadAdapter} puts on the GPU. */
export interface CpuLoraAdapter {
  config: PeftLoraConfig;
  /** module → A [r, in] and B [out, r], row-major f32. */
  modules: Map<string, { a: Float32Array; b: Float32Array; inFeatures: number; outFeatures: number }>;
}

const LORA_NAME = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$/;

/** Reads and checks an adapter folder against the base model's config; nothing touches the GPU. */
export async function readAdapter(source: ModelSource, cfg: ModelConfig): Promise<CpuLoraAdapter> {
  const where = source.name;
  const json = await readJson(source, ADAPTER_CONFIG, true, 'a PEFT adapter folder needs adapter_config.json and adapter_model.safetensors');
  const config = parsePeftConfig(json, where);
  const bytes = await source.readFile(ADAPTER_WEIGHTS);
  if (!bytes) {
    const bin = await source.readFile('adapter_model.bin');
    throw new ModelError(
      'missing-file',
      bin
        ? `The adapter ${where} has its weights only as adapter_model.bin (a Python pickle), which Graft cannot read. Save it with safe_serialization=True (adapter_model.safetensors).`
        : `${ADAPTER_WEIGHTS} is missing from ${where}: a PEFT adapter folder needs adapter_config.json and adapter_model.safetensors.`,
      { file: ADAPTER_WEIGHTS },
    );
  }
  return checkAdapterTensors(parseAdapterWeights(bytes, where), config, cfg, where);
}

/** Parses the bytes of an adapter folder's adapter_model.safetensors (any adapter kind); a malformed file is a 'bad-file' ModelError naming the adapter. */
export function parseAdapterWeights(bytes: Uint8Array, where: string): SafetensorsFile {
  try {
    return new SafetensorsFile(bytes, ADAPTER_WEIGHTS);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new ModelError('bad-file', `The adapter ${where}: ${e.message}`, { file: ADAPTER_WEIGHTS, cause: e });
    throw e;
  }
}

function describeBase(config: PeftLoraConfig): string {
  return config.baseModel ? ` (it was made for ${config.baseModel})` : '';
}

/** Checks the tensors of an adapter file against its config and the base model; widens them to f32. */
export function checkAdapterTensors(file: SafetensorsFile, config: PeftLoraConfig, cfg: ModelConfig, where: string): CpuLoraAdapter {
  const bad = (why: string) => new ModelError('bad-adapter', `The adapter ${where} cannot be used: ${why}`, { file: ADAPTER_WEIGHTS });
  const linears = linearModules(cfg);
  const found = new Map<string, { a?: TensorInfo; b?: TensorInfo }>();
  for (const name of file.names) {
    const m = LORA_NAME.exec(name);
    if (!m) {
      if (name.includes('lora_magnitude_vector')) throw bad(`it holds ${name}, a DoRA magnitude; Graft does not support DoRA adapters yet.`);
      if (name.includes('lora_embedding_')) throw bad(`it adapts an embedding (${name}); Graft applies LoRA to linear layers only.`);
      if (/\.bias$/.test(name)) throw bad(`it holds a trained bias (${name}); Graft supports adapters without biases (bias: "none").`);
      throw bad(`${ADAPTER_WEIGHTS} holds ${name}, which is not a LoRA A or B weight (base_model.model.<module>.lora_A.weight).`);
    }
    const module = m[1]!;
    if (!linears.has(module)) {
      const example = linears.keys().next().value;
      throw bad(
        `it adapts ${module}, which is not a linear layer of this ${cfg.architecture}${describeBase(config)}. ` +
          `The adapter was made for another model; this one's layers are named like ${example}.`,
      );
    }
    const entry = found.get(module) ?? {};
    entry[m[2] === 'A' ? 'a' : 'b'] = file.info(name);
    found.set(module, entry);
  }
  if (found.size === 0) throw bad(`${ADAPTER_WEIGHTS} holds no LoRA weights.`);
  const { r } = config;
  const modules: CpuLoraAdapter['modules'] = new Map();
  for (const [module, { a, b }] of found) {
    if (!a || !b) throw bad(`${module} has lora_${a ? 'A' : 'B'} but no lora_${a ? 'B' : 'A'}.`);
    const { inFeatures, outFeatures } = linears.get(module)!;
    const shapeErr = (which: 'A' | 'B', got: number[], want: number[]) => {
      const rankWrong = which === 'A' ? got[0] !== want[0] : got[1] !== want[1];
      return bad(
        `lora_${which} of ${module} is [${got.join(', ')}], expected [${want.join(', ')}]` +
          (rankWrong && got.length === 2
            ? ` (r is ${r} in ${ADAPTER_CONFIG}).`
            : ` for this model's layer (${inFeatures} → ${outFeatures})${describeBase(config)}; the adapter was made for another model.`),
      );
    };
    const same = (x: number[], y: number[]) => x.length === y.length && x.every((d, i) => d === y[i]);
    if (!same(a.shape, [r, inFeatures])) throw shapeErr('A', a.shape, [r, inFeatures]);
    if (!same(b.shape, [outFeatures, r])) throw shapeErr('B', b.shape, [outFeatures, r]);
    const f32 = (t: TensorInfo) => {
      try {
        return file.float32(t.name);
      } catch (e) {
        throw bad(e instanceof Error ? e.message : String(e));
      }
    };
    modules.set(module, { a: f32(a), b: f32(b), inFeatures, outFeatures });
  }
  return { config, modules };
}

/** Uploads a checked adapter as persistent f32 tensors, in the base model's module order. */
export function uploadAdapter(ctx: GpuContext, cpu: CpuLoraAdapter, name: string, cfg: ModelConfig): LoraAdapter {
  const modules = new Map<string, LoraModule>();
  const { r } = cpu.config;
  const uploaded: Tensor[] = [];
  try {
    for (const module of linearModules(cfg).keys()) {
      const m = cpu.modules.get(module);
      if (!m) continue;
      const a = ctx.upload([r, m.inFeatures], m.a, 'f32', { persistent: true, label: `${name} ${module}.lora_A` });
      uploaded.push(a);
      const b = ctx.upload([m.outFeatures, r], m.b, 'f32', { persistent: true, label: `${name} ${module}.lora_B` });
      uploaded.push(b);
      modules.set(module, { a, b });
    }
  } catch (e) {
    for (const t of uploaded) t.release();
    throw e;
  }
  return { name, r, alpha: cpu.config.alpha, useRslora: cpu.config.useRslora, modules };
}

/** Reads, checks and uploads an adapter folder. */
export async function readLoraAdapter(ctx: GpuContext, source: ModelSource, cfg: ModelConfig, name: string): Promise<LoraAdapter> {
  return uploadAdapter(ctx, await readAdapter(source, cfg), name, cfg);
}

/** Frees an adapter's GPU tensors. */
export function releaseAdapter(adapter: LoraAdapter): void {
  for (const { a, b } of adapter.modules.values()) {
    a.release();
    b.release();
  }
}

/** The default name of an adapter: the last part of its source's name ("runs/sft/final" → "final"). */
export function defaultAdapterName(source: ModelSource): string {
  const parts = source.name.split(/[\\/]/).filter((p) => p !== '');
  return parts[parts.length - 1] ?? 'adapter';
}
