// What a training job is made of, and what it gives back. Types only: the command line (src/cli/train.ts) and
// the app's worker (src/worker/runs.ts) build a JobSpec from their own inputs — files and flags, or IndexedDB —
// and src/job/run.ts turns it into a trained result. See docs/architecture.md.
import type { PreferenceRecord } from '../data/preference';
import type { Conversation, DatasetFormat, DatasetProblem } from '../data/types';
import type { LlamaFactoryJob } from '../export/llamafactory-job';
import type { Segmenter } from '../eval/metrics';
import type { AdapterKind } from '../model/adapters';
import type { LoadedModel } from '../model/load';
import type { ModelSource } from '../model/source';
import type { CheckpointData, ResumeChange } from '../train/checkpoint';
import type { CheckpointStore } from '../train/checkpoint-store';
import type { EvalRecord, StepRecord, TrainProgress } from '../train/metrics';
import type { TrainSettings } from '../train/settings';
import type { TrainControl, TrainResult } from '../train/trainer';

export type { AdapterKind } from '../model/adapters';

/** The records a job trains on: conversations (stage sft) or preference pairs (dpo, rm), as read. */
export type JobData =
  | { kind: 'sft'; records: readonly Conversation[]; format: DatasetFormat | 'mixed' | null }
  | { kind: 'pairs'; records: readonly PreferenceRecord[] };

export interface JobSpec {
  /** The parsed job (LLaMA-Factory names); max_samples is applied here, to `data`'s records. */
  settings: TrainSettings;
  /** What the records are called in messages and in the LLaMA-Factory job ("qa.json"). */
  datasetName: string;
  data: JobData;
  /** The base model's files, and the id results name as their base (a hub id, or the folder as given). */
  model: { source: ModelSource; id: string };
  /** The adapter to continue (adapter_name_or_path): a LoRA or a bottleneck adapter folder. */
  startingAdapter?: ModelSource;
  /** Where checkpoints go (every save_steps, at the end, on stop). */
  checkpoints: CheckpointStore;
  /** A checkpoint of this run to continue from. */
  resume?: CheckpointData;
  sink: JobSink;
  /**
   * The LLaMA-Factory job to write beside the result: the settings as LLaMA-Factory must read them (model and
   * adapter paths it can open). Runs of methods LLaMA-Factory lacks write none, with a note.
   */
  llamaFactory?: { settings: TrainSettings };
  /**
   * do_predict: the word segmenter for ROUGE (jieba; src/eval/) and the records to answer (eval_dataset), by
   * default the val_size split. Without it a job with do_predict is refused.
   */
  predict?: { segment: Segmenter; records?: readonly Conversation[] };
}

/** Where a job's metrics and result go: a folder (the CLI) or IndexedDB (the app). */
export interface JobSink {
  /**
   * Before the first step: the run's length, and the steps a resumed run already has (its checkpoint's `step`
   * and history); `resumeChanges`: the differences its resumes went ahead with (resume_allow_changes).
   */
  begin(start: { history: RunHistory; step: number; totalSteps: number; resumeChanges?: readonly ResumeChange[] }): Promise<void>;
  step(record: StepRecord): void;
  evaluation(record: EvalRecord): void;
  /** Waits for what step() and evaluation() queued. */
  flush(): Promise<void>;
  /** A completed run's result files. */
  save(result: JobResult): Promise<void>;
}

export interface RunHistory {
  metrics: StepRecord[];
  evalMetrics: EvalRecord[];
}

/** What an adapter of a result is, for lists ("LoRA r 8, alpha 16 …"). */
export interface AdapterDetails {
  kind: AdapterKind;
  /** LoRA: its settings (0, false, [] for the other kinds). */
  r: number;
  alpha: number;
  useRslora: boolean;
  targetModules: string[];
  /** LoRA: adapted linear layers; bottleneck: adapter modules; prompt: virtual tokens. */
  modules: number;
  /** Bottleneck and prompt: a line that says what it is (e.g. "bottleneck adapter, pfeiffer, reduction factor 16, relu"). */
  summary?: string;
}

/**
 * A completed run's files, by name: an adapter folder (lora, adapter, prompt), a Hugging Face model folder
 * (full, freeze) or a reward model (stage rm: the sequence-classification folder, and with LoRA the PEFT
 * adapter with its head). `llamaFactory`: the job for LLaMA-Factory, when the spec asked for one.
 */
export type JobResult = (
  | { kind: 'adapter'; files: Map<string, Uint8Array>; adapter: AdapterDetails }
  | { kind: 'model'; files: Map<string, Uint8Array> }
  | { kind: 'reward'; files: Map<string, Uint8Array>; adapterFiles?: Map<string, Uint8Array> }
) & {
  llamaFactory?: LlamaFactoryJob;
  /** do_predict: generated_predictions.jsonl and predict_results.json (src/job/predict.ts). */
  predictions?: Map<string, Uint8Array>;
};

export type JobPhase = 'loading' | 'preparing' | 'training' | 'paused' | 'eval' | 'checkpoint' | 'saving';

export type JobEvent =
  | { kind: 'phase'; phase: JobPhase; message?: string }
  /** A remark for the person: settings an adapter overrides, examples cut by cutoff_len, … */
  | { kind: 'note'; text: string }
  /** Something wrong with the run as it goes (the loss stopped moving with a zero gradient, ...); it goes on. */
  | { kind: 'warning'; text: string }
  /** Records of the dataset that could not be encoded (left out). */
  | { kind: 'encode-problems'; problems: DatasetProblem[]; what: 'records' | 'pairs' }
  | {
      kind: 'started';
      trainableParameters: number;
      sequences: number;
      valSequences: number;
      totalSteps: number;
      history: RunHistory;
      /** A resumed run: the step of its checkpoint. */
      resumedFrom?: number;
      /** Multi-task runs: each task and its examples. */
      tasks?: { name: string; examples: number }[];
    }
  /** After each step, and when evaluating or saving a checkpoint starts (progress.phase). */
  | { kind: 'progress'; progress: TrainProgress }
  | { kind: 'eval'; record: EvalRecord }
  | { kind: 'checkpoint'; step: number; location: string };

export interface JobHooks {
  onEvent?(e: JobEvent): void;
  control?: TrainControl;
  /** Stops like control.stop() when aborted (Ctrl-C). */
  signal?: { readonly aborted: boolean };
  /** Called before the model loads (the app frees the models its chat holds). */
  beforeLoad?(): Promise<void>;
  /** Hand the loaded model back instead of freeing it (the app chats with it after the run). */
  keepModel?: boolean;
}

export interface JobOutcome {
  status: 'completed' | 'stopped';
  train: TrainResult;
  result?: JobResult;
  /** With hooks.keepModel and a completed run: the model, now the caller's to dispose. */
  model?: LoadedModel;
}
