// Prompt tuning (PEFT's PROMPT_TUNING, Lester et al. 2021): n trainable virtual-token embeddings in front of every
// sequence, the base model frozen. How CausalLM runs them, their initialisation and files: docs/model.md
// ("Prompt tuning").
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { SeededRandom } from '../data/shuffle';
import type { ModelConfig } from './config';
import { SafetensorsError, SafetensorsFile } from './safetensors';
import { ModelError, readJson, type ModelSource } from './source';

/** The trainable tensor's name: the key PEFT saves it under, and the gradient's and checkpoint's name. */
export const PROMPT_EMBEDDINGS = 'prompt_embeddings';

/** Virtual-token embeddings on the GPU, as the model runs them (a ModelAdapter of kind 'prompt', adapters.ts). */
export interface PromptAdapter {
  kind: 'prompt';
  name: string;
  /** [numVirtualTokens, hidden] f32; stays the caller's. */
  embeddings: Tensor;
}

export const virtualTokens = (p: PromptAdapter | null): number => (p ? p.embeddings.shape[0]! : 0);

export type PromptTuningInit = 'random' | 'text';

/** PEFT's RANDOM init: N(0, 1) values (Box–Muller over SeededRandom(seed)), [n, H] row-major. */
export function randomPromptInit(n: number, H: number, seed: number): Float32Array {
  const rng = new SeededRandom(seed);
  const out = new Float32Array(n * H);
  for (let i = 0; i < out.length; i += 2) {
    const u1 = 1 - rng.next(); // (0, 1]: log(u1) is finite
    const u2 = rng.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** PEFT's TEXT init ids: the text's ids repeated ceil(n / len) times, then the first n. */
export function textInitIds(ids: readonly number[], n: number): number[] {
  if (ids.length === 0) throw new Error('prompt_tuning_init_text has no tokens; give a text, or use prompt_tuning_init: random');
  const reps = Math.ceil(n / ids.length);
  return Array.from({ length: reps }, () => ids).flat().slice(0, n);
}

/** A prompt adapter read from a PEFT folder, on the CPU. */
export interface CpuPromptAdapter {
  numVirtualTokens: number;
  tokenDim: number;
  /** [numVirtualTokens, tokenDim] row-major. */
  embeddings: Float32Array;
  /** The base model the adapter was made for (base_model_name_or_path), for messages. */
  baseModel: string | null;
}

/** The peft_type of an adapter folder's adapter_config.json (undefined when it names none or is missing). */
export async function adapterPeftType(source: ModelSource): Promise<string | undefined> {
  const json = await readJson(source, 'adapter_config.json', false);
  return typeof json?.peft_type === 'string' ? json.peft_type : undefined;
}

/**
 * Reads and checks a PEFT PROMPT_TUNING folder against the base model: num_transformer_submodules 1 (a causal
 * LM), token_dim = the model's hidden size, and one tensor prompt_embeddings [num_virtual_tokens, token_dim].
 */
export async function readPromptAdapter(source: ModelSource, cfg: ModelConfig): Promise<CpuPromptAdapter> {
  const where = source.name;
  const bad = (why: string, file = 'adapter_config.json') => new ModelError('bad-adapter', `The prompt-tuning adapter ${where} cannot be used: ${why}`, { file });
  const json = await readJson(source, 'adapter_config.json', true);
  if (json.peft_type !== 'PROMPT_TUNING') throw bad(`its peft_type is ${JSON.stringify(json.peft_type)}, not "PROMPT_TUNING".`);
  const baseModel = typeof json.base_model_name_or_path === 'string' ? json.base_model_name_or_path : null;
  const made = baseModel ? ` (it was made for ${baseModel})` : '';
  const n = json.num_virtual_tokens;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw bad(`num_virtual_tokens is ${JSON.stringify(n)}, not a positive whole number.`);
  const subs = json.num_transformer_submodules ?? 1;
  if (subs !== 1) throw bad(`num_transformer_submodules is ${JSON.stringify(subs)}; a causal language model has 1 (an encoder-decoder adapter?).`);
  if (json.task_type !== undefined && json.task_type !== null && json.task_type !== 'CAUSAL_LM') {
    throw bad(`its task_type is ${JSON.stringify(json.task_type)}; Graft runs CAUSAL_LM adapters.`);
  }
  const dim = json.token_dim ?? cfg.hiddenSize;
  if (dim !== cfg.hiddenSize) throw bad(`its token_dim is ${JSON.stringify(dim)}, but this ${cfg.architecture} has hidden size ${cfg.hiddenSize}${made}.`);
  const bytes = await source.readFile('adapter_model.safetensors');
  if (!bytes) throw bad('adapter_model.safetensors is missing (a pickled adapter_model.bin cannot be read; save with safe_serialization).', 'adapter_model.safetensors');
  let file: SafetensorsFile;
  try {
    file = new SafetensorsFile(bytes, 'adapter_model.safetensors');
  } catch (e) {
    if (e instanceof SafetensorsError) throw bad(e.message, 'adapter_model.safetensors');
    throw e;
  }
  if (!file.names.includes(PROMPT_EMBEDDINGS)) {
    throw bad(`adapter_model.safetensors has no "${PROMPT_EMBEDDINGS}" tensor (it holds ${file.names.slice(0, 3).join(', ') || 'nothing'}).`, 'adapter_model.safetensors');
  }
  const others = file.names.filter((x) => x !== PROMPT_EMBEDDINGS);
  if (others.length) throw bad(`adapter_model.safetensors holds ${others.join(', ')} besides ${PROMPT_EMBEDDINGS}, which Graft does not know how to apply.`, 'adapter_model.safetensors');
  const shape = file.info(PROMPT_EMBEDDINGS).shape;
  if (shape.length !== 2 || shape[0] !== n || shape[1] !== cfg.hiddenSize) {
    throw bad(`${PROMPT_EMBEDDINGS} is [${shape.join(', ')}]; expected [${n}, ${cfg.hiddenSize}] (num_virtual_tokens × hidden size)${made}.`, 'adapter_model.safetensors');
  }
  return { numVirtualTokens: n, tokenDim: cfg.hiddenSize, embeddings: file.float32(PROMPT_EMBEDDINGS), baseModel };
}

/** Puts virtual-token embeddings [n, H] on the GPU (persistent; the caller releases adapter.embeddings). */
export function uploadPromptAdapter(ctx: GpuContext, name: string, embeddings: Float32Array, n: number, H: number): PromptAdapter {
  if (embeddings.length !== n * H) throw new Error(`uploadPromptAdapter: ${embeddings.length} values for [${n}, ${H}]`);
  return { kind: 'prompt', name, embeddings: ctx.upload([n, H], embeddings, 'f32', { persistent: true, label: `${PROMPT_EMBEDDINGS} of ${name}` }) };
}

/** Throws naming the problem when a prompt adapter does not fit a model of hidden size H and maxPositions. */
export function checkPromptAdapter(prompt: PromptAdapter, H: number, maxPositions: number): void {
  const s = prompt.embeddings.shape;
  if (s.length !== 2 || s[1] !== H || !(s[0]! >= 1) || prompt.embeddings.dtype !== 'f32') {
    throw new Error(`Prompt adapter ${prompt.name}: ${PROMPT_EMBEDDINGS} is ${prompt.embeddings.dtype} [${s.join(', ')}]; expected f32 [num_virtual_tokens, ${H}]`);
  }
  if (s[0]! >= maxPositions) {
    throw new Error(`Prompt adapter ${prompt.name}: ${s[0]} virtual tokens leave no position for the text in this model instance (${maxPositions} positions)`);
  }
}
