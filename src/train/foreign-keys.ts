// The LLaMA-Factory / transformers keys that Graft does not honour, each with the reason, and the names people type
// by habit from other trainers: every key of a job is accounted for, never dropped in silence (how each group is
// treated: docs/training.md, "Settings"). Runs in the browser worker too: no Node imports.
import { nearest } from './edit-distance';
import { SETTINGS_KEYS, toBool } from './settings-spec';

/** Accepted, with a note: they steer machinery that Graft does not have, and do not change what is learned. */
export const NO_EFFECT: Record<string, string> = {
  loraplus_lr_embedding: 'LoRA+ gives it to LoRA on embedding layers (lora_embedding_B); Graft adapts linear layers only, so no parameter takes it',
  trust_remote_code: 'Graft never runs code from a model repository; it reads config.json and the weights only',
  overwrite_cache: 'Graft keeps no tokenized-dataset cache; the dataset is tokenized for each run',
  preprocessing_num_workers: 'Graft tokenizes in one worker',
  preprocessing_batch_size: 'Graft tokenizes in one worker',
  dataloader_num_workers: 'Graft batches in the training worker',
  dataloader_pin_memory: 'Graft batches in the training worker',
  plot_loss: 'Graft always charts the loss',
  report_to: 'Graft logs to its own charts and the command line, not to wandb/tensorboard',
  logging_dir: 'Graft logs to its own charts and the command line',
  run_name: 'Graft names runs itself',
  ddp_timeout: 'Graft trains on one GPU, without distributed processes',
  ddp_find_unused_parameters: 'Graft trains on one GPU, without distributed processes',
  save_only_model: 'Graft checkpoints hold what resuming needs',
  disable_gradient_checkpointing: 'Graft checkpoints activations only with gradient_checkpointing: true (its default is false)',
  use_reentrant_gc: 'Graft\'s checkpointing recomputes each layer in its backward; there is nothing reentrant to choose',
  low_cpu_mem_usage: 'Graft streams weights to the GPU as it loads them',
  use_fast_tokenizer: 'Graft uses the tokenizer.json of the model',
  cache_dir: 'Graft keeps downloads in its own store (GRAFT_CACHE on the command line)',
  include_num_input_tokens_seen: 'Graft counts tokens itself',
  include_tokens_per_second: 'Graft reports tokens per second itself',
  include_effective_tokens_per_second: 'Graft reports tokens per second itself',
  disable_tqdm: 'Graft draws its own progress',
  logging_first_step: 'Graft logs the first step',
  upcast_layernorm: 'Graft computes in float32 throughout',
  upcast_lmhead_output: 'Graft computes in float32 throughout',
  ignore_pad_token_for_loss: 'Graft never trains on padding',
  print_param_status: 'Graft shows the trainable parameters in its summary',
  do_eval: 'Graft evaluates on the val_size split when eval_strategy asks for it',
};

/** Refused with a reason when set to anything but a "no" value (false, null, none, empty). */
export const CANNOT: Record<string, string> = {
  deepspeed: 'Graft trains on one GPU in one process; DeepSpeed is for LLaMA-Factory on several GPUs. Remove `deepspeed` here (keep it in the LLaMA-Factory copy of the job)',
  fsdp: 'Graft trains on one GPU in one process; remove `fsdp`',
  fsdp_config: 'Graft trains on one GPU in one process; remove `fsdp_config`',
  export_quantization_bit: 'Graft exports unquantized models; remove `export_quantization_bit`',
  bf16: 'Graft computes in float32 on WebGPU (frozen F16/BF16 weights stay 16-bit and are widened exactly as the kernels read them), so mixed precision is not available. Remove `bf16` or set it to false',
  fp16: 'Graft computes in float32 on WebGPU (frozen F16/BF16 weights stay 16-bit and are widened exactly as the kernels read them), so mixed precision is not available. Remove `fp16` or set it to false',
  pure_bf16: 'Graft computes in float32 on WebGPU; remove `pure_bf16` or set it to false',
  tf32: 'TF32 is an NVIDIA matmul mode; Graft computes in float32 on WebGPU. Remove `tf32`',
  use_unsloth: 'Graft runs its own WebGPU kernels; remove `use_unsloth`',
  use_unsloth_gc: 'Graft runs its own WebGPU kernels; remove `use_unsloth_gc`',
  enable_liger_kernel: 'Graft runs its own WebGPU kernels; remove `enable_liger_kernel`',
  use_dora: 'DoRA is not available in Graft; use plain LoRA (remove `use_dora`)',
  pissa_init: 'PiSSA initialisation is not available in Graft; LoRA starts as PEFT initialises it',
  pissa_convert: 'PiSSA is not available in Graft',
  additional_target: 'Graft trains only the LoRA matrices in LoRA mode; use finetuning_type "freeze" with freeze_extra_modules to train whole modules',
  create_new_adapter: 'Graft continues the adapter given in adapter_name_or_path; it does not stack a new one on it',
  use_galore: 'GaLore is not available in Graft; the optimizer is AdamW',
  use_apollo: 'APOLLO is not available in Graft; the optimizer is AdamW',
  use_badam: 'BAdam is not available in Graft; the optimizer is AdamW',
  use_adam_mini: 'Adam-mini is not available in Graft; the optimizer is AdamW',
  use_muon: 'Muon is not available in Graft; the optimizer is AdamW',
  use_llama_pro: 'LLaMA Pro block expansion is not available in Graft',
  use_mca: 'Megatron is not available in Graft',
  use_dft_loss: 'The DFT loss is not available in Graft; SFT uses the cross-entropy loss',
  shift_attn: 'Shift short attention (LongLoRA) is not available in Graft',
  rope_scaling: 'Graft takes RoPE scaling from the model config.json; remove `rope_scaling`',
  mixture_of_depths: 'Mixture-of-depths is not available in Graft',
  train_from_scratch: 'Graft fine-tunes pretrained weights; it does not train from random weights',
  neat_packing: 'Graft packs sequences with `packing: true`, with attention across packed examples as LLaMA-Factory does; neat_packing is not available',
  streaming: 'Graft reads the whole dataset into memory; streaming is not available',
  tokenized_path: 'Graft tokenizes for each run; a pre-tokenized dataset cannot be loaded',
  interleave_probs: 'Graft trains on one dataset at a time',
  ref_model: 'Graft\'s DPO reference is the base model with the adapter switched off; another reference model is not available',
  ref_model_adapters: 'Graft\'s DPO reference is the base model with the adapter switched off',
  reward_model: 'PPO is not available in Graft',
  lr_scheduler_kwargs: 'Graft\'s schedules take no extra arguments (cosine uses half a cycle, as transformers by default)',
  hf_hub_token: 'Do not put tokens in job files: Graft reads HF_TOKEN on the command line and the token in the app\'s settings',
  push_to_hub: 'Graft does not upload; export the adapter or model and upload it yourself',
  use_swanlab: 'Graft logs to its own charts',
  fp8: 'Graft computes in float32 on WebGPU; FP8 is not available',
  torch_compile: 'Graft runs its own WebGPU kernels',
  optim: '', // checked below: AdamW names pass
  flash_attn: '', // checked below: auto/disabled pass
  do_train: '', // checked below: true passes
  mix_strategy: '', // checked below: concat passes
  eval_on_each_dataset: 'Graft trains on one dataset at a time',
  gradient_checkpointing_kwargs: 'Graft\'s gradient_checkpointing takes no extra arguments; remove `gradient_checkpointing_kwargs`',
};

