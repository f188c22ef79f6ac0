// The live loss chart (uPlot, on a canvas): the loss of every step (faint), the smoothed loss (TensorBoard's
// debiased exponential moving average, the smoothing control's weight), and the validation loss as points.
// The x axis is the optimizer step. Colours come from the page's CSS variables, so the chart follows light and
// dark mode; `toPng()` gives the chart as an image for the training report.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface LossData {
  /** Steps with a loss (1, 2, ...). */
  steps: readonly number[];
  losses: readonly number[];
  /** Validation loss: the steps it was computed after, and its values. */
  evalSteps: readonly number[];
  evalLosses: readonly number[];
}

/**
 * TensorBoard's smoothing: an exponential moving average with weight `w` in [0, 1), debiased so that the
 * first values are not pulled towards zero. Non-finite values (skipped steps) are carried over, not averaged.
 */
export function smooth(values: readonly number[], w: number): number[] {
  const weight = Math.min(Math.max(w, 0), 0.999);
  const out: number[] = [];
  let last = 0;
  let n = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) {
      out.push(n > 0 ? last / (1 - weight ** n) : Number.NaN);
      continue;
    }
    last = last * weight + (1 - weight) * v;
    n++;
    out.push(last / (1 - weight ** n));
  }
  return out;
}

/** uPlot's aligned columns: x, loss, smoothed loss, validation loss (null where there is none). */
export function chartColumns(d: LossData, smoothing: number): [number[], (number | null)[], (number | null)[], (number | null)[]] {
  const xs = new Set<number>(d.steps);
  for (const s of d.evalSteps) xs.add(s);
  const x = [...xs].sort((a, b) => a - b);
  const lossAt = new Map<number, number>();
  d.steps.forEach((s, i) => lossAt.set(s, d.losses[i]!));
  const smoothed = smooth(d.losses, smoothing);
  const smoothAt = new Map<number, number>();
  d.steps.forEach((s, i) => smoothAt.set(s, smoothed[i]!));
  const evalAt = new Map<number, number>();
  d.evalSteps.forEach((s, i) => evalAt.set(s, d.evalLosses[i]!));
  const finite = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : null);
  return [x, x.map((s) => finite(lossAt.get(s))), x.map((s) => finite(smoothAt.get(s))), x.map((s) => finite(evalAt.get(s)))];
}

/** Whole steps on the x axis. */
export const STEP_INCREMENTS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000];

