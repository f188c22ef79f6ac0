// What a training run reports: one record per optimizer step and one per evaluation, with Hugging Face's
// log_history names; the objectives' own fields: docs/training.md ("Metrics").

/** One optimizer step. */
export interface StepRecord {
  /** The optimizer step, counting from 1 (Hugging Face's global_step after the step). */
  step: number;
  /** Epochs done, fractional: step / optimizer steps per epoch. */
  epoch: number;
  /**
   * The loss computed in this step (before its update): Σ target-token NLL / target tokens, over all
   * micro-batches (multi-task: Σ_t w_t · that mean per task).
   */
  loss: number;
  /** The learning rate this step's update used (scheduled even when the step was skipped). */
  learning_rate: number;
  /** The global gradient norm before clipping. */
  grad_norm: number;
  /** Target (labelled) tokens of the step: the loss's denominator. */
  tokens: number;
  /** Non-padding input tokens of the step. */
  input_tokens: number;
  /** input_tokens / the step's wall-clock seconds (forward, backward, optimizer, and the step's one readback). */
  tokens_per_second: number;
  /** Wall-clock seconds since the run started (a resumed run continues its checkpoint's count). */
  elapsed_s: number;
  /** Steps skipped so far because their loss or gradient norm was NaN/Inf (or they had no target token). */
  skipped_steps: number;
  /** Set when THIS step was skipped: no update was applied and the optimizer's moments are untouched. */
  skipped?: true;
  /**
   * Why it was skipped: 'no_target' — its examples had no answer token within cutoff_len, so there was nothing
   * to learn; 'not_finite' — its loss or gradient norm was NaN/Inf.
   */
  skip_reason?: 'no_target' | 'not_finite';
}

/** One evaluation on the validation split. */
export interface EvalRecord {
  step: number;
  /** Σ target-token NLL / target tokens over the whole validation split. */
  eval_loss: number;
  /** Target tokens evaluated. */
  eval_tokens: number;
}

/** Where training is, for progress displays. */
export interface TrainProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  /** The last step's record (undefined before the first step). */
  last?: StepRecord;
  /** Seconds left at the mean step time so far; undefined before the first step. */
  etaSeconds?: number;
  phase: 'train' | 'eval' | 'checkpoint';
}

/** Seconds left, from the mean time of the steps this session has run. */
export function estimateEta(stepsDone: number, totalSteps: number, secondsThisSession: number, stepsThisSession: number): number | undefined {
  if (stepsThisSession <= 0) return undefined;
  return Math.max(0, totalSteps - stepsDone) * (secondsThisSession / stepsThisSession);
}
