import { describe, expect, it } from 'vitest';
import { learningRateAt, lrMultiplier, resolveInterval, scheduleFor, stepsPerEpoch, totalOptimizerSteps, warmupStepsFor } from '../../src/train/schedule';
import { parseSettings } from '../../src/train/settings';

const base = { model_name_or_path: 'm', dataset: 'd.json' };

describe('lrMultiplier: transformers LambdaLR values, computed by hand', () => {
  it('constant ignores warm-up (get_constant_schedule)', () => {
    for (const step of [0, 1, 5, 99]) expect(lrMultiplier(step, 'constant', 10, 100)).toBe(1);
  });

  it('constant_with_warmup: step / max(1, w) during warm-up, then 1', () => {
    // w = 4: 0/4, 1/4, 2/4, 3/4, then 1
    expect([0, 1, 2, 3, 4, 5, 50].map((s) => lrMultiplier(s, 'constant_with_warmup', 4, 10))).toEqual([0, 0.25, 0.5, 0.75, 1, 1, 1]);
    // w = 0: no warm-up at all (step 0 < 0 is false)
    expect(lrMultiplier(0, 'constant_with_warmup', 0, 10)).toBe(1);
  });

  it('linear: warm-up, then (T - step) / max(1, T - w), clamped at 0', () => {
    // w = 2, T = 10: steps 0,1 → 0, 0.5; step 2 → 8/8 = 1; step 6 → 4/8 = 0.5; step 9 → 1/8; step 10 → 0; step 12 → max(0, -2/8) = 0
    const got = [0, 1, 2, 6, 9, 10, 12].map((s) => lrMultiplier(s, 'linear', 2, 10));
    expect(got).toEqual([0, 0.5, 1, 0.5, 0.125, 0, 0]);
    // w = 0, T = 4: (4 - s) / 4
    expect([0, 1, 2, 3].map((s) => lrMultiplier(s, 'linear', 0, 4))).toEqual([1, 0.75, 0.5, 0.25]);
    // T = w: the divisor is max(1, 0) = 1
    expect(lrMultiplier(3, 'linear', 3, 3)).toBe(0);
  });

  it('cosine (half a cycle): 0.5 · (1 + cos(π · (step - w) / (T - w))) after warm-up', () => {
    // w = 2, T = 10 (8 decay steps)
    expect(lrMultiplier(1, 'cosine', 2, 10)).toBe(0.5); // warm-up 1/2
    expect(lrMultiplier(2, 'cosine', 2, 10)).toBe(1); // cos(0) = 1
    expect(lrMultiplier(4, 'cosine', 2, 10)).toBeCloseTo(0.5 * (1 + Math.SQRT1_2), 15); // p = 2/8, cos(π/4) = √½ → 0.853553…
    expect(lrMultiplier(4, 'cosine', 2, 10)).toBeCloseTo(0.8535533905932737, 15);
    expect(lrMultiplier(6, 'cosine', 2, 10)).toBeCloseTo(0.5, 15); // p = 1/2, cos(π/2) = 0
    expect(lrMultiplier(8, 'cosine', 2, 10)).toBeCloseTo(0.5 * (1 - Math.SQRT1_2), 15); // 0.146446…
    expect(lrMultiplier(10, 'cosine', 2, 10)).toBeCloseTo(0, 15); // cos(π) = -1
    // past T the cosine rises again in transformers' formula (num_cycles 0.5: p = 1.25 → cos(1.25π) = -√½);
    // max(0, ·) keeps it as computed: 0.5 · (1 - √½)
    expect(lrMultiplier(12, 'cosine', 2, 10)).toBeCloseTo(0.5 * (1 - Math.SQRT1_2), 15);
  });

  it('refuses negative or fractional steps', () => {
    expect(() => lrMultiplier(-1, 'linear', 0, 10)).toThrow(/step/);
    expect(() => lrMultiplier(1.5, 'linear', 0, 10)).toThrow(/step/);
  });
});

