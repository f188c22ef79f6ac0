// A prompt-tuning adapter in PEFT's format (peft_type PROMPT_TUNING), which PeftModel.from_pretrained loads onto the
// base model unchanged (the files: docs/export.md, "A prompt-tuning adapter").
import { PROMPT_EMBEDDINGS } from '../model/prompt-tuning';
import { peftAdapterFiles } from './peft-adapter';

export interface PromptTuningExportInput {
  /** base_model_name_or_path: the hub id of the model the adapter belongs to. */
  baseModel: string;
  /** The base model's revision, when not the default branch. */
  revision?: string;
  numVirtualTokens: number;
  /** The model's hidden size. */
  tokenDim: number;
  /** config.json's num_attention_heads (GPT-2: n_head) and num_hidden_layers (n_layer), as PEFT records them. */
  numAttentionHeads: number;
  numLayers: number;
  init: 'random' | 'text';
  /** The init text (init "text"). */
  initText?: string | null;
  /** [numVirtualTokens, tokenDim] row-major. */
  embeddings: Float32Array;
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(`exportPromptTuning: ${message}`);
}

/**
 * adapter_config.json: PromptLearningConfig's and PromptTuningConfig's fields as PEFT 0.10 and later write
 * them (newer fields, such as modules_to_save, are left for newer PEFT versions to default; older ones refuse
 * fields they do not know). inference_mode is true, as save_pretrained writes it. With TEXT init PEFT requires
 * tokenizer_name_or_path even when loading, so it names the base model (whose tokenizer the text was encoded
 * with); tokenizer_kwargs stays null (PEFT refuses it without TEXT).
 */
export function promptTuningConfig(input: Omit<PromptTuningExportInput, 'embeddings'>): Record<string, unknown> {
  const text = input.init === 'text';
  check(!text || typeof input.initText === 'string', 'init "text" needs the init text');
  return {
    auto_mapping: null,
    base_model_name_or_path: input.baseModel,
    inference_mode: true,
    num_attention_heads: input.numAttentionHeads,
    num_layers: input.numLayers,
    num_transformer_submodules: 1,
    num_virtual_tokens: input.numVirtualTokens,
    peft_type: 'PROMPT_TUNING',
    prompt_tuning_init: text ? 'TEXT' : 'RANDOM',
    prompt_tuning_init_text: text ? input.initText : null,
    revision: input.revision ?? null,
    task_type: 'CAUSAL_LM',
    token_dim: input.tokenDim,
    tokenizer_kwargs: null,
    tokenizer_name_or_path: text ? input.baseModel : null,
  };
}

/** adapter_model.safetensors + adapter_config.json, as files (name → bytes). */
export function exportPromptTuning(input: PromptTuningExportInput): Map<string, Uint8Array> {
  const { numVirtualTokens: n, tokenDim: H } = input;
  check(Number.isInteger(n) && n >= 1, `num_virtual_tokens must be a whole number ≥ 1, got ${n}`);
  check(Number.isInteger(H) && H >= 1, `token_dim must be a whole number ≥ 1, got ${H}`);
  check(input.embeddings.length === n * H, `the embeddings hold ${input.embeddings.length} values; [${n}, ${H}] needs ${n * H}`);
  const tensors = [{ name: PROMPT_EMBEDDINGS, dtype: 'F32' as const, shape: [n, H], data: input.embeddings }];
  return peftAdapterFiles(tensors, promptTuningConfig(input));
}
