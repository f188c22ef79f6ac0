// Multi-task loss weights (task_weighting static, dwa or uncertainty): the weight of each task in a step's loss,
// float64 on the CPU, kept in checkpoints; docs/training.md ("Multi-task weights").

export type TaskWeighting = 'static' | 'dwa' | 'uncertainty';

export interface TaskWeighterOptions {
  /** Task names, in the order of the step's per-task stats. */
  tasks: readonly string[];
  weighting: TaskWeighting;
  /** static: weights by task name (missing tasks 1). */
  staticWeights?: Readonly<Record<string, number>>;
  /** dwa: the temperature T. */
  dwaTemperature?: number;
  /** dwa: optimizer steps per loss window. */
  dwaWindow?: number;
  /** uncertainty: Adam's hyper-parameters for the s_t. */
  adam?: { beta1: number; beta2: number; eps: number };
}

/** What a checkpoint keeps of a weighter (JSON). */
export interface TaskWeightState {
  weighting: TaskWeighting;
  tasks: string[];
  /** dwa: the last two complete windows' means (older first; null: no token of the task), and the open window. */
  dwa?: { windows: (number | null)[][]; sums: number[]; counts: number[]; steps: number };
  /** uncertainty: s_t = log σ_t², Adam's moments and per-task step counts. */
  uncertainty?: { s: number[]; m: number[]; v: number[]; steps: number[] };
}

/** DWA's weights from two window means per task (undefined: the task was absent; r_t = 1). */
export function dwaWeights(previous: readonly (number | null)[], beforePrevious: readonly (number | null)[], temperature: number): number[] {
  const K = previous.length;
  const r = previous.map((l, t) => {
    const b = beforePrevious[t];
    return l === null || b === null || b === undefined || b === 0 ? 1 : l / b;
  });
  const top = Math.max(...r.map((x) => x / temperature));
  const e = r.map((x) => Math.exp(x / temperature - top));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => (K * x) / z);
}

export class TaskWeighter {
  readonly tasks: readonly string[];
  readonly weighting: TaskWeighting;
  private readonly o: TaskWeighterOptions;
  private current: number[];
  // dwa
  private windows: (number | null)[][] = [];
  private sums: number[];
  private counts: number[];
  private windowSteps = 0;
  // uncertainty
  private s: number[];
  private m: number[];
  private v: number[];
  private steps: number[];

  constructor(o: TaskWeighterOptions) {
    this.o = o;
    this.tasks = [...o.tasks];
    this.weighting = o.weighting;
    const K = this.tasks.length;
    if (K === 0) throw new Error('TaskWeighter: there are no tasks');
    const zeros = () => new Array<number>(K).fill(0);
    this.sums = zeros();
    this.counts = zeros();
    this.s = zeros();
    this.m = zeros();
    this.v = zeros();
    this.steps = zeros();
    if (o.weighting === 'dwa' && !(o.dwaTemperature! > 0 && Number.isInteger(o.dwaWindow) && o.dwaWindow! >= 1)) {
      throw new Error('TaskWeighter: dwa needs a positive temperature and a whole window of at least 1 step');
    }
    if (o.weighting === 'uncertainty' && !o.adam) throw new Error('TaskWeighter: uncertainty needs Adam hyper-parameters');
    this.current = this.compute();
  }

  /** The weights of the next step, by task index. */
  weights(): number[] {
    return [...this.current];
  }

  private compute(): number[] {
    const K = this.tasks.length;
    switch (this.weighting) {
      case 'static':
        return this.tasks.map((t) => this.o.staticWeights?.[t] ?? 1);
      case 'dwa':
        return this.windows.length < 2 ? new Array<number>(K).fill(1) : dwaWeights(this.windows[1]!, this.windows[0]!, this.o.dwaTemperature!);
      case 'uncertainty':
        return this.s.map((s) => Math.exp(-s));
    }
  }

  /**
   * An applied step's per-task mean losses L_t (undefined: no token of the task in the step) and its learning
   * rate (uncertainty's Adam step). Changes the weights of the following steps.
   */
  observe(losses: readonly (number | undefined)[], learningRate: number): void {
    const K = this.tasks.length;
    if (losses.length !== K) throw new Error(`TaskWeighter.observe: ${losses.length} losses for ${K} tasks`);
    if (this.weighting === 'dwa') {
      losses.forEach((l, t) => {
        if (l === undefined) return;
        this.sums[t]! += l;
        this.counts[t]!++;
      });
      if (++this.windowSteps === this.o.dwaWindow) {
        const means = this.sums.map((sum, t) => (this.counts[t]! > 0 ? sum / this.counts[t]! : null));
        this.windows = [...this.windows, means].slice(-2);
        this.sums.fill(0);
        this.counts.fill(0);
        this.windowSteps = 0;
      }
    } else if (this.weighting === 'uncertainty') {
      const { beta1, beta2, eps } = this.o.adam!;
      losses.forEach((l, t) => {
        if (l === undefined) return;
        const g = -Math.exp(-this.s[t]!) * l + 1;
        const c = ++this.steps[t]!;
        this.m[t] = beta1 * this.m[t]! + (1 - beta1) * g;
        this.v[t] = beta2 * this.v[t]! + (1 - beta2) * g * g;
        const mHat = this.m[t]! / (1 - beta1 ** c);
        const vHat = this.v[t]! / (1 - beta2 ** c);
        this.s[t]! -= (learningRate * mHat) / (Math.sqrt(vHat) + eps);
      });
    }
    this.current = this.compute();
  }

  exportState(): TaskWeightState {
    const state: TaskWeightState = { weighting: this.weighting, tasks: [...this.tasks] };
    if (this.weighting === 'dwa') state.dwa = { windows: this.windows.map((w) => [...w]), sums: [...this.sums], counts: [...this.counts], steps: this.windowSteps };
    if (this.weighting === 'uncertainty') state.uncertainty = { s: [...this.s], m: [...this.m], v: [...this.v], steps: [...this.steps] };
    return state;
  }

  /** Restores exportState()'s result; throws (with what differs) when it belongs to other tasks or weighting. */
  importState(state: TaskWeightState): void {
    if (state.weighting !== this.weighting) {
      throw new Error(`the checkpoint weighs tasks with task_weighting "${state.weighting}", this job with "${this.weighting}"`);
    }
    if (state.tasks.join('\n') !== this.tasks.join('\n')) {
      throw new Error(`the checkpoint's tasks are ${state.tasks.join(', ')}, this job's ${this.tasks.join(', ')}`);
    }
    const K = this.tasks.length;
    const sized = (a: readonly unknown[] | undefined, what: string) => {
      if (!Array.isArray(a) || a.length !== K) throw new Error(`the checkpoint's task weight state is damaged (${what})`);
    };
    if (this.weighting === 'dwa') {
      const d = state.dwa;
      sized(d?.sums, 'dwa sums');
      sized(d?.counts, 'dwa counts');
      for (const w of d!.windows) sized(w, 'dwa windows');
      this.windows = d!.windows.map((w) => [...w]);
      this.sums = [...d!.sums];
      this.counts = [...d!.counts];
      this.windowSteps = d!.steps;
    }
    if (this.weighting === 'uncertainty') {
      const u = state.uncertainty;
      for (const k of ['s', 'm', 'v', 'steps'] as const) sized(u?.[k], `uncertainty ${k}`);
      this.s = [...u!.s];
      this.m = [...u!.m];
      this.v = [...u!.v];
      this.steps = [...u!.steps];
    }
    this.current = this.compute();
  }
}
