// Multi-task weights against hand-computed values: static weights, DWA (Liu et al. 2019) from a known loss
// history with T = 2 and T = 1 and windows of 1 and 2 steps, uncertainty weighting's s_t after Adam steps
// (Kendall et al. 2018), state export/import continuing identically, and balanced task sampling.
import { describe, expect, it } from 'vitest';
import { balancedOrder } from '../../src/data/shuffle';
import { dwaWeights, TaskWeighter } from '../../src/train/task-weights';

const adam = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

describe('static task weights', () => {
  it('task_weights by name, 1 for the tasks not named; observing changes nothing', () => {
    const w = new TaskWeighter({ tasks: ['qa', 'summarise', 'translate'], weighting: 'static', staticWeights: { summarise: 0.5, qa: 2 } });
    expect(w.weights()).toEqual([2, 0.5, 1]);
    w.observe([1, 2, 3], 1e-3);
    expect(w.weights()).toEqual([2, 0.5, 1]);
  });
});

describe('DWA', () => {
  it('w = 1 until two windows exist, then K·softmax(r/T) with r = L(k−1)/L(k−2) (T = 2, window 1)', () => {
    const w = new TaskWeighter({ tasks: ['a', 'b'], weighting: 'dwa', dwaTemperature: 2, dwaWindow: 1, adam });
    expect(w.weights()).toEqual([1, 1]);
    w.observe([2, 1], 1e-3);
    expect(w.weights()).toEqual([1, 1]);
    w.observe([1, 1], 1e-3);
    // r_a = 1/2, r_b = 1/1; w_a = 2·e^(0.25) / (e^(0.25) + e^(0.5)) = 2·1.2840254 / 2.9327467
    const [a, b] = w.weights();
    expect(a).toBeCloseTo(0.8756469982284038, 14);
    expect(b).toBeCloseTo(1.1243530017715964, 14);
    expect(a! + b!).toBeCloseTo(2, 14);
    // The next window compares step 3 with step 2: equal losses give equal weights.
    w.observe([1, 1], 1e-3);
    expect(w.weights()[0]).toBeCloseTo(1, 14);
  });

  it('windows of 2 steps average the steps that had the task; T = 1', () => {
    const w = new TaskWeighter({ tasks: ['a', 'b'], weighting: 'dwa', dwaTemperature: 1, dwaWindow: 2, adam });
    w.observe([3, 1], 1e-3);
    w.observe([1, undefined], 1e-3); // window 1: a (3 + 1)/2 = 2, b 1 (one step had b)
    w.observe([1, 2], 1e-3);
    expect(w.weights()).toEqual([1, 1]); // window 2 not complete
    w.observe([1, 2], 1e-3); // window 2: a 1, b 2 → r = (0.5, 2)
    const [a, b] = w.weights();
    // w_a = 2·e^0.5 / (e^0.5 + e^2)
    expect(a).toBeCloseTo(0.3648510476127127, 14);
    expect(b).toBeCloseTo(1.6351489523872875, 14);
  });

  it('a task absent from a window counts r = 1', () => {
    expect(dwaWeights([1, null], [2, 5], 2)).toEqual(dwaWeights([1, 1], [2, 1], 2));
  });
});

describe('uncertainty weighting', () => {
  it('s_t follows Adam on dL/ds = −exp(−s)·L + 1 with the step\'s learning rate; the weight is exp(−s)', () => {
    const w = new TaskWeighter({ tasks: ['a', 'b'], weighting: 'uncertainty', adam });
    expect(w.weights()).toEqual([1, 1]);
    // Step 1, task a, L = 2, lr 0.1: g = −2 + 1 = −1, m̂ = −1, v̂ = 1, s = 0 − 0.1·(−1)/(1 + 1e−8) = 0.099999999.
    w.observe([2, undefined], 0.1);
    expect(w.weights()[0]).toBeCloseTo(Math.exp(-0.099999999), 14);
    expect(w.weights()[1]).toBe(1); // no token of b: left alone (no step counted)
    // Steps 2 and 3 (L = 2, then 0.5), worked out with the same recurrences in float64:
    w.observe([2, undefined], 0.1);
    expect(w.weights()[0]).toBeCloseTo(Math.exp(-0.19890614965084896), 13);
    w.observe([0.5, undefined], 0.1);
    expect(w.weights()[0]).toBeCloseTo(0.7852615271877769, 13);
    // b's first step is its own step 1 (bias corrections per task): the same as a's first step.
    w.observe([undefined, 2], 0.1);
    expect(w.weights()[1]).toBeCloseTo(Math.exp(-0.099999999), 14);
  });

  it('a small loss raises the weight of its task (s falls below 0 when L < 1)', () => {
    const w = new TaskWeighter({ tasks: ['easy', 'hard'], weighting: 'uncertainty', adam });
    for (let i = 0; i < 20; i++) w.observe([0.2, 5], 0.05);
    const [easy, hard] = w.weights();
    expect(easy).toBeGreaterThan(1);
    expect(hard).toBeLessThan(1);
  });
});

