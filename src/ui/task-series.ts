// The per-task series of a multi-task run, lined up for the Train screen's per-task chart (docs/ui.md, "The run of
// this tab").

/** The prefixes of the per-task fields. */
export const TASK_LOSS = 'task_loss/';
export const TASK_WEIGHT = 'task_weight/';
export const EVAL_TASK_LOSS = 'eval_task_loss/';

export interface TaskSeries {
  /** The task names, sorted. Empty: the run is not multi-task. */
  tasks: string[];
  /** Steps, ascending, without repeats. */
  x: number[];
  /** Per task (by name): its loss at each x (null: none). */
  loss: Map<string, (number | null)[]>;
  /** Per task: its weight at each x (null: none). */
  weight: Map<string, (number | null)[]>;
  /** Per task: its validation loss at each x (null: no evaluation there). */
  evalLoss: Map<string, (number | null)[]>;
  /** The last finite loss, weight and validation loss of each task (for the table beside the chart). */
  last: Map<string, { loss?: number; weight?: number; evalLoss?: number }>;
}

type Row = { step: number };

/** The per-task fields of one record with `prefix`: task → value (non-numbers left out). */
export function taskFields(record: object, prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of Object.entries(record)) {
    if (key.startsWith(prefix) && key.length > prefix.length && typeof value === 'number') out.set(key.slice(prefix.length), value);
  }
  return out;
}

export function taskSeries(metrics: readonly Row[], evals: readonly Row[]): TaskSeries {
  const names = new Set<string>();
  const stepLoss = new Map<number, Map<string, number>>();
  const stepWeight = new Map<number, Map<string, number>>();
  const stepEval = new Map<number, Map<string, number>>();
  const collect = (rows: readonly Row[], prefix: string, into: Map<number, Map<string, number>>) => {
    for (const r of rows) {
      const f = taskFields(r, prefix);
      if (f.size === 0) continue;
      for (const t of f.keys()) names.add(t);
      into.set(r.step, new Map([...(into.get(r.step) ?? []), ...f]));
    }
  };
  collect(metrics, TASK_LOSS, stepLoss);
  collect(metrics, TASK_WEIGHT, stepWeight);
  collect(evals, EVAL_TASK_LOSS, stepEval);
  const tasks = [...names].sort();
  const x = [...new Set([...stepLoss.keys(), ...stepWeight.keys(), ...stepEval.keys()])].sort((a, b) => a - b);
  const finite = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : null);
  const column = (at: Map<number, Map<string, number>>, task: string) => x.map((s) => finite(at.get(s)?.get(task)));
  const loss = new Map<string, (number | null)[]>();
  const weight = new Map<string, (number | null)[]>();
  const evalLoss = new Map<string, (number | null)[]>();
  const last = new Map<string, { loss?: number; weight?: number; evalLoss?: number }>();
  const lastOf = (col: (number | null)[]) => {
    for (let i = col.length - 1; i >= 0; i--) if (col[i] !== null) return col[i]!;
    return undefined;
  };
  for (const t of tasks) {
    loss.set(t, column(stepLoss, t));
    weight.set(t, column(stepWeight, t));
    evalLoss.set(t, column(stepEval, t));
    const l = lastOf(loss.get(t)!);
    const w = lastOf(weight.get(t)!);
    const e = lastOf(evalLoss.get(t)!);
    last.set(t, { ...(l !== undefined ? { loss: l } : {}), ...(w !== undefined ? { weight: w } : {}), ...(e !== undefined ? { evalLoss: e } : {}) });
  }
  return { tasks, x, loss, weight, evalLoss, last };
}
