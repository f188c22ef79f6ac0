// The settings of a training job (TrainSettings), under LLaMA-Factory's argument names so that one job file runs in
// Graft and in LLaMA-Factory unchanged; each key's parser and default: settings-spec.ts; reading and checking them:
// parseSettingsWithNotes in settings.ts. Graft's own keys and gradient_checkpointing: docs/training.md ("Settings").
import type { TaskWeighting } from './task-weights';

export type Stage = 'sft' | 'dpo' | 'rm';
export type PrefLossType = 'sigmoid' | 'hinge' | 'ipo' | 'orpo' | 'simpo';
export type FinetuningType = 'lora' | 'full' | 'freeze' | 'adapter' | 'prompt';
export type AdapterPlacement = 'houlsby' | 'pfeiffer';
export type AdapterNonLinearity = 'relu' | 'silu' | 'gelu';
export type PromptTuningInitSetting = 'random' | 'text';
export type LrSchedulerType = 'constant' | 'constant_with_warmup' | 'linear' | 'cosine';
export type IntervalStrategy = 'no' | 'steps' | 'epoch';
export type TaskSampling = 'proportional' | 'balanced';
export type QuantizationType = 'nf4' | 'fp4';
export type { TaskWeighting } from './task-weights';

/** A training job. Field names and meanings are LLaMA-Factory's (defaults: settings-spec.ts). */
export interface TrainSettings {
  // model
  /** A hub model id ("HuggingFaceTB/SmolLM2-135M-Instruct") or a local folder (command line). */
  model_name_or_path: string;
  /** Branch, tag or commit of the model on the hub. Default "main". */
  model_revision: string;
  /** A PEFT LoRA adapter to start from (hub id or folder). Only with finetuning_type "lora". */
  adapter_name_or_path?: string;

  // method
  /** "sft" (supervised fine-tuning), "dpo" (preference optimisation) or "rm" (a reward model). */
  stage: Stage;
  finetuning_type: FinetuningType;
  lora_rank: number;
  /** Default 2 · lora_rank. */
  lora_alpha: number;
  lora_dropout: number;
  /** Module names (q_proj, v_proj, ...) or ["all"] for every linear layer of the blocks. */
  lora_target: string[];
  /** Scale the LoRA update by alpha / sqrt(r) instead of alpha / r. */
  use_rslora: boolean;
  /** LoRA+: lora_B trains at learning_rate × this ratio (LLaMA-Factory's key; unset: plain LoRA). */
  loraplus_lr_ratio?: number;
  /** Freeze tuning: a positive n trains the last n layers, a negative n the first |n|. Default 2. */
  freeze_trainable_layers: number;
  /** Which modules of the trainable layers train: ["all"] or names such as "mlp", "self_attn". */
  freeze_trainable_modules: string[];
  /** Modules outside the hidden layers that train too (e.g. "embed_tokens", "norm"). */
  freeze_extra_modules?: string[];
  /** Bottleneck adapters (Graft's key): "pfeiffer" (after the MLP output, default) or "houlsby" (attention and MLP). */
  adapter_placement: AdapterPlacement;
  /** Bottleneck adapters: bottleneck size = hidden_size / reduction_factor (must divide it). Default 16. */
  reduction_factor: number;
  /** Bottleneck adapters: the non-linearity between down- and up-projection. Default "relu". */
  adapter_non_linearity: AdapterNonLinearity;
  /** Prompt tuning: the number of virtual tokens in front of every sequence. Default 20. */
  num_virtual_tokens: number;
  /** Prompt tuning: "random" (N(0, 1)) or "text" (the embeddings of prompt_tuning_init_text's tokens). */
  prompt_tuning_init: PromptTuningInitSetting;
  /** Prompt tuning: the text whose token embeddings start the virtual tokens (prompt_tuning_init "text"). */
  prompt_tuning_init_text?: string;
  /** DPO: beta of the preference loss. */
  pref_beta: number;
  /** DPO: the loss (LLaMA-Factory's pref_loss): sigmoid (DPO), hinge, ipo, orpo, simpo. */
  pref_loss: PrefLossType;
  /** DPO with pref_loss simpo: SimPO's target reward margin gamma. Default 0.5 (LLaMA-Factory's). */
  simpo_gamma?: number;
  /** DPO: weight of an added SFT loss on the chosen answers. */
  pref_ftx: number;

