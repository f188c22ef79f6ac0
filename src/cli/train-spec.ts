// `graft train`'s flags and help: every job setting is a flag (LLaMA-Factory's names); these have a word of help.
import { CANNOT, NO_EFFECT } from '../train/foreign-keys';
import { BOOLEAN_SETTINGS, SETTINGS_KEYS, type TrainSettings } from '../train/settings';
import type { CommandSpec, OptionSpec } from './args';

/** Flags with a word of help; every other setting is a flag too ("a LLaMA-Factory setting"). */
const DESCRIBED: Partial<Record<keyof TrainSettings, [string, string]>> = {
  dataset: [
    '<file|repo>[,...]',
    'The dataset: a JSON or JSON Lines file (sft: alpaca, ShareGPT or OpenAI messages; dpo, rm: {prompt, chosen, rejected} pairs), a name in dataset_dir/dataset_info.json (file_name, or hf_hub_url with split), or a hub dataset: owner/name[@revision] (its train split) or hf://datasets/owner/name[@revision]/<file> (one JSON, JSON Lines or Parquet file; dpo, rm: one JSON or JSON Lines file). A local file wins over a hub id of the same spelling. sft: several datasets are the tasks of a multi-task run.',
  ],
  stage: ['sft|dpo|rm', 'The training stage: sft, dpo (preference pairs) or rm (a reward model).'],
  pref_beta: ['B', 'DPO: beta of the preference loss (default 0.1).'],
  pref_loss: ['sigmoid|hinge|ipo|orpo|simpo', 'DPO: the preference loss (default sigmoid).'],
  pref_ftx: ['W', 'DPO: weight of an added SFT loss on the chosen answers (default 0).'],
  simpo_gamma: ['G', 'DPO with simpo: the target reward margin (default 0.5).'],
  finetuning_type: ['TYPE', 'What trains: lora (default), full, freeze, adapter (bottleneck adapters) or prompt (prompt tuning).'],
  lora_rank: ['R', 'LoRA rank (default 8).'],
  lora_alpha: ['A', 'LoRA alpha (default 2 × rank).'],
  lora_dropout: ['P', 'LoRA dropout on the adapter input while training, 0 to <1 (default 0).'],
  lora_target: ['NAMES', 'The linear layers LoRA adapts: all (default) or names like q_proj,v_proj.'],
  use_rslora: ['true|false', 'Scale by alpha/√r (rank-stabilised LoRA).'],
  loraplus_lr_ratio: ['R', 'LoRA+: lora_B trains at learning_rate × R (LLaMA-Factory\'s LoRA+ groups; unset: plain LoRA).'],
  adapter_name_or_path: ['<dir|repo>', 'The adapter to continue training: a folder or a hub adapter id owner/name[@revision] (hf://owner/name: the hub even when a folder has that name). LoRA (PEFT) with finetuning_type lora, a bottleneck adapter with finetuning_type adapter; its own settings are used.'],
  freeze_trainable_layers: ['N', 'Freeze tuning: train the last N layers (negative: the first |N|).'],
  freeze_trainable_modules: ['NAMES', 'Freeze tuning: the modules of those layers that train.'],
  freeze_extra_modules: ['NAMES', 'Freeze tuning: modules outside the layers that train too.'],
  adapter_placement: ['houlsby|pfeiffer', 'Bottleneck adapters after the MLP (pfeiffer, default) or after attention and MLP (houlsby).'],
  reduction_factor: ['N', 'Bottleneck adapters: bottleneck size = hidden size / N (default 16).'],
  adapter_non_linearity: ['relu|silu|gelu', 'Bottleneck adapters: the non-linearity (default relu).'],
  num_virtual_tokens: ['N', 'Prompt tuning: virtual tokens in front of every sequence (default 20).'],
  prompt_tuning_init: ['random|text', 'Prompt tuning: start from N(0, 1) or from the init text\'s token embeddings.'],
  prompt_tuning_init_text: ['"..."', 'Prompt tuning: the text whose token embeddings start the virtual tokens.'],
  learning_rate: ['LR', 'Peak learning rate (default 5e-5).'],
  lr_scheduler_type: ['NAME', 'linear (default), cosine, constant or constant_with_warmup.'],
  warmup_steps: ['N', 'Warm-up steps.'],
  warmup_ratio: ['F', 'Warm-up as a fraction of the steps.'],
  per_device_train_batch_size: ['N', 'Sequences per micro-batch (default 8).'],
  gradient_accumulation_steps: ['N', 'Micro-batches per optimizer step (default 1).'],
  max_steps: ['N', 'Optimizer steps (overrides num_train_epochs).'],
  num_train_epochs: ['N', 'Epochs (default 3).'],
  cutoff_len: ['N', 'Longest sequence in tokens (default 2048).'],
  max_samples: ['N', 'Use the first N records of the dataset.'],
  max_grad_norm: ['N', 'Clip the gradient norm (default 1.0; 0 = off).'],
  weight_decay: ['W', 'AdamW weight decay (not on biases and norms).'],
  adam_beta1: ['B', 'AdamW beta1 (default 0.9).'],
  adam_beta2: ['B', 'AdamW beta2 (default 0.999).'],
  adam_epsilon: ['E', 'AdamW epsilon (default 1e-8).'],
  seed: ['S', 'Seed of the shuffle, split and LoRA init (default 42).'],
  val_size: ['F|N', 'Hold out a fraction or a number of examples for eval_loss.'],
  eval_strategy: ['WHEN', 'When to evaluate: no (default), steps or epoch.'],
  eval_steps: ['N', 'Evaluate every N steps.'],
  save_steps: ['N', 'Checkpoint every N steps (default 500).'],
  save_total_limit: ['N', 'Keep at most N checkpoints.'],
  logging_steps: ['N', 'Print a progress line every N steps (plain output).'],
  resume_from_checkpoint: ['<dir>|true', 'Continue from a checkpoint folder (true: the latest in output_dir).'],
  output_dir: ['<dir>', 'Where checkpoints, metrics and the result go (default trainer_output).'],
  task_weighting: ['static|dwa|uncertainty', 'Multi-task (records with a "task", or several datasets): how task losses are weighted (default static).'],
  task_weights: ['T:W,...', 'Multi-task, static: weight per task, e.g. qa:1,summarise:0.5 (tasks not named: 1).'],
  dwa_temperature: ['T', 'Multi-task, dwa: the softmax temperature (default 2.0).'],
  dwa_window: ['N', 'Multi-task, dwa: optimizer steps per loss window (default 10).'],
  task_sampling: ['proportional|balanced', 'Multi-task: the usual shuffle, or each task equally likely per example.'],
  task_template: ['"{task}: {input}"|none', 'Multi-task: the prompt of a record with a task and no instruction (default "{task}: {input}"; none: the input alone).'],
  do_predict: ['[true|false]', 'After training, generate an answer for each record of eval_dataset (or the val_size split) and write generated_predictions.jsonl and predict_results.json (BLEU-4, ROUGE-1/2/L as LLaMA-Factory computes them).'],
  predict_with_generate: ['[true|false]', 'With do_predict: generate the answers (required, as in LLaMA-Factory).'],
  eval_dataset: ['<file|name>', 'The records do_predict answers (default: the val_size split).'],
  max_new_tokens: ['N', 'do_predict: new tokens per answer (default 1024).'],
  do_sample: ['true|false', 'do_predict: sample (default true, as LLaMA-Factory) or decode greedily.'],
  temperature: ['T', 'do_predict: sampling temperature (default 0.95).'],
  top_p: ['P', 'do_predict: nucleus sampling (default 0.7).'],
  top_k: ['K', 'do_predict: top-k sampling (default 50).'],
  repetition_penalty: ['R', 'do_predict: repetition penalty (default 1.0).'],
  overwrite_output_dir: ['true|false', 'Start over in an output_dir that holds an earlier run.'],
  gradient_checkpointing: ['[true|false]', 'Recompute each layer\'s forward in the backward instead of keeping its activations: less GPU memory, the same result, slower steps (default false).'],
};