describe('task weight state', () => {
  for (const weighting of ['dwa', 'uncertainty'] as const) {
    it(`${weighting}: export, import into a new weighter, and both continue identically`, () => {
      const make = () => new TaskWeighter({ tasks: ['a', 'b'], weighting, dwaTemperature: 2, dwaWindow: 2, adam });
      const losses: [number, number][] = [[2, 1], [1.5, 1.2], [1, 1.1], [0.9, 1.3], [0.7, 0.9], [0.8, 1], [0.6, 0.7]];
      const straight = make();
      const resumed = make();
      losses.slice(0, 3).forEach((l) => {
        straight.observe(l, 0.01);
        resumed.observe(l, 0.01);
      });
      const copy = make();
      copy.importState(JSON.parse(JSON.stringify(resumed.exportState())));
      expect(copy.weights()).toEqual(straight.weights());
      for (const l of losses.slice(3)) {
        straight.observe(l, 0.01);
        copy.observe(l, 0.01);
        expect(copy.weights()).toEqual(straight.weights());
      }
      expect(straight.weights()).not.toEqual([1, 1]);
    });
  }

  it('refuses the state of other tasks or another weighting, saying which', () => {
    const dwa = new TaskWeighter({ tasks: ['a', 'b'], weighting: 'dwa', dwaTemperature: 2, dwaWindow: 1, adam });
    const unc = new TaskWeighter({ tasks: ['a', 'c'], weighting: 'uncertainty', adam });
    expect(() => unc.importState(dwa.exportState())).toThrow(/task_weighting "dwa", this job with "uncertainty"/);
    const other = new TaskWeighter({ tasks: ['a', 'c'], weighting: 'dwa', dwaTemperature: 2, dwaWindow: 1, adam });
    expect(() => other.importState(dwa.exportState())).toThrow(/tasks are a, b, this job's a, c/);
  });
});

describe('balanced task sampling', () => {
  const taskOf = [...new Array<number>(90).fill(0), ...new Array<number>(10).fill(1)];

  it('each task about equally likely per example, whatever its size; seeded and deterministic', () => {
    const order = balancedOrder(taskOf, 2, 2000, 7);
    expect(order).toEqual(balancedOrder(taskOf, 2, 2000, 7));
    expect(order).not.toEqual(balancedOrder(taskOf, 2, 2000, 8));
    const small = order.filter((i) => taskOf[i] === 1).length;
    // Binomial(2000, 1/2): sd 22; 4 sd either side.
    expect(Math.abs(small - 1000)).toBeLessThan(90);
  });

  it('a task\'s pool is used up before any of its examples repeats', () => {
    const order = balancedOrder(taskOf, 2, 100, 3);
    const smallOnes = order.filter((i) => taskOf[i] === 1);
    const firstTen = smallOnes.slice(0, 10);
    expect(new Set(firstTen).size).toBe(Math.min(10, smallOnes.length));
    const big = order.filter((i) => taskOf[i] === 0);
    expect(new Set(big).size).toBe(big.length); // fewer than 90 draws of task 0: no repeats
  });

  it('refuses a task without examples', () => {
    expect(() => balancedOrder([0, 0, 2], 3, 5, 1)).toThrow(/task 1 has no example/);
  });
});