  // dataset
  /**
   * A dataset file (command line), a hub dataset id, or a name in dataset_dir/dataset_info.json. Stage sft
   * takes a comma list too: each dataset is then a task of a multi-task run (datasetNames).
   */
  dataset: string;
  dataset_dir: string;
  /** LLaMA-Factory's chat template name. Graft renders with the model's own chat template; see settingsNotes. */
  template?: string;
  cutoff_len: number;
  train_on_prompt: boolean;
  /** Multi-turn records: train on the last answer only. */
  mask_history: boolean;
  packing: boolean;
  /** A fraction in [0, 1) or a whole number of examples held out for evaluation. */
  val_size: number;
  /** Use at most this many records of the dataset. */
  max_samples?: number;
  /** Train in file order (no shuffle). */
  disable_shuffling: boolean;

  // multi-task (Graft's own settings: LLaMA-Factory has none; see src/train/task-weights.ts). Tasks are the
  // `task` field of the records; a run without one is single-task and these settings must stay unset.
  /** How the per-task mean losses are weighted: static (task_weights), dwa or uncertainty. Default static. */
  task_weighting: TaskWeighting;
  /** static: weight per task ("qa:1,summarise:0.5" or a mapping); tasks not named weigh 1. */
  task_weights?: Record<string, number>;
  /** dwa: the softmax temperature T. Default 2.0 (Liu et al. 2019). */
  dwa_temperature: number;
  /** dwa: optimizer steps per loss window (the paper's epoch). Default 10. */
  dwa_window: number;
  /** proportional: the usual shuffle; balanced: each task equally likely per example. Default proportional. */
  task_sampling: TaskSampling;
  /**
   * The prompt of a record with a `task` and no instruction: "{task}: {input}" by default, "" (none) for the input
   * alone (src/data/tasks.ts). The LLaMA-Factory export writes the rendered prompt as the instruction.
   */
  task_template: string;

  // training
  learning_rate: number;
  lr_scheduler_type: LrSchedulerType;
  warmup_steps: number;
  warmup_ratio: number;
  per_device_train_batch_size: number;
  gradient_accumulation_steps: number;
  /** Clip the global gradient norm to this; 0 turns clipping off. */
  max_grad_norm: number;
  num_train_epochs: number;
  /** When > 0, the number of optimizer steps, overriding num_train_epochs. -1: use the epochs. */
  max_steps: number;
  weight_decay: number;
  adam_beta1: number;
  adam_beta2: number;
  adam_epsilon: number;
  seed: number;
  /** Recompute each layer's forward in the backward instead of keeping its activations (docs/training.md, "Activation checkpointing"). */
  gradient_checkpointing: boolean;

  // quantization (QLoRA: LLaMA-Factory's model arguments; src/engine/quantize.ts)
  /**
   * 4 or 8: the frozen base's linear layers are held quantized on the GPU (4: bitsandbytes' NF4/FP4; 8: Graft's
   * blockwise int8). Only with lora, adapter or prompt (nothing of the base trains). Unset: no quantization.
   */
  quantization_bit?: 4 | 8;
  /** 4-bit data type: "nf4" (default, as LLaMA-Factory) or "fp4". */
  quantization_type: QuantizationType;
  /** 4-bit: quantize the blocks' absmax values too (bitsandbytes' double quantization); default true, as LLaMA-Factory. */
  double_quantization: boolean;
  /** "bnb" (bitsandbytes' algorithm), the only method Graft has. */
  quantization_method: 'bnb';

  // evaluation
  eval_strategy: IntervalStrategy;
  /** Default: logging_steps (as transformers). A value below 1 is a fraction of the total steps. */
  eval_steps?: number;
  per_device_eval_batch_size: number;

  // prediction (LLaMA-Factory's do_predict with predict_with_generate: src/job/predict.ts)
  /** After training (or instead of it, with do_train false), generate an answer for each held-out record. */
  do_predict: boolean;
  /** Generate the answers (the only prediction Graft does: BLEU-4 and ROUGE on the generated text). */
  predict_with_generate: boolean;
  /** The records to predict: a dataset name as `dataset` takes one; default the val_size split. */
  eval_dataset?: string;
  /** Generation: at most this many new tokens per answer (LLaMA-Factory's default 1024). */
  max_new_tokens: number;
  /** Sample (true) or decode greedily (false). LLaMA-Factory's default is true. */
  do_sample: boolean;
  temperature: number;
  top_p: number;
  top_k: number;
  repetition_penalty: number;

  // output
  output_dir: string;
  overwrite_output_dir: boolean;
  /** A checkpoint folder to continue from. */
  resume_from_checkpoint?: string;
  /**
   * Graft's own: resume although settings or the encoded data differ from the checkpoint's run (refused
   * otherwise, listing the differences); the differences are recorded in the checkpoints and train.yaml.
   */
  resume_allow_changes: boolean;
  /** A value below 1 is a fraction of the total steps (as transformers). */
  logging_steps: number;
  save_strategy: IntervalStrategy;
  save_steps: number;
  save_total_limit?: number;
}