function trainOptions(): Record<string, OptionSpec> {
  const options: Record<string, OptionSpec> = {
    model: { type: 'string', short: 'm', value: '<dir|repo>', description: 'Model folder or hub model id (model_name_or_path).' },
  };
  for (const key of SETTINGS_KEYS) {
    const d = DESCRIBED[key];
    options[key] = { type: 'string', value: d?.[0] ?? 'V', description: d?.[1] ?? 'A LLaMA-Factory setting.', ...(BOOLEAN_SETTINGS.has(key) ? { bare: 'true' } : {}) };
  }
  options.shuffle = { type: 'string', value: 'true|false', description: 'Shuffle the examples each epoch (default true; false = disable_shuffling).' };
  // LLaMA-Factory's keys that Graft does not honour are flags too, so that `--bf16` gets the reason a YAML job
  // gets (settings.ts) instead of "unknown option"; they are not listed in --help.
  for (const key of [...Object.keys(NO_EFFECT), ...Object.keys(CANNOT)]) {
    if (!(key in options)) options[key] = { type: 'string', value: 'V', description: 'A LLaMA-Factory setting Graft does not honour.', bare: 'true', hidden: true };
  }
  return options;
}

export const trainSpec: CommandSpec = {
  name: 'train',
  summary:
    'Fine-tune a model (stage sft, dpo or rm; finetuning_type lora, full, freeze, adapter (bottleneck adapters) or prompt (prompt tuning)) on a dataset; LLaMA-Factory job files and settings; --do_predict generates answers for held-out records and scores them (BLEU-4, ROUGE).',
  usage: 'train [job.yaml] [--setting value ...]',
  details:
    'Settings use LLaMA-Factory\'s names, in a YAML job file and/or as flags (--learning_rate 1e-4); flags win over\n' +
    'the file. Unknown settings, and settings Graft cannot honour, are refused with the reason. Writes into\n' +
    'output_dir: metrics.jsonl, checkpoint-<step>/ folders, the PEFT adapter (LoRA) or the model (full, freeze),\n' +
    'and train.yaml for LLaMA-Factory (sft). --stage dpo trains on preference pairs; --stage rm trains a reward\n' +
    'model and writes it as a sequence-classification model that `graft score` rates answers with. Ctrl-C\n' +
    'stops after the current step and saves a checkpoint; continue with --resume_from_checkpoint true.',
  positionals: ['<job.yaml>'],
  required: 0,
  options: trainOptions(),
  examples: [
    'graft train job.yaml',
    'graft train --model HuggingFaceTB/SmolLM2-135M-Instruct --dataset data.jsonl --lora_rank 8 --max_steps 200',
    'graft train job.yaml --learning_rate 1e-4 --output_dir runs/lr1e-4',
    'graft train --stage dpo --model ./my-sft-model --dataset pairs.json --pref_beta 0.1 --max_steps 100',
    'graft train --stage rm --model ./my-sft-model --dataset pairs.json --output_dir runs/rm',
  ],
};
