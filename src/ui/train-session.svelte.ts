// The training run of this tab, outside any screen (wake lock, close warning, notification), the result picked for
// the Chat and Export screens and the adapter a new run continues; docs/ui.md ("The run of this tab").
import { proxy } from 'comlink';
import type { EvalRecord, RunRecord, StepRecord, TrainErrorInfo, TrainEvent, TrainOutcome, TrainPhase, TrainProgress, TrainStartRequest, TunedEntry, TunedRef } from '../worker/api';
import { engine } from './context.svelte';
import { errorView } from './models';
import { trainActivity } from './train-activity.svelte';

export type SessionStatus = 'idle' | 'starting' | 'training' | 'paused' | 'stopping' | 'completed' | 'stopped' | 'failed';

const KEY = 'graft-train';

interface Kept {
  selected?: TunedRef;
  continueAdapter?: string;
  notify?: boolean;
}

function readKept(): Kept {
  try {
    const v = JSON.parse(globalThis.localStorage?.getItem(KEY) ?? '{}') as unknown;
    return typeof v === 'object' && v !== null ? (v as Kept) : {};
  } catch {
    return {};
  }
}

export const sameRef = (a: TunedRef | undefined, b: TunedRef | undefined): boolean =>
  !!a && !!b && a.kind === b.kind && (a.kind === 'adapter' ? a.id === (b as { id: string }).id : a.repo === (b as { repo: string }).repo);

/** A result's key as a picker's value. */
export const tunedKey = (r: TunedRef): string => (r.kind === 'adapter' ? `adapter:${r.id}` : `model:${r.repo}`);

/** The key a result picker shows after its list changed: `want`'s if listed, else `current` if still listed, else the first. */
export function pickKey(entries: readonly TunedEntry[], want: TunedRef | undefined, current: string): string {
  const found = want && entries.find((e) => sameRef(e.ref, want));
  if (found) return tunedKey(found.ref);
  if (entries.some((e) => tunedKey(e.ref) === current)) return current;
  return entries[0] ? tunedKey(entries[0].ref) : '';
}

interface WakeLockLike {
  release(): Promise<void>;
}

class TrainSession {
  status = $state<SessionStatus>('idle');
  phase = $state<TrainPhase | undefined>(undefined);
  phaseMessage = $state('');
  run = $state<RunRecord | undefined>(undefined);
  notes = $state<string[]>([]);
  trainableParameters = $state(0);
  sequences = $state(0);
  valSequences = $state(0);
  /** The steps so far (plain arrays: `version` changes when they do). */
  metrics: StepRecord[] = [];
  evals: EvalRecord[] = [];
  version = $state(0);
  progress = $state<TrainProgress | undefined>(undefined);
  gpuBytes = $state<number | undefined>(undefined);
  resumedFrom = $state<number | undefined>(undefined);
  /** The run's step when this session of it started (0, or the checkpoint it continues from). */
  sessionStartStep = $state(0);
  lastCheckpoint = $state<number | undefined>(undefined);
  error = $state<TrainErrorInfo | undefined>(undefined);
  tuned = $state<TunedEntry | undefined>(undefined);
  /** This run is the built-in demo's. */
  demo = $state(false);
  /** A run that did not finish (a closed or reloaded tab), offered for continuing. */
  unfinished = $state<RunRecord | undefined>(undefined);
  unfinishedChecked = $state(false);
  /** Notify when a run ends (the person asked, and the browser allowed it). */
  notify = $state(false);
  wakeLockHeld = $state(false);

  /** The result the Chat and Export screens show. */
  selected = $state<TunedRef | undefined>(undefined);
  /** The adapter the next run continues (adapter_name_or_path), by id. */
  continueAdapter = $state<string | undefined>(undefined);

  private wakeLock: WakeLockLike | undefined;
  private listening = false;

  constructor() {
    const kept = readKept();
    this.selected = kept.selected;
    this.continueAdapter = kept.continueAdapter;
    this.notify = kept.notify === true && typeof Notification !== 'undefined' && Notification.permission === 'granted';
  }

  get active(): boolean {
    return this.status === 'starting' || this.status === 'training' || this.status === 'paused' || this.status === 'stopping';
  }