const ADAMW_NAMES = ['adamw_torch', 'adamw_hf', 'adamw_torch_fused'];

/** A "no" value: the key asks for nothing. */
export function isOff(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0) return true;
  if (typeof v === 'string') return ['', 'false', 'no', 'n', 'f', 'off', '0', 'none', 'null'].includes(v.trim().toLowerCase());
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v as object).length === 0;
  return false;
}

/** The reason a known-but-unsupported key is refused, or undefined when its value is fine (maybe with a note). */
export function checkForeignKey(key: string, value: unknown, notes: string[]): string | undefined {
  switch (key) {
    case 'optim': {
      const s = typeof value === 'string' ? value.trim() : '';
      if (value === null || ADAMW_NAMES.includes(s)) return undefined;
      return `Graft's optimizer is AdamW with PyTorch's semantics (adamw_torch); "${String(value)}" is not available. Use "adamw_torch" or remove \`optim\``;
    }
    case 'flash_attn': {
      if (value === null) return undefined;
      const s = typeof value === 'string' ? value.trim() : String(value);
      if (s === 'auto' || s === 'disabled' || isOff(value)) {
        notes.push('flash_attn: Graft uses its own attention kernel');
        return undefined;
      }
      return `Graft uses its own WebGPU attention kernel; "${s}" attention is not available. Remove \`flash_attn\` or set it to "auto"`;
    }
    case 'do_train':
      if (value === null || value === undefined) return undefined;
      try {
        if (toBool(value)) return undefined;
      } catch {
        return 'must be true or false';
      }
      return 'Graft runs a job to train it; do_train: false asks for nothing to be done';
    case 'mix_strategy':
      if (value === 'concat' || isOff(value)) return undefined;
      return 'Graft trains on one dataset at a time; only "concat" applies';
  }
  if (isOff(value)) return undefined;
  return CANNOT[key];
}

// Did you mean ---------------------------------------------------------------------------------------------

/** Aliases people type for a setting (names from other trainers). */
const ALIASES: Record<string, string> = {
  lr: 'learning_rate',
  epochs: 'num_train_epochs',
  num_epochs: 'num_train_epochs',
  batch_size: 'per_device_train_batch_size',
  train_batch_size: 'per_device_train_batch_size',
  micro_batch_size: 'per_device_train_batch_size',
  lora_r: 'lora_rank',
  r: 'lora_rank',
  target_modules: 'lora_target',
  lora_target_modules: 'lora_target',
  model: 'model_name_or_path',
  base_model: 'model_name_or_path',
  max_seq_length: 'cutoff_len',
  max_length: 'cutoff_len',
  seq_len: 'cutoff_len',
  warmup: 'warmup_steps',
  scheduler: 'lr_scheduler_type',
  lr_scheduler: 'lr_scheduler_type',
  grad_accum: 'gradient_accumulation_steps',
  gradient_accumulation: 'gradient_accumulation_steps',
  shuffle: 'disable_shuffling',
  evaluation_strategy: 'eval_strategy',
  data_path: 'dataset',
  adapter: 'adapter_name_or_path',
};

/** The setting an unknown key probably meant: an alias, or a known key within a few edits; undefined if none. */
export function suggestion(key: string): string | undefined {
  if (ALIASES[key]) return ALIASES[key];
  const best = nearest(key.toLowerCase(), [...SETTINGS_KEYS, ...Object.keys(NO_EFFECT), ...Object.keys(CANNOT)]);
  return best !== undefined && best.distance <= Math.max(2, Math.floor(key.length / 4)) ? best.candidate : undefined;
}
