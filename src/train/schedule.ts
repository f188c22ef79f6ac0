// Learning-rate schedules, step counts and warm-up exactly as Hugging Face transformers computes them
// (the multipliers: docs/training.md, "Learning-rate schedules").
import type { LrSchedulerType, TrainSettings } from './settings-types';

export interface ScheduleParams {
  /** The peak learning rate (`learning_rate`). */
  lr: number;
  type: LrSchedulerType;
  warmupSteps: number;
  /** All optimizer steps of the run (totalOptimizerSteps). */
  totalSteps: number;
}

/** The LambdaLR multiplier of `type` at optimizer step `step` (0-based). */
export function lrMultiplier(step: number, type: LrSchedulerType, warmupSteps: number, totalSteps: number): number {
  if (!Number.isInteger(step) || step < 0) throw new Error(`step must be a whole number ≥ 0, got ${step}`);
  if (type === 'constant') return 1;
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  switch (type) {
    case 'constant_with_warmup':
      return 1;
    case 'linear':
      return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
    case 'cosine': {
      const numCycles = 0.5;
      const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
    }
    default:
      throw new Error(`unknown lr_scheduler_type ${String(type)}`);
  }
}

/** The learning rate of optimizer step `step` (0-based: step 0 is the first update). */
export function learningRateAt(step: number, p: ScheduleParams): number {
  return p.lr * lrMultiplier(step, p.type, p.warmupSteps, p.totalSteps);
}

/** transformers' get_warmup_steps: warmup_steps when > 0, else ceil(warmup_ratio · total). */
export function warmupStepsFor(s: Pick<TrainSettings, 'warmup_steps' | 'warmup_ratio'>, totalSteps: number): number {
  return s.warmup_steps > 0 ? s.warmup_steps : Math.ceil(totalSteps * s.warmup_ratio);
}

/**
 * Optimizer steps per epoch, as transformers' Trainer counts them: ceil(ceil(examples / batch) / accumulation),
 * at least 1. `examples` are the training sequences after any packing and after the validation split.
 */
export function stepsPerEpoch(examples: number, s: Pick<TrainSettings, 'per_device_train_batch_size' | 'gradient_accumulation_steps'>): number {
  if (!Number.isInteger(examples) || examples < 0) throw new Error(`the number of examples must be a whole number ≥ 0, got ${examples}`);
  const batches = Math.ceil(examples / s.per_device_train_batch_size);
  return Math.max(Math.ceil(batches / s.gradient_accumulation_steps), 1);
}

/** All optimizer steps of a run: max_steps when > 0, else ceil(num_train_epochs · steps per epoch). */
export function totalOptimizerSteps(
  examples: number,
  s: Pick<TrainSettings, 'per_device_train_batch_size' | 'gradient_accumulation_steps' | 'num_train_epochs' | 'max_steps'>,
): number {
  if (s.max_steps > 0) return s.max_steps;
  return Math.ceil(s.num_train_epochs * stepsPerEpoch(examples, s));
}

/** The schedule of a run on `examples` training sequences. */
export function scheduleFor(
  examples: number,
  s: Pick<
    TrainSettings,
    'learning_rate' | 'lr_scheduler_type' | 'warmup_steps' | 'warmup_ratio' | 'per_device_train_batch_size' | 'gradient_accumulation_steps' | 'num_train_epochs' | 'max_steps'
  >,
): ScheduleParams {
  const totalSteps = totalOptimizerSteps(examples, s);
  return { lr: s.learning_rate, type: s.lr_scheduler_type, warmupSteps: warmupStepsFor(s, totalSteps), totalSteps };
}

/**
 * A step interval of logging_steps / save_steps / eval_steps as transformers resolves it: a value below 1 is a
 * fraction of the total steps, ceil(fraction · total); otherwise the value itself.
 */
export function resolveInterval(value: number, totalSteps: number): number {
  return value < 1 ? Math.max(1, Math.ceil(value * totalSteps)) : Math.round(value);
}
