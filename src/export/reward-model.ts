// A trained reward model as the files Hugging Face reads: the sequence-classification folder and, for a LoRA run,
// the PEFT SEQ_CLS adapter (docs/export.md, "A reward model"). Plain data in, files out: nothing touches the GPU.
import { writeSafetensors, type TensorToWrite } from '../model/safetensors';
import { sequenceClassificationArchitecture, SCORE_WEIGHT } from '../model/reward-head';
import { exportHfModel, mergeLora, type LoraAdapterWeights, type WeightTensor } from './merged-model';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, PEFT_PREFIX, peftAdapterConfig, peftAdapterTensors, type PeftAdapterInput } from './peft-adapter';

export interface RewardModelExportInput {
  /** The base model's config.json (a ...ForCausalLM / GPT2LMHeadModel config). */
  config: Record<string, unknown>;
  /** The decoder's weights by Hugging Face name (an lm_head among them is left out). */
  weights: ReadonlyMap<string, WeightTensor>;
  /** A LoRA adapter to merge into the weights (a LoRA run). */
  lora?: LoraAdapterWeights;
  /** score.weight, [1, H] row-major (H values). */
  score: Float32Array;
  /** The pad token id (the tokenizer's); transformers finds the last token of each sequence with it. */
  padTokenId: number;
  tokenizerFiles?: ReadonlyMap<string, Uint8Array>;
  generationConfig?: Record<string, unknown>;
  maxShardBytes?: number;
}

/** config.json of the sequence-classification model. */
export function rewardModelConfig(config: Record<string, unknown>, padTokenId: number): Record<string, unknown> {
  const archs = config.architectures;
  const causal = Array.isArray(archs) && archs.length ? String(archs[0]) : undefined;
  if (!causal) throw new Error('exportRewardModel: the base config.json names no architecture');
  if (!Number.isInteger(padTokenId) || padTokenId < 0) throw new Error(`exportRewardModel: pad_token_id ${padTokenId} is not a token id`);
  return {
    ...config,
    architectures: [sequenceClassificationArchitecture(causal)],
    num_labels: 1,
    id2label: { '0': 'LABEL_0' },
    label2id: { LABEL_0: 0 },
    pad_token_id: padTokenId,
  };
}

/** The files of the reward model's Hugging Face folder (name → bytes). */
export function exportRewardModel(input: RewardModelExportInput): Map<string, Uint8Array> {
  const config = rewardModelConfig(input.config, input.padTokenId);
  const H = typeof input.config.hidden_size === 'number' ? input.config.hidden_size : typeof input.config.n_embd === 'number' ? input.config.n_embd : undefined;
  if (H !== undefined && input.score.length !== H) throw new Error(`exportRewardModel: score.weight holds ${input.score.length} values, the hidden size is ${H}`);
  const merged = input.lora ? mergeLora(input.weights, input.lora) : new Map(input.weights);
  const weights = new Map<string, WeightTensor>();
  for (const [name, t] of merged) if (name !== 'lm_head.weight' && name !== SCORE_WEIGHT) weights.set(name, t);
  weights.set(SCORE_WEIGHT, { dtype: 'F32', shape: [1, input.score.length], data: input.score });
  return exportHfModel({
    config,
    weights,
    ...(input.tokenizerFiles ? { tokenizerFiles: input.tokenizerFiles } : {}),
    ...(input.generationConfig ? { generationConfig: input.generationConfig } : {}),
    ...(input.maxShardBytes !== undefined ? { maxShardBytes: input.maxShardBytes } : {}),
  });
}

/** The PEFT adapter of a LoRA reward model: the LoRA tensors and the head (task_type SEQ_CLS). */
export function exportRewardAdapter(input: PeftAdapterInput & { score: Float32Array }): Map<string, Uint8Array> {
  const { score, ...lora } = input;
  const tensors: TensorToWrite[] = [...peftAdapterTensors(lora), { name: `${PEFT_PREFIX}${SCORE_WEIGHT}`, dtype: 'F32', shape: [1, score.length], data: score }];
  tensors.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  const config = { ...peftAdapterConfig(lora), modules_to_save: ['score'], task_type: 'SEQ_CLS' };
  return new Map([
    [ADAPTER_CONFIG, new TextEncoder().encode(`${JSON.stringify(config, null, 2)}\n`)],
    [ADAPTER_WEIGHTS, writeSafetensors(tensors, { format: 'pt' })],
  ]);
}
