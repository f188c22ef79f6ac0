// The built-in demo: a tiny random Llama learns six short answers in a few dozen steps, with nothing fetched from
// the network. How its settings were measured and why it trains fully: docs/ui.md ("The built-in demo").

/** The demo's job, under LLaMA-Factory's names (what the worker's parseSettings reads). */
export const DEMO_SETTINGS: Record<string, unknown> = {
  stage: 'sft',
  finetuning_type: 'full',
  learning_rate: 3e-3,
  lr_scheduler_type: 'constant',
  warmup_ratio: 0,
  max_steps: 24,
  per_device_train_batch_size: 6,
  gradient_accumulation_steps: 1,
  cutoff_len: 128,
  max_grad_norm: 1.0,
  weight_decay: 0,
  seed: 42,
  save_strategy: 'no',
  logging_steps: 1,
};

/** Where the demo's files are served: next to the app (relative to the page, so any sub-path works). */
export function demoBaseUrl(): string {
  return new URL(`${import.meta.env.BASE_URL}demo/`, document.baseURI).href;
}

/** Greedy decoding, enough tokens for the answers: what the demo asks with. */
export const DEMO_CHAT = { maxNewTokens: 48, greedy: true } as const;