describe('learningRateAt', () => {
  it('is lr times the multiplier; step 0 is the first update (0 with warm-up)', () => {
    const p = { lr: 1e-3, type: 'linear' as const, warmupSteps: 2, totalSteps: 10 };
    expect(learningRateAt(0, p)).toBe(0);
    expect(learningRateAt(1, p)).toBe(5e-4);
    expect(learningRateAt(2, p)).toBe(1e-3);
    expect(learningRateAt(6, p)).toBe(5e-4);
  });
});

describe('step counts as transformers Trainer computes them', () => {
  it('stepsPerEpoch = max(1, ceil(ceil(examples / batch) / accumulation))', () => {
    // 10 examples, batch 3 → 4 batches (3+3+3+1); accumulation 2 → ceil(4/2) = 2
    expect(stepsPerEpoch(10, { per_device_train_batch_size: 3, gradient_accumulation_steps: 2 })).toBe(2);
    // 10 examples, batch 3 → 4 batches; accumulation 3 → ceil(4/3) = 2 (the last, short accumulation still steps)
    expect(stepsPerEpoch(10, { per_device_train_batch_size: 3, gradient_accumulation_steps: 3 })).toBe(2);
    // 16 examples, batch 4, accumulation 4 → 4 batches → 1 step
    expect(stepsPerEpoch(16, { per_device_train_batch_size: 4, gradient_accumulation_steps: 4 })).toBe(1);
    // fewer batches than the accumulation: still one step
    expect(stepsPerEpoch(1, { per_device_train_batch_size: 8, gradient_accumulation_steps: 16 })).toBe(1);
    expect(stepsPerEpoch(0, { per_device_train_batch_size: 8, gradient_accumulation_steps: 1 })).toBe(1);
  });

  it('totalOptimizerSteps: ceil(epochs · steps per epoch), max_steps > 0 overrides', () => {
    const s = { per_device_train_batch_size: 3, gradient_accumulation_steps: 2, num_train_epochs: 3, max_steps: -1 };
    expect(totalOptimizerSteps(10, s)).toBe(6); // 3 · 2
    expect(totalOptimizerSteps(10, { ...s, num_train_epochs: 2.5 })).toBe(5); // ceil(2.5 · 2) = 5
    expect(totalOptimizerSteps(10, { ...s, num_train_epochs: 0.3 })).toBe(1); // ceil(0.6) = 1
    expect(totalOptimizerSteps(10, { ...s, max_steps: 17 })).toBe(17);
  });

  it('warmupStepsFor: warmup_steps wins, else ceil(ratio · total)', () => {
    expect(warmupStepsFor({ warmup_steps: 5, warmup_ratio: 0.5 }, 100)).toBe(5);
    expect(warmupStepsFor({ warmup_steps: 0, warmup_ratio: 0.1 }, 95)).toBe(10); // ceil(9.5)
    expect(warmupStepsFor({ warmup_steps: 0, warmup_ratio: 0.1 }, 100)).toBe(10); // 100 · 0.1 = 10 exactly in float64
    expect(warmupStepsFor({ warmup_steps: 0, warmup_ratio: 0.03 }, 7)).toBe(1); // ceil(0.21)
    expect(warmupStepsFor({ warmup_steps: 0, warmup_ratio: 0 }, 7)).toBe(0);
  });

  it('scheduleFor puts it together from parsed settings', () => {
    const s = parseSettings({ ...base, per_device_train_batch_size: 2, gradient_accumulation_steps: 2, num_train_epochs: 2, lr_scheduler_type: 'cosine', warmup_ratio: 0.1, learning_rate: 2e-4 }, 't');
    // 25 examples → 13 batches → ceil(13/2) = 7 steps per epoch → 14 steps; warm-up ceil(1.4) = 2
    expect(scheduleFor(25, s)).toEqual({ lr: 2e-4, type: 'cosine', warmupSteps: 2, totalSteps: 14 });
  });

  it('resolveInterval: below 1 is a fraction of the run (ceil), else the value', () => {
    expect(resolveInterval(10, 1000)).toBe(10);
    expect(resolveInterval(0.1, 95)).toBe(10); // ceil(9.5)
    expect(resolveInterval(0.001, 10)).toBe(1);
  });
});
