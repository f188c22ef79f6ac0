// The per-task chart of a multi-task run (uPlot): one loss line per task on the left axis, its validation loss as
// points in the same colour, and its weight in the combined loss as a dashed line on the right axis (from 0 to
// 1 or the largest weight).
// The data come from taskSeries() (task-series.ts). Colours: a fixed palette that reads on light and dark
// backgrounds; the page's CSS variables colour the axes, so the chart follows light and dark mode.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { cssVar, StepChart, STEP_INCREMENTS } from './chart';
import type { TaskSeries } from './task-series';

/** One colour per task, in task order (repeats after eight tasks). */
export const TASK_COLOURS = ['#2f8f4e', '#2f6fb8', '#c0652a', '#8a4fb5', '#b8447a', '#1f8f8f', '#8f7a1f', '#5f6f8f'];

export const taskColour = (i: number): string => TASK_COLOURS[i % TASK_COLOURS.length]!;

export class TaskChart extends StepChart {
  private series: TaskSeries | undefined;
  private key = '';

  constructor(
    host: HTMLElement,
    private readonly height = 240,
  ) {
    super(host);
  }

  private columns(): uPlot.AlignedData {
    const s = this.series!;
    const cols: (number | null)[][] = [s.x];
    for (const t of s.tasks) cols.push(s.loss.get(t)!, s.evalLoss.get(t)!, s.weight.get(t)!);
    return cols as uPlot.AlignedData;
  }

  protected rebuild(): void {
    this.plot?.destroy();
    this.plot = undefined;
    const s = this.series;
    if (!s || s.tasks.length === 0) return;
    const axis = this.axisStyle();
    const fmt = (d: number) => (_u: uPlot, v: number | null) => (v == null ? '—' : v.toFixed(d));
    const series: uPlot.Series[] = [{ label: 'step', value: (_u, v) => (v == null ? '—' : String(v)) }];
    s.tasks.forEach((t, i) => {
      const c = taskColour(i);
      series.push(
        { label: `${t} loss`, stroke: c, width: 2, spanGaps: true, points: { show: false }, value: fmt(4) },
        { label: `${t} validation`, stroke: c, width: 0, points: { show: true, size: 7, fill: c, stroke: c }, value: fmt(4) },
        { label: `${t} weight`, stroke: c, width: 1, dash: [6, 4], scale: 'w', spanGaps: true, points: { show: false }, value: fmt(3) },
      );
    });
    const opts: uPlot.Options = {
      width: this.width(),
      height: this.height,
      scales: {
        x: this.stepScale(),
        // Static weights are often 1 each; DWA's sum to the number of tasks, so one can pass 1.
        w: { range: (_u, _min, max) => [0, Math.max(1, Number.isFinite(max) ? max * 1.05 : 1)] },
      },
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      axes: [
        { ...axis, label: 'step', labelSize: 18, incrs: STEP_INCREMENTS, values: (_u, splits) => splits.map((v) => String(v)) },
        { ...axis, label: 'loss', labelSize: 18, size: 52 },
        { ...axis, scale: 'w', side: 1, label: 'weight', labelSize: 18, size: 44, grid: { show: false } },
      ],
      series,
    };
    this.plot = new uPlot(opts, this.columns(), this.host);
    this.plot.root.style.color = cssVar('--text', '#1d231e');
  }

  update(series: TaskSeries, totalSteps: number): void {
    this.series = series;
    this.totalSteps = totalSteps;
    const key = series.tasks.join('\n');
    // New tasks need new series (and colours); otherwise only the data change.
    if (key !== this.key || !this.plot) {
      this.key = key;
      this.rebuild();
    } else {
      this.plot.setData(this.columns());
    }
  }
}
