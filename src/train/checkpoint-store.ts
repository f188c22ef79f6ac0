// Where checkpoints live: the CheckpointStore interface (a checkpoint is complete or absent, never half-present)
// and MemoryCheckpointStore; the Node and IndexedDB stores are beside it (docs/training.md, "Checkpoints").
// This file runs in the browser worker too: no Node imports.
import { CodedError } from '../engine/errors';

export interface CheckpointStore {
  /** A name for messages: the folder, or the database and run. */
  readonly location: string;
  /** The steps of the complete checkpoints, ascending. */
  list(): Promise<number[]>;
  /** Writes a checkpoint's files atomically (replacing one of the same step). */
  write(step: number, files: ReadonlyMap<string, Uint8Array>): Promise<void>;
  /** A complete checkpoint's files. Throws when there is none at that step. */
  read(step: number): Promise<Map<string, Uint8Array>>;
  /** Removes a checkpoint (no-op when absent). */
  delete(step: number): Promise<void>;
}

/** The checkpoint's folder (or record) name for a step: Hugging Face's `checkpoint-<step>`. */
export const checkpointName = (step: number): string => `checkpoint-${step}`;

/** The step of a `checkpoint-<step>` name, or undefined. */
export function parseCheckpointName(name: string): number | undefined {
  const m = /^checkpoint-(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** A missing or unreadable checkpoint, with what to do. */
export class CheckpointError extends CodedError<'checkpoint' | 'quota'> {
  /** `code` 'quota': the storage was full (the message says how much the checkpoint needs). */
  constructor(message: string, options?: { cause?: unknown; code?: 'checkpoint' | 'quota' }) {
    super('CheckpointError', options?.code ?? 'checkpoint', message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** Test hook: called after each file a store wrote; throwing from it simulates a crash mid-checkpoint. */
export type AfterFileHook = (step: number, file: string) => void;

function checkStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`checkpoint step ${step} must be a whole number ≥ 0`);
}

/** Keeps checkpoints in memory (copies of the bytes). */
export class MemoryCheckpointStore implements CheckpointStore {
  readonly location: string;
  private readonly done = new Map<number, Map<string, Uint8Array>>();

  constructor(
    name = 'memory',
    private readonly afterFile?: AfterFileHook,
  ) {
    this.location = name;
  }

  async list(): Promise<number[]> {
    return [...this.done.keys()].sort((a, b) => a - b);
  }

  async write(step: number, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
    checkStep(step);
    const staged = new Map<string, Uint8Array>();
    for (const [name, bytes] of files) {
      staged.set(name, bytes.slice());
      this.afterFile?.(step, name);
    }
    this.done.set(step, staged);
  }

  async read(step: number): Promise<Map<string, Uint8Array>> {
    const f = this.done.get(step);
    if (!f) throw new CheckpointError(`${this.location} has no complete ${checkpointName(step)}`);
    return new Map([...f].map(([k, v]) => [k, v.slice()]));
  }

  async delete(step: number): Promise<void> {
    this.done.delete(step);
  }
}

/** The latest complete checkpoint's step, or undefined. */
export async function latestCheckpoint(store: CheckpointStore): Promise<number | undefined> {
  const steps = await store.list();
  return steps.length ? steps[steps.length - 1] : undefined;
}
