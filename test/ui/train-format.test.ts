// The Train screen's time left (src/ui/train-format.ts): nothing while the first step compiles the kernels and until
// three steady steps are timed, then the steady rate only, so a 45-second first step does not inflate the estimate.
import { describe, expect, it } from 'vitest';
import { estimateTimeLeft, firstStepPending, formatEta } from '../../src/ui/train-format';

/** A run whose first step took `first` seconds and every later one `each`. */
const timed = (n: number, first: number, each: number, from = 0, start = 0) =>
  Array.from({ length: n }, (_, i) => ({ step: from + i + 1, elapsed_s: start + first + i * each }));

describe('estimateTimeLeft', () => {
  it('says nothing before the first step, or with fewer than three steady steps after it', () => {
    expect(estimateTimeLeft([], 24, 0)).toBeUndefined();
    expect(estimateTimeLeft(timed(1, 45, 0.5), 24, 0)).toBeUndefined();
    expect(estimateTimeLeft(timed(3, 45, 0.5), 24, 0)).toBeUndefined();
  });

  it('estimates from the steady steps only, once three are timed', () => {
    // Steps 1–4: 45 s, then 0.5 s each. 20 steps left at 0.5 s = 10 s (the mean over all four steps would say 241 s).
    expect(estimateTimeLeft(timed(4, 45, 0.5), 24, 0)).toBeCloseTo(10, 9);
    // Later: 14 steps left at the same rate.
    expect(estimateTimeLeft(timed(10, 45, 0.5), 24, 0)).toBeCloseTo(7, 9);
    // A step of 2 s among them moves the mean: (0.5·8 + 2) / 9 s a step × 14.
    const bumpy = timed(10, 45, 0.5).map((r) => (r.step >= 6 ? { ...r, elapsed_s: r.elapsed_s + 1.5 } : r));
    expect(estimateTimeLeft(bumpy, 24, 0)).toBeCloseTo((14 * 6) / 9, 9);
    expect(formatEta(estimateTimeLeft(timed(4, 45, 0.5), 24, 0))).toBe('about 10 s');
  });

  it('counts the first step of a continued run as the compiling one, and ignores the steps before it', () => {
    // Continued from the checkpoint at step 6 (its history kept, 100 s elapsed then): step 7 compiles again.
    const history = timed(6, 45, 0.5);
    const resumed = timed(4, 30, 2, 6, 100);
    expect(estimateTimeLeft([...history, ...resumed.slice(0, 3)], 24, 6)).toBeUndefined();
    // Steps 8–10 at 2 s: 14 steps left → 28 s.
    expect(estimateTimeLeft([...history, ...resumed], 24, 6)).toBeCloseTo(28, 9);
  });

  it('is never negative and skips records without a time', () => {
    expect(estimateTimeLeft(timed(24, 45, 0.5), 24, 0)).toBe(0);
    expect(estimateTimeLeft([...timed(4, 45, 0.5), { step: 5, elapsed_s: Number.NaN }], 24, 0)).toBeCloseTo(10, 9);
  });
});

describe('firstStepPending', () => {
  it('is true until a step of this session is in', () => {
    expect(firstStepPending([], 0)).toBe(true);
    expect(firstStepPending(timed(1, 45, 0.5), 0)).toBe(false);
    expect(firstStepPending(timed(6, 45, 0.5), 6)).toBe(true);
    expect(firstStepPending(timed(7, 45, 0.5), 6)).toBe(false);
  });
});
