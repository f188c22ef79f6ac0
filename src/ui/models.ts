// What the Models and Chat panels show, as plain functions (type-checked with the rest; the Svelte components
// only render): download progress lines, catalogue rows, storage, and errors with their code.
import type { CachedModel, DownloadProgress, StorageInfo } from '../worker/api';
import { formatBytes } from './format';

export interface ErrorView {
  name: string;
  code?: string;
  message: string;
}

export function errorView(e: unknown): ErrorView {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' ? { name: e.name, code, message: e.message } : { name: e.name, message: e.message };
  }
  return { name: 'Error', message: String(e) };
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function etaSeconds(p: DownloadProgress): number | undefined {
  if (p.total === undefined || p.bytesPerSecond <= 0) return undefined;
  return Math.max(0, p.total - p.bytes) / p.bytesPerSecond;
}

export function percent(p: Pick<DownloadProgress, 'bytes' | 'total'>): number | undefined {
  return p.total ? Math.min(100, Math.floor((100 * p.bytes) / p.total)) : undefined;
}

const PHASES: Record<DownloadProgress['phase'], string> = {
  plan: 'Checking the files on the hub',
  download: 'Downloading',
  retry: 'Retrying',
  restart: 'Starting the file again',
  verify: 'Checking',
  done: 'Downloaded',
};

/** "Downloading model.safetensors" */
export function phaseText(p: DownloadProgress): string {
  const words = p.phase === 'retry' && p.reason ? `${p.reason[0]!.toUpperCase()}${p.reason.slice(1)}; retrying` : PHASES[p.phase];
  return p.file ? `${words} ${p.file}` : words;
}

/** "12.3 MiB of 27.0 MiB (45%) · 3.2 MiB/s · about 5 s left" */
export function progressText(p: DownloadProgress): string {
  const parts: string[] = [];
  const pct = percent(p);
  parts.push(p.total === undefined ? formatBytes(p.bytes) : `${formatBytes(p.bytes)} of ${formatBytes(p.total)}${pct === undefined ? '' : ` (${pct}%)`}`);
  if (p.phase !== 'done' && p.bytesPerSecond > 0) parts.push(`${formatBytes(Math.round(p.bytesPerSecond))}/s`);
  const eta = etaSeconds(p);
  if (p.phase !== 'done' && eta !== undefined && p.bytes > 0) parts.push(`about ${formatDuration(eta)} left`);
  return parts.join(' · ');
}

export interface ModelRow {
  repo: string;
  revision: string;
  complete: boolean;
  size: string;
  status: string;
  files: number;
}

export function modelRow(m: CachedModel): ModelRow {
  const size =
    m.complete || m.expectedBytes === undefined ? formatBytes(m.totalBytes) : `${formatBytes(m.totalBytes)} of ${formatBytes(m.expectedBytes)}`;
  const done = m.files.filter((f) => f.complete).length;
  return {
    repo: m.repo,
    revision: m.revision,
    complete: m.complete,
    size,
    status: m.complete ? 'Complete' : `Partial: ${done} of ${m.files.length} files`,
    files: m.files.length,
  };
}

export function storageText(s: StorageInfo | undefined): string {
  if (!s || s.usage === undefined) return 'This browser does not say how much storage it offers.';
  const quota = s.quota !== undefined ? ` of ${formatBytes(s.quota)}` : '';
  const free = s.available !== undefined ? `; ${formatBytes(s.available)} free` : '';
  return `${formatBytes(s.usage)} used${quota}${free}.`;
}

/** The message for a failed download, with what to do; HubErrors already say it. */
export function downloadErrorText(e: ErrorView): string {
  if (e.name === 'HubError' && e.code === 'aborted') return 'Download cancelled. What was stored is kept: press Download to resume.';
  return e.message;
}
