// The workbench's rows in IndexedDB (src/storage's "graft" database): runs, the adapters and fine-tuned models
// runs made or a person imported, and the Chat screen's preference pairs. The fine-tuned models' files are in
// their own model set (TUNED_MODELS_DB) of the model store.
import type { AdapterDetails } from '../job/types';
import { openWorkbench, type Workbench } from '../storage';
import type { AdapterKind, FinetuningKind, PreferenceRecord, RunRecord } from './protocol';

/** The model set that holds the fine-tuned models' files. */
export const TUNED_MODELS_DB = 'graft-tuned-models';

/** An adapter folder's two files and what the lists say about it (its settings: AdapterDetails). */
export interface AdapterRow extends Omit<AdapterDetails, 'kind'> {
  id: string;
  label: string;
  baseRepo: string;
  baseRevision: string;
  baseStore?: 'models' | 'tuned';
  origin: 'run' | 'import';
  runId?: string;
  createdAt: number;
  /** Absent: 'lora' (rows kept before the other kinds existed). */
  kind?: AdapterKind;
  config: Uint8Array;
  weights: Uint8Array;
}

/** A fine-tuned model (full, freeze) or a reward model, whose files are in the tuned-models store under `repo`. */
export interface TunedModelRow {
  repo: string;
  label: string;
  baseRepo: string;
  baseRevision: string;
  baseStore?: 'models' | 'tuned';
  runId: string;
  method: FinetuningKind;
  createdAt: number;
  bytes: number;
  /** A reward model (stage rm). */
  reward?: true;
}

export type WorkbenchDb = Workbench<{ runs: RunRecord; adapters: AdapterRow; tuned: TunedModelRow; preferences: PreferenceRecord }>;

export function openWorkbenchDb(): Promise<WorkbenchDb> {
  return openWorkbench();
}

export const adapterKindOf = (row: AdapterRow): AdapterKind => row.kind ?? 'lora';
