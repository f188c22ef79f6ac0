// Download progress for the terminal. On a TTY: one line redrawn in place (bar, bytes, total, speed, ETA,
// the file). Otherwise (a log, CI, a pipe): plain lines, one when a file starts, on retries and restarts,
// every few seconds while bytes arrive, and at the end. Progress goes to stderr so that stdout stays clean.
import type { DownloadProgress } from '../hub/client';
import { formatBytes } from '../engine/errors';

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function formatSpeed(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** Seconds left at the current speed, or undefined when it cannot be told. */
export function etaSeconds(p: Pick<DownloadProgress, 'bytes' | 'total' | 'bytesPerSecond'>): number | undefined {
  if (p.total === undefined || p.bytesPerSecond <= 0) return undefined;
  return Math.max(0, p.total - p.bytes) / p.bytesPerSecond;
}

/** "12.3 MiB / 27.0 MiB  45%  3.2 MiB/s  ETA 5s" */
export function progressSummary(p: DownloadProgress): string {
  const parts = [p.total === undefined ? formatBytes(p.bytes) : `${formatBytes(p.bytes)} / ${formatBytes(p.total)}`];
  if (p.total) parts.push(`${Math.floor((100 * p.bytes) / p.total)}%`);
  if (p.bytesPerSecond > 0) parts.push(formatSpeed(p.bytesPerSecond));
  const eta = etaSeconds(p);
  if (eta !== undefined && p.phase !== 'done') parts.push(`ETA ${formatDuration(eta)}`);
  return parts.join('  ');
}

export function bar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.floor(f * width);
  return '█'.repeat(full) + (full < width ? '░'.repeat(width - full) : '');
}

const PHASE_WORDS: Record<DownloadProgress['phase'], string> = {
  plan: 'checking',
  download: 'downloading',
  retry: 'retrying',
  restart: 'starting over',
  verify: 'verifying',
  done: 'done',
};

/** The words for a progress event's phase; a retry says why ("the server answered HTTP 500, retrying"). */
function phaseWords(p: DownloadProgress): string {
  return p.phase === 'retry' && p.reason ? `${p.reason}, retrying` : PHASE_WORDS[p.phase];
}

export class DownloadReporter {
  private lastDraw = 0;
  private lastLine = 0;
  private lastFile = '';
  private drawn = false;
  private planned = false;
  private readonly started = Date.now();

  constructor(
    private readonly out: ProgressStream,
    private readonly label: string,
    private readonly options: { tty?: boolean; intervalMs?: number; lineIntervalMs?: number } = {},
  ) {}

  private get tty(): boolean {
    return this.options.tty ?? Boolean(this.out.isTTY);
  }

  update(p: DownloadProgress): void {
    const now = Date.now();
    if (this.tty) {
      if (p.phase === 'download' && now - this.lastDraw < (this.options.intervalMs ?? 100)) return;
      this.lastDraw = now;
      this.draw(p);
      return;
    }
    const newFile = p.file !== '' && p.file !== this.lastFile;
    if (p.phase === 'done') return; // finish() says it
    if (p.phase === 'plan') {
      if (!this.planned) this.out.write(`${this.label}: checking the files on the hub\n`);
      this.planned = true;
      return;
    }
    if (p.phase === 'verify') return;
    if (newFile || p.phase !== 'download' || now - this.lastLine >= (this.options.lineIntervalMs ?? 5000)) {
      this.lastFile = p.file || this.lastFile;
      this.lastLine = now;
      this.out.write(`${this.label}: ${phaseWords(p)} ${p.file}  ${progressSummary(p)}\n`);
    }
  }

  private draw(p: DownloadProgress): void {
    const cols = Math.max(40, (this.out.columns || 100) - 1);
    let line: string;
    if (p.phase === 'plan') {
      line = `${this.label}: checking the files on the hub…`;
    } else {
      const fraction = p.total ? p.bytes / p.total : 0;
      const tail = p.phase === 'download' ? p.file : `${phaseWords(p)} ${p.file}`.trim();
      line = `${this.label} ${bar(fraction, 20)} ${progressSummary(p)}${tail ? `  ${tail}` : ''}`;
    }
    if (line.length > cols) line = line.slice(0, cols - 1) + '…';
    this.out.write(`\r\x1b[K${line}`);
    this.drawn = true;
  }

  /** Ends the progress display; `summary` is the last line (e.g. "downloaded 491 KiB in 2s"). */
  finish(summary?: string): void {
    if (this.tty && this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
    if (summary) this.out.write(`${this.label}: ${summary}\n`);
  }

  /** Leaves the progress line in place and moves to the next line (before an error message). */
  interrupt(): void {
    if (this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }

  get elapsedSeconds(): number {
    return (Date.now() - this.started) / 1000;
  }
}
