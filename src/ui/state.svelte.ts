// The app's state that outlives a screen and a reload: the chosen model, the dataset, the job settings and the
// method guide's answers. Kept in localStorage ("graft-app", a small JSON document); the dataset's records live
// in the engine worker (IndexedDB "graft-datasets"), found again by `dataset.id`.
//
// For the Train screen: `app.model`, `app.dataset` and `app.jobInput()` (the raw settings under LLaMA-Factory's
// names, for the worker's checkSettings / parseSettings) are what a run needs; `app.cutoffLen` is cutoff_len.
import { DEFAULT_ANSWERS, type GuideAnswers } from './method-guide';
import { BROWSER_DEFAULTS, settingsInput, withDefaults, type SettingsValues } from './settings-form';

export interface ChosenModel {
  repo: string;
  revision: string;
}

export interface ChosenDataset {
  /** The worker's dataset id (DataApi). */
  id: string;
  /** The file name; the job's `dataset`. */
  name: string;
}

interface Stored {
  version: 1;
  model: ChosenModel | null;
  dataset: ChosenDataset | null;
  settings: SettingsValues;
  answers: GuideAnswers;
}

export const STATE_KEY = 'graft-app';

function read(): Partial<Stored> {
  try {
    const text = globalThis.localStorage?.getItem(STATE_KEY);
    const v = text ? (JSON.parse(text) as unknown) : undefined;
    return typeof v === 'object' && v !== null ? (v as Partial<Stored>) : {};
  } catch {
    return {};
  }
}

function validAnswers(a: unknown): GuideAnswers {
  const out = { ...DEFAULT_ANSWERS };
  if (typeof a === 'object' && a !== null) {
    for (const k of Object.keys(out) as (keyof GuideAnswers)[]) {
      const v = (a as Record<string, unknown>)[k];
      if (typeof v === typeof out[k]) (out as Record<string, unknown>)[k] = v;
    }
  }
  return out;
}

export class AppState {
  model = $state<ChosenModel | null>(null);
  dataset = $state<ChosenDataset | null>(null);
  settings = $state<SettingsValues>({ ...BROWSER_DEFAULTS });
  answers = $state<GuideAnswers>({ ...DEFAULT_ANSWERS });

  constructor() {
    const s = read();
    if (s.model && typeof s.model.repo === 'string') this.model = { repo: s.model.repo, revision: s.model.revision || 'main' };
    if (s.dataset && typeof s.dataset.id === 'string') this.dataset = { id: s.dataset.id, name: String(s.dataset.name ?? 'dataset') };
    this.settings = withDefaults(s.settings);
    this.answers = validAnswers(s.answers);
    $effect.root(() => {
      $effect(() => this.save());
    });
  }

  save(): void {
    const stored: Stored = {
      version: 1,
      model: $state.snapshot(this.model),
      dataset: $state.snapshot(this.dataset),
      settings: $state.snapshot(this.settings),
      answers: $state.snapshot(this.answers),
    };
    try {
      globalThis.localStorage?.setItem(STATE_KEY, JSON.stringify(stored));
    } catch {
      // private mode or full storage: the state lasts for this visit
    }
  }

  /** The job's raw settings (LLaMA-Factory names), with the chosen model and dataset. */
  jobInput(): Record<string, unknown> {
    return settingsInput(this.settings, this.model?.repo, this.dataset?.name);
  }

  /** cutoff_len as a number, or 512 while the field holds something else. */
  get cutoffLen(): number {
    const n = Number(this.settings.cutoff_len);
    return Number.isInteger(n) && n >= 1 ? n : 512;
  }

  /** lora_rank as a number, or 8. */
  get loraRank(): number {
    const n = Number(this.settings.lora_rank);
    return Number.isInteger(n) && n >= 1 ? n : 8;
  }
}

export const app = new AppState();