  save(): void {
    const kept: Kept = { notify: this.notify };
    if (this.selected) kept.selected = $state.snapshot(this.selected) as TunedRef;
    if (this.continueAdapter) kept.continueAdapter = this.continueAdapter;
    try {
      globalThis.localStorage?.setItem(KEY, JSON.stringify(kept));
    } catch {
      // private mode: kept for this visit
    }
  }

  select(ref: TunedRef | undefined): void {
    this.selected = ref;
    this.save();
  }

  setContinueAdapter(id: string | undefined): void {
    this.continueAdapter = id;
    this.save();
  }

  // ---- runs -----------------------------------------------------------------------------------------------------

  private begin(demo: boolean): void {
    this.status = 'starting';
    this.phase = 'preparing';
    this.phaseMessage = '';
    this.error = undefined;
    this.tuned = undefined;
    this.notes = [];
    this.metrics = [];
    this.evals = [];
    this.progress = undefined;
    this.gpuBytes = undefined;
    this.resumedFrom = undefined;
    this.sessionStartStep = 0;
    this.lastCheckpoint = undefined;
    this.demo = demo;
    this.version++;
    this.setActive(true);
  }

  private readonly onEvent = (e: TrainEvent): void => {
    switch (e.kind) {
      case 'phase':
        this.phase = e.phase;
        this.phaseMessage = e.message ?? '';
        if (this.status !== 'stopping') {
          if (e.phase === 'paused') this.status = 'paused';
          else if (e.phase === 'training' && (this.status === 'paused' || this.status === 'starting')) this.status = 'training';
        }
        break;
      case 'started':
        this.run = e.run;
        this.notes = e.notes;
        this.trainableParameters = e.trainableParameters;
        this.sequences = e.sequences;
        this.valSequences = e.valSequences;
        this.metrics = [...e.history.metrics];
        this.evals = [...e.history.evalMetrics];
        this.resumedFrom = e.resumedFrom;
        this.sessionStartStep = e.resumedFrom ?? 0;
        this.progress = { step: e.run.step, totalSteps: e.run.totalSteps, epoch: 0, phase: 'train' };
        if (this.status === 'starting') this.status = 'training';
        this.version++;
        break;
      case 'step':
        if (!this.metrics.length || this.metrics[this.metrics.length - 1]!.step < e.record.step) this.metrics.push(e.record);
        this.progress = e.progress;
        this.gpuBytes = e.gpuBytes;
        this.version++;
        break;
      case 'progress':
        this.progress = e.progress;
        this.gpuBytes = e.gpuBytes;
        break;
      case 'eval':
        this.evals.push(e.record);
        this.version++;
        break;
      case 'checkpoint':
        this.lastCheckpoint = e.step;
        break;
    }
  };

  private finish(outcome: TrainOutcome): void {
    this.run = outcome.run;
    this.metrics = [...outcome.run.metrics];
    this.evals = [...outcome.run.evalMetrics];
    this.version++;
    this.status = outcome.status;
    this.phase = undefined;
    this.phaseMessage = '';
    this.error = outcome.error;
    if (outcome.run.checkpointStep !== undefined) this.lastCheckpoint = outcome.run.checkpointStep;
    if (outcome.tuned) {
      this.tuned = outcome.tuned;
      this.select(outcome.tuned.ref);
    }
    this.setActive(false);
    this.announce(outcome);
  }

  private fail(e: unknown): void {
    const v = errorView(e);
    this.error = { name: v.name, code: v.code ?? 'error', message: v.message };
    this.status = 'failed';
    this.phase = undefined;
    this.setActive(false);
  }

  start(request: TrainStartRequest): Promise<TrainOutcome | undefined> {
    return this.follow(request.demo === true, (onEvent) => engine.startTraining(request, onEvent));
  }

  continueRun(runId: string): Promise<TrainOutcome | undefined> {
    return this.follow(false, (onEvent) => engine.continueRun(runId, onEvent));
  }

  /** A run started or continued by `call`, followed to its outcome; nothing while another run is active. */
  private async follow(demo: boolean, call: (onEvent: (e: TrainEvent) => void) => Promise<TrainOutcome>): Promise<TrainOutcome | undefined> {
    if (this.active) return undefined;
    this.begin(demo);
    this.unfinished = undefined;
    try {
      const outcome = await call(proxy(this.onEvent));
      this.finish(outcome);
      return outcome;
    } catch (e) {
      this.fail(e);
      return undefined;
    }
  }

