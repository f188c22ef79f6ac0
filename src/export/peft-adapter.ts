// A LoRA adapter in PEFT's format, which PEFT, vLLM and LLaMA-Factory load unchanged (the files:
// docs/export.md, "A LoRA adapter").
import { writeSafetensors, type TensorToWrite } from '../model/safetensors';

export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const ADAPTER_CONFIG = 'adapter_config.json';

/** One LoRA pair. `a` is row-major [r, in], `b` row-major [out, r]. */
export interface LoraModuleWeights {
  a: Float32Array;
  aShape: readonly [number, number];
  b: Float32Array;
  bShape: readonly [number, number];
}

export interface PeftAdapterInput {
  /** base_model_name_or_path: the hub id of the model the adapter belongs to. */
  baseModel: string;
  /** The base model's revision, when not the default branch. */
  revision?: string;
  r: number;
  alpha: number;
  useRslora?: boolean;
  dropout?: number;
  /** target_modules: the module names (q_proj, ...) the adapter was made for. */
  targetModules: readonly string[];
  /** True for GPT-2 (Conv1D layers store weights [in, out]). */
  fanInFanOut?: boolean;
  /** Module path ("model.layers.0.self_attn.q_proj", without "base_model.model.") → its LoRA pair. */
  modules: ReadonlyMap<string, LoraModuleWeights>;
}

/** The LoRA scaling factor PEFT uses: alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScaling(r: number, alpha: number, useRslora = false): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** PEFT's tensor name prefix for a causal LM (PeftModelForCausalLM wraps the model as base_model.model). */
export const PEFT_PREFIX = 'base_model.model.';

/**
 * adapter_config.json. Fields: those every PEFT release since 0.10 reads, with PEFT's defaults for what Graft
 * does not use. Newer PEFT versions fill in their newer fields with defaults; older ones refuse fields they
 * do not know, so fields added after 0.10 (lora_bias, exclude_modules, eva_config, ...) are left out.
 */
export function peftAdapterConfig(input: Omit<PeftAdapterInput, 'modules'>): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: input.baseModel,
    bias: 'none',
    fan_in_fan_out: input.fanInFanOut ?? false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: input.alpha,
    lora_dropout: input.dropout ?? 0,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: input.r,
    rank_pattern: {},
    revision: input.revision ?? null,
    target_modules: [...input.targetModules],
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: input.useRslora ?? false,
  };
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(`exportPeftAdapter: ${message}`);
}

/** The safetensors tensors of an adapter, sorted by name. */
export function peftAdapterTensors(input: PeftAdapterInput): TensorToWrite[] {
  const { r } = input;
  check(Number.isInteger(r) && r >= 1, `r must be a whole number ≥ 1, got ${r}`);
  check(Number.isFinite(input.alpha) && input.alpha > 0, `alpha must be positive, got ${input.alpha}`);
  check(input.modules.size > 0, 'the adapter has no modules');
  const tensors: TensorToWrite[] = [];
  for (const [path, m] of input.modules) {
    check(!path.startsWith(PEFT_PREFIX), `module paths are given without "${PEFT_PREFIX}" (got "${path}")`);
    check(/^[A-Za-z0-9_.]+$/.test(path) && !path.endsWith('.weight'), `"${path}" is not a module path such as model.layers.0.self_attn.q_proj`);
    const [ar, inF] = m.aShape;
    const [outF, br] = m.bShape;
    check(ar === r && br === r, `${path}: lora_A is [${m.aShape.join(', ')}] and lora_B [${m.bShape.join(', ')}], but r is ${r}`);
    check(m.a.length === ar * inF, `${path}: lora_A holds ${m.a.length} values, its shape [${ar}, ${inF}] needs ${ar * inF}`);
    check(m.b.length === outF * br, `${path}: lora_B holds ${m.b.length} values, its shape [${outF}, ${br}] needs ${outF * br}`);
    tensors.push({ name: `${PEFT_PREFIX}${path}.lora_A.weight`, dtype: 'F32', shape: [ar, inF], data: m.a });
    tensors.push({ name: `${PEFT_PREFIX}${path}.lora_B.weight`, dtype: 'F32', shape: [outF, br], data: m.b });
  }
  tensors.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  return tensors;
}

/**
 * A PEFT adapter folder's two files (name → bytes) for any peft_type: the tensors as adapter_model.safetensors
 * (`__metadata__: {format: "pt"}`, as PEFT's save_pretrained writes them) and the config as adapter_config.json
 * with its keys sorted and indented by 2 (PEFT's json.dumps(indent=2, sort_keys=True)).
 */
export function peftAdapterFiles(tensors: TensorToWrite[], config: Record<string, unknown>): Map<string, Uint8Array> {
  const sorted = Object.fromEntries(Object.keys(config).sort().map((k) => [k, config[k]]));
  return new Map([
    [ADAPTER_CONFIG, new TextEncoder().encode(`${JSON.stringify(sorted, null, 2)}\n`)],
    [ADAPTER_WEIGHTS, writeSafetensors(tensors, { format: 'pt' })],
  ]);
}

/** adapter_model.safetensors + adapter_config.json, as files (name → bytes). */
export function exportPeftAdapter(input: PeftAdapterInput): Map<string, Uint8Array> {
  return peftAdapterFiles(peftAdapterTensors(input), peftAdapterConfig(input));
}
