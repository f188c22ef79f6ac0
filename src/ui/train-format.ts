// What the Train, Chat and Export screens say, as plain functions: training failures as sentences with what to
// do, progress figures, and downloads of export files.
import type { ExportFile, TrainErrorInfo } from '../worker/api';
import { formatBytes } from './format';
import { formatDuration } from './models';

export interface TrainErrorView {
  code: string;
  /** One line: what happened. */
  title: string;
  /** The error's own sentence (what went wrong, what to do). */
  message: string;
  /** What to do, in the app. */
  advice: string;
  /** Where the advice leads, if somewhere. */
  go?: 'model' | 'data' | 'method';
}

/** A training failure for the person: a title by code, the message, and advice. */
export function describeTrainError(e: TrainErrorInfo): TrainErrorView {
  const base = { code: e.code, message: e.message };
  switch (e.code) {
    case 'out-of-memory':
      return { ...base, title: 'The GPU ran out of memory.', advice: 'Lower the batch size or the cut-off length (or the LoRA rank) on the Method screen, close other tabs that use the GPU, then continue from the last checkpoint or start again.', go: 'method' };
    case 'limit-exceeded':
      return { ...base, title: 'A buffer is larger than this GPU allows.', advice: 'Lower the batch size or the cut-off length on the Method screen, or pick a smaller model.', go: 'method' };
    case 'device-lost':
      return { ...base, title: 'The GPU stopped responding (the device was lost).', advice: 'Your checkpoints are safe: continue the run from its last checkpoint (Graft gets a new GPU device); if it happens again, reload the page.' };
    case 'non-finite':
      return { ...base, title: 'The weights became NaN or infinite.', advice: 'Lower the learning rate (or set a gradient clipping norm) on the Method screen, then start again.', go: 'method' };
    case 'validation':
      return { ...base, title: 'The GPU refused a command.', advice: 'This is a bug in Graft: please report it with the message above. Reloading the page and continuing from the last checkpoint may get past it.' };
    case 'bad-settings':
      return { ...base, title: 'The job settings cannot be used.', advice: 'Fix the settings named above on the Method screen, then start again.', go: 'method' };
    case 'encode':
    case 'empty-dataset':
      return { ...base, title: 'The dataset cannot be trained on.', advice: 'Fix or replace the records on the Data screen (each needs a prompt and an answer within the cut-off length).', go: 'data' };
    case 'no-dataset':
      return { ...base, title: 'The dataset is gone.', advice: 'Open the dataset again on the Data screen.', go: 'data' };
    case 'checkpoint':
      return { ...base, title: 'The checkpoint could not be used.', advice: 'Start the run again; if storage is full, free some space first (delete models you do not need).' };
    case 'missing-file':
    case 'not-found':
      return { ...base, title: 'The model is not (fully) on this device.', advice: 'Download it again on the Model screen.', go: 'model' };
    case 'quota':
      return { ...base, title: 'Storage is full.', advice: 'Delete models or results you no longer need, then continue from the last checkpoint.' };
    case 'bad-adapter':
      return { ...base, title: 'The adapter does not fit this model.', advice: 'Pick the base model the adapter was made for, or start without it.' };
    case 'no-adapter':
      return { ...base, title: 'The adapter to continue is gone.', advice: 'Import it again on the Export screen, or start without it.' };
    default:
      return { ...base, title: 'Training stopped with an error.', advice: 'Check the message above; your last checkpoint (if any) can be continued.' };
  }
}

/** "3.2e-4" */
export function formatLr(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '—' : x === 0 ? '0' : x.toExponential(1);
}

export function formatLoss(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(4);
}

export function formatRate(tokensPerSecond: number | undefined): string {
  if (tokensPerSecond === undefined || !Number.isFinite(tokensPerSecond)) return '—';
  return tokensPerSecond >= 100 ? `${Math.round(tokensPerSecond).toLocaleString('en-US')}` : tokensPerSecond.toFixed(1);
}

/** What the time-left estimate reads from a step record. */
export interface TimedStep {
  step: number;
  /** Wall-clock seconds since the run started, when the step's record was made. */
  elapsed_s: number;
}

/** Steady steps (after the first of a session) timed before a time left is shown. */
export const STEADY_STEPS = 3;

/**
 * Seconds left in a run, from the steady steps of this session only: the first step after `sessionStartStep`
 * compiles the GPU kernels (tens of seconds on a software GPU, far longer than any later step), so it is left
 * out. Undefined until `steady` steps after it have been timed. The rate is the time from the first step's record
 * to the last one's over the steps between them, so pauses between records count; evaluations and checkpoints
 * in between do too, as they will in the steps left.
 */
export function estimateTimeLeft(records: readonly TimedStep[], totalSteps: number, sessionStartStep: number, steady = STEADY_STEPS): number | undefined {
  const mine = records.filter((r) => r.step > sessionStartStep && Number.isFinite(r.elapsed_s));
  const first = mine[0];
  const last = mine[mine.length - 1];
  if (!first || !last) return undefined;
  const steps = last.step - first.step;
  if (steps < Math.max(1, steady)) return undefined;
  const seconds = last.elapsed_s - first.elapsed_s;
  if (!(seconds >= 0)) return undefined;
  return (Math.max(0, totalSteps - last.step) * seconds) / steps;
}

/** No step of this session has finished yet: the first one is compiling the GPU kernels. */
export function firstStepPending(records: readonly TimedStep[], sessionStartStep: number): boolean {
  return !records.some((r) => r.step > sessionStartStep);
}

export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined) return 'estimating…';
  return seconds < 1 ? 'under a second' : `about ${formatDuration(seconds)}`;
}

export function formatGpuBytes(bytes: number | undefined): string {
  return bytes === undefined ? '—' : formatBytes(bytes);
}

/** Saves bytes as a file through an object URL (the browser's download). */
export function download(file: ExportFile): void {
  const blob = new Blob([file.bytes as Uint8Array<ArrayBuffer>], { type: file.mime });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = file.name;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  // The download has started from the URL; free it once the browser had time to read it.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