  async pause(): Promise<void> {
    if (this.status !== 'training') return;
    this.status = 'paused';
    await engine.pauseTraining();
  }

  async resume(): Promise<void> {
    if (this.status !== 'paused') return;
    this.status = 'training';
    await engine.resumeTraining();
  }

  async stop(): Promise<void> {
    if (!this.active) return;
    this.status = 'stopping';
    // A paused trainer wakes up to stop.
    await engine.stopTraining();
  }

  /** Looks (once per page) for a run that a closed or reloaded tab left unfinished. */
  async checkUnfinished(force = false): Promise<void> {
    if (this.unfinishedChecked && !force) return;
    this.unfinishedChecked = true;
    try {
      this.unfinished = this.active ? undefined : await engine.unfinishedRun();
    } catch {
      this.unfinished = undefined;
    }
  }

  async discardUnfinished(): Promise<void> {
    const u = this.unfinished;
    if (!u) return;
    this.unfinished = undefined;
    await engine.discardRun(u.id);
  }

  // ---- the page around a run --------------------------------------------------------------------------------------

  private setActive(active: boolean): void {
    trainActivity.active = active;
    if (active) {
      void this.lockScreen();
      this.listen();
    } else {
      void this.unlockScreen();
    }
  }

  private listen(): void {
    if (this.listening || typeof window === 'undefined') return;
    this.listening = true;
    // Leaving the page mid-run: the browser asks first (the run can be continued from its checkpoint anyway).
    window.addEventListener('beforeunload', (event) => {
      if (!this.active) return;
      event.preventDefault();
      event.returnValue = '';
    });
    // A wake lock ends when the tab is hidden; take it again when it is shown.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.active) void this.lockScreen();
    });
  }

  private async lockScreen(): Promise<void> {
    const wl = (navigator as Navigator & { wakeLock?: { request(type: 'screen'): Promise<WakeLockLike & EventTarget> } }).wakeLock;
    if (!wl || this.wakeLock || document.visibilityState !== 'visible') return;
    try {
      const lock = await wl.request('screen');
      if (!this.active) {
        await lock.release();
        return;
      }
      this.wakeLock = lock;
      this.wakeLockHeld = true;
      lock.addEventListener('release', () => {
        if (this.wakeLock === lock) {
          this.wakeLock = undefined;
          this.wakeLockHeld = false;
        }
      });
    } catch {
      // refused (battery saver, no user gesture) or unsupported: training goes on without it
    }
  }

  private async unlockScreen(): Promise<void> {
    const lock = this.wakeLock;
    this.wakeLock = undefined;
    this.wakeLockHeld = false;
    await lock?.release().catch(() => undefined);
  }

  /** Asks for notification permission (call it from a click). */
  async enableNotifications(on: boolean): Promise<boolean> {
    if (!on) {
      this.notify = false;
      this.save();
      return false;
    }
    if (typeof Notification === 'undefined') return false;
    const permission = Notification.permission === 'default' ? await Notification.requestPermission() : Notification.permission;
    this.notify = permission === 'granted';
    this.save();
    return this.notify;
  }

  private announce(outcome: TrainOutcome): void {
    if (!this.notify || typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
    const last = outcome.run.metrics[outcome.run.metrics.length - 1];
    const title = outcome.status === 'completed' ? 'Graft: training finished' : outcome.status === 'stopped' ? 'Graft: training stopped' : 'Graft: training failed';
    const body =
      outcome.status === 'failed'
        ? (outcome.error?.message ?? 'The run stopped with an error.')
        : `${outcome.run.label}: step ${outcome.run.step} of ${outcome.run.totalSteps}${last ? `, loss ${last.loss.toFixed(3)}` : ''}.`;
    const icon = `${import.meta.env.BASE_URL}icon-192.png`;
    void (async () => {
      try {
        const reg = await navigator.serviceWorker?.getRegistration();
        if (reg) await reg.showNotification(title, { body, icon, tag: 'graft-training' });
        else new Notification(title, { body, icon, tag: 'graft-training' });
      } catch {
        // notifications blocked after all
      }
    })();
  }
}

export const training = new TrainSession();
