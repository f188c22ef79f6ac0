// The Train screen's per-task series (src/ui/task-series.ts), on synthetic multi-task records: columns aligned on
// every step that has a value, null where a task has none, tasks sorted, the last value of each task.
import { describe, expect, it } from 'vitest';
import { taskFields, taskSeries } from '../../src/ui/task-series';

const step = (s: number, extra: Record<string, number>) => ({ step: s, epoch: s / 4, loss: 1, learning_rate: 1e-3, grad_norm: 1, ...extra });

describe('taskSeries', () => {
  it('has no task for a single-task run', () => {
    const s = taskSeries([step(1, {}), step(2, {})], [{ step: 2, eval_loss: 1.5 } as { step: number }]);
    expect(s.tasks).toEqual([]);
    expect(s.x).toEqual([]);
    expect(s.loss.size).toBe(0);
  });

  it('lines up each task’s loss, weight and validation loss on the steps', () => {
    const metrics = [
      step(1, { 'task_loss/summarise': 2.5, 'task_loss/classify': 1.25, 'task_weight/summarise': 0.5, 'task_weight/classify': 0.5 }),
      // classify had no example in step 2
      step(2, { 'task_loss/summarise': 2.0, 'task_weight/summarise': 0.75, 'task_weight/classify': 0.25 }),
      step(3, { 'task_loss/summarise': Number.NaN, 'task_loss/classify': 0.75, 'task_weight/summarise': 0.6, 'task_weight/classify': 0.4 }),
    ];
    const evals = [
      { step: 2, eval_loss: 1.9, 'eval_task_loss/summarise': 2.1, 'eval_task_loss/classify': 1.1 },
      // an evaluation after the last logged step
      { step: 4, eval_loss: 1.6, 'eval_task_loss/summarise': 1.75, 'eval_task_loss/classify': 0.9 },
    ];
    const s = taskSeries(metrics, evals);
    expect(s.tasks).toEqual(['classify', 'summarise']);
    expect(s.x).toEqual([1, 2, 3, 4]);
    expect(s.loss.get('summarise')).toEqual([2.5, 2.0, null, null]);
    expect(s.loss.get('classify')).toEqual([1.25, null, 0.75, null]);
    expect(s.weight.get('summarise')).toEqual([0.5, 0.75, 0.6, null]);
    expect(s.weight.get('classify')).toEqual([0.5, 0.25, 0.4, null]);
    expect(s.evalLoss.get('summarise')).toEqual([null, 2.1, null, 1.75]);
    expect(s.evalLoss.get('classify')).toEqual([null, 1.1, null, 0.9]);
    // The weights of a step sum to 1 where the run reports all tasks.
    for (let i = 0; i < 3; i++) expect(s.weight.get('summarise')![i]! + s.weight.get('classify')![i]!).toBeCloseTo(1, 12);
    // The last finite values: summarise's NaN at step 3 is skipped.
    expect(s.last.get('summarise')).toEqual({ loss: 2.0, weight: 0.6, evalLoss: 1.75 });
    expect(s.last.get('classify')).toEqual({ loss: 0.75, weight: 0.4, evalLoss: 0.9 });
  });

  it('takes a task that appears only in evaluations, and repeated steps once', () => {
    const s = taskSeries([step(5, { 'task_loss/a': 1 }), step(5, { 'task_loss/a': 1 })], [{ step: 5, 'eval_task_loss/b': 3 } as { step: number }]);
    expect(s.tasks).toEqual(['a', 'b']);
    expect(s.x).toEqual([5]);
    expect(s.loss.get('b')).toEqual([null]);
    expect(s.evalLoss.get('b')).toEqual([3]);
  });
});

describe('taskFields', () => {
  it('reads only numeric fields with the prefix and a task name', () => {
    const f = taskFields({ 'task_loss/x': 1.5, 'task_loss/': 2, 'task_loss/y': 'no', task_loss: 3, 'task_weight/x': 0.5 }, 'task_loss/');
    expect([...f]).toEqual([['x', 1.5]]);
  });
});
