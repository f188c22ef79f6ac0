// Seeded randomness for data order: the same seed gives the same shuffle and the same train/validation split
// in every browser and in Node, so a run can be repeated and a job file means the same thing everywhere.

/**
 * mulberry32 (Tommy Ettinger's 32-bit generator): a 32-bit state advanced by the odd constant 0x6D2B79F5 and
 * mixed with two multiply-xorshift rounds. Period 2^32, passes the usual small-crush tests, and uses only
 * 32-bit integer arithmetic (`Math.imul`), so every JavaScript engine gives identical numbers. Not for
 * cryptography. Seeds are taken modulo 2^32.
 */
export class SeededRandom {
  private state: number;
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`seed must be a finite number, got ${seed}`);
    this.state = Math.trunc(seed) >>> 0;
  }
  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** A shuffled copy of `items` (Fisher–Yates, driven by {@link SeededRandom}(seed)). */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const rng = new SeededRandom(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

/**
 * Splits off a validation set, LLaMA-Factory's `val_size`: a fraction in (0, 1) takes ceil(fraction · n)
 * items, a whole number ≥ 1 takes that many; 0 takes none. The items are shuffled with `seed` first; at least
 * one item always stays in training.
 */
export function splitTrainVal<T>(items: readonly T[], valSize: number, seed: number): { train: T[]; val: T[] } {
  if (!(valSize >= 0) || (valSize >= 1 && !Number.isInteger(valSize))) {
    throw new Error(`val_size must be a fraction in [0, 1) or a whole number of examples, got ${valSize}`);
  }
  if (valSize === 0 || items.length === 0) return { train: items.slice(), val: [] };
  const n = valSize < 1 ? Math.ceil(valSize * items.length) : valSize;
  if (n >= items.length) {
    throw new Error(`val_size ${valSize} would take ${n} of the ${items.length} examples, leaving none to train on`);
  }
  const order = shuffled(items, seed);
  return { val: order.slice(0, n), train: order.slice(n) };
}

/**
 * Balanced task sampling (task_sampling "balanced"): an epoch of `length` example indices in which every
 * position first draws a task uniformly (each of the K tasks equally likely), then takes that task's next
 * example from its own shuffled pool; a pool that runs out is reshuffled and started again, so small tasks
 * repeat within an epoch and large ones are subsampled. `taskOf[i]` is example i's task (0 ≤ t < K); every
 * task must have an example. One SeededRandom(seed) drives the pools and the draws, so (seed, length) fix the
 * order. The trainer passes seed + epoch and length = the number of training examples, so an epoch keeps its
 * proportional length and the schedule its steps.
 */
export function balancedOrder(taskOf: readonly number[], tasks: number, length: number, seed: number): number[] {
  const pools: number[][] = Array.from({ length: tasks }, () => []);
  taskOf.forEach((t, i) => {
    if (!Number.isInteger(t) || t < 0 || t >= tasks) throw new Error(`balancedOrder: example ${i} has task ${t}, not one of 0..${tasks - 1}`);
    pools[t]!.push(i);
  });
  const empty = pools.findIndex((p) => p.length === 0);
  if (empty >= 0) throw new Error(`balancedOrder: task ${empty} has no example`);
  const rng = new SeededRandom(seed);
  const shuffle = (p: number[]) => {
    for (let i = p.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const x = p[i]!;
      p[i] = p[j]!;
      p[j] = x;
    }
  };
  const next = new Array<number>(tasks).fill(0);
  for (const p of pools) shuffle(p);
  const out: number[] = [];
  for (let k = 0; k < length; k++) {
    const t = rng.int(tasks);
    const pool = pools[t]!;
    if (next[t] === pool.length) {
      shuffle(pool);
      next[t] = 0;
    }
    out.push(pool[next[t]!++]!);
  }
  return out;
}