export function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export function withAlpha(color: string, alpha: number): string {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) return color;
  const n = parseInt(m[1]!, 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

export interface LossChartOptions {
  height?: number;
  /** The chart's accessible name (the canvas is described by the table beside it). */
  title?: string;
}

/**
 * What the loss chart and the per-task chart share: a uPlot in a host element that follows the host's width and
 * the page's colour scheme, and an x axis of whole optimizer steps.
 */
export abstract class StepChart {
  protected plot: uPlot | undefined;
  /** The run's total steps: the x axis spans them from the start, so the chart shows how far the run is. */
  protected totalSteps = 0;
  private readonly resize: ResizeObserver;
  private readonly scheme: MediaQueryList;
  private readonly onScheme = () => this.rebuild();

  constructor(protected readonly host: HTMLElement) {
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(host);
    this.scheme = matchMedia('(prefers-color-scheme: dark)');
    this.scheme.addEventListener('change', this.onScheme);
  }

  /** Draws the chart again from its data (a new plot: the colours are read from the page now). */
  protected abstract rebuild(): void;

  protected width(): number {
    return Math.max(240, Math.floor(this.host.clientWidth || 600));
  }

  /** The axes' style in the page's colours. */
  protected axisStyle() {
    const muted = cssVar('--muted', '#56605a');
    const grid = cssVar('--border', '#d9dfd9');
    return { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: '12px system-ui, sans-serif', labelFont: '12px system-ui, sans-serif' };
  }

  /** The x scale: from step 1 to the run's total steps (or the last step shown, when more). */
  protected stepScale(): uPlot.Scale {
    return { time: false, range: (_u, min, max) => [1, Math.max(this.totalSteps, Number.isFinite(max) ? max : 1, (Number.isFinite(min) ? min : 1) + 1)] };
  }

  private fit(): void {
    if (!this.plot) return;
    const w = this.width();
    if (Math.abs(this.plot.width - w) > 1) this.plot.setSize({ width: w, height: this.plot.height });
  }

  destroy(): void {
    this.resize.disconnect();
    this.scheme.removeEventListener('change', this.onScheme);
    this.plot?.destroy();
    this.plot = undefined;
  }
}

export class LossChart extends StepChart {
  private data: LossData = { steps: [], losses: [], evalSteps: [], evalLosses: [] };
  private smoothing = 0.6;

  constructor(
    host: HTMLElement,
    private readonly options: LossChartOptions = {},
  ) {
    super(host);
    this.rebuild();
  }

  protected rebuild(): void {
    this.plot?.destroy();
    const text = cssVar('--text', '#1d231e');
    const accent = cssVar('--accent', '#2f6b3a');
    const evalColor = cssVar('--link', '#1f5f9e');
    const axis = this.axisStyle();
    const opts: uPlot.Options = {
      width: this.width(),
      height: this.options.height ?? 260,
      ...(this.options.title ? { title: this.options.title } : {}),
      scales: { x: this.stepScale() },
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      axes: [
        { ...axis, label: 'step', labelSize: 18, incrs: STEP_INCREMENTS, values: (_u, splits) => splits.map((v) => String(v)) },
        { ...axis, label: 'loss', labelSize: 18, size: 52 },
      ],
      series: [
        { label: 'step', value: (_u, v) => (v == null ? '—' : String(v)) },
        { label: 'loss', stroke: withAlpha(accent, 0.35), width: 1, points: { show: false }, value: (_u, v) => (v == null ? '—' : v.toFixed(4)) },
        { label: 'smoothed', stroke: accent, width: 2, points: { show: false }, value: (_u, v) => (v == null ? '—' : v.toFixed(4)) },
        {
          label: 'validation',
          stroke: evalColor,
          width: 2,
          spanGaps: true,
          points: { show: true, size: 7, fill: evalColor, stroke: evalColor },
          value: (_u, v) => (v == null ? '—' : v.toFixed(4)),
        },
      ],
    };
    this.plot = new uPlot(opts, chartColumns(this.data, this.smoothing) as uPlot.AlignedData, this.host);
    this.plot.root.style.color = text;
  }

  update(data: LossData, smoothing = this.smoothing, totalSteps = this.totalSteps): void {
    this.data = data;
    this.smoothing = smoothing;
    this.totalSteps = totalSteps;
    this.plot?.setData(chartColumns(data, smoothing) as uPlot.AlignedData);
  }

  /**
   * The chart as a PNG: a title and the legend (uPlot keeps both in HTML, outside its canvas) above the plot, on
   * the page's background colour.
   */
  async toPng(title = 'Training loss'): Promise<Uint8Array> {
    // uPlot draws on the next frame after setData.
    await new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));
    const src = this.plot?.ctx.canvas;
    if (!src) return new Uint8Array();
    const ratio = src.width / Math.max(1, this.plot!.width);
    const head = Math.round(56 * ratio);
    const canvas = document.createElement('canvas');
    canvas.width = src.width;
    canvas.height = src.height + head;
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = cssVar('--surface', '#ffffff');
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = cssVar('--text', '#1d231e');
    ctx.font = `600 ${Math.round(15 * ratio)}px system-ui, sans-serif`;
    ctx.textBaseline = 'middle';
    ctx.fillText(title, 12 * ratio, 16 * ratio);
    const accent = cssVar('--accent', '#2f6b3a');
    const legend: [string, string, number][] = [
      ['loss', withAlpha(accent, 0.35), 1],
      [`smoothed (${this.smoothing.toFixed(2)})`, accent, 2],
      ...(this.data.evalSteps.length ? ([['validation', cssVar('--link', '#1f5f9e'), 2]] as [string, string, number][]) : []),
    ];
    ctx.font = `${Math.round(12 * ratio)}px system-ui, sans-serif`;
    let x = 12 * ratio;
    const y = 40 * ratio;
    for (const [label, color, width] of legend) {
      ctx.strokeStyle = color;
      ctx.lineWidth = width * ratio;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x + 18 * ratio, y);
      ctx.stroke();
      x += 24 * ratio;
      ctx.fillStyle = cssVar('--muted', '#56605a');
      ctx.fillText(label, x, y);
      x += ctx.measureText(label).width + 18 * ratio;
    }
    ctx.drawImage(src, 0, head);
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
    return blob ? new Uint8Array(await blob.arrayBuffer()) : new Uint8Array();
  }
}

/** A chart drawn off-screen for a run's metrics (the report of a run that is not on screen). */
export async function chartPng(data: LossData, smoothing = 0.6, width = 800, totalSteps = 0, title = 'Training loss'): Promise<Uint8Array> {
  const host = document.createElement('div');
  host.style.cssText = `position:fixed;left:-10000px;top:0;width:${width}px`;
  document.body.append(host);
  const chart = new LossChart(host, { height: 320 });
  try {
    chart.update(data, smoothing, totalSteps);
    return await chart.toPng(title);
  } finally {
    chart.destroy();
    host.remove();
  }
}
