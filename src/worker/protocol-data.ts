// The engine worker's protocol, part two: the types of the dataset, encoding, model-description and settings
// methods (DataApi, implemented by ./data-api.ts for the Data, Model and Method screens). Like ./protocol.ts,
// which includes it in EngineApi and re-exports it, it imports nothing but types.
import type { TokenStats } from '../data/encode';
import type { DatasetFormat, RecordSource } from '../data/types';
import type { MemoryEstimates, ModelInfo, ShapeNumbers } from '../model/info';
import type { PlanPrecision } from '../model/memory-plan';
import type { SettingsProblem, TrainSettings } from '../train/settings';


/** A problem of the dataset, for the problems list: where (line / record), why, and the row to open. */
export interface ProblemView {
  /** The table row it belongs to; undefined for a problem of the file as a whole. */
  row?: number;
  line?: number;
  index?: number;
  /** "line 7", "record 3", or "the file". */
  where: string;
  reason: string;
}

export interface DatasetSummary {
  id: string;
  name: string;
  bytes: number;
  /** `json`: one array of records; `jsonl`: one record per line. */
  container: 'json' | 'jsonl';
  /** The records' format: one, `mixed`, or null when none could be read. */
  format: DatasetFormat | 'mixed' | null;
  formatCounts: Partial<Record<DatasetFormat, number>>;
  /** Rows in the table (records the file holds, valid or not, removed ones excluded). */
  rows: number;
  /** Records that can be trained on. */
  valid: number;
  /** Every problem (rows and file), in file order; at most MAX_PROBLEMS of them. */
  problems: ProblemView[];
  problemCount: number;
  /** Rows changed (or removed) in the app. */
  edited: number;
  /**
   * What kind of data the file holds, as the reader of each record found it: `sft` (alpaca, ShareGPT, OpenAI),
   * `preference` (prompt, chosen, rejected), `kto` or `text` (pre-training text; both read, not trained in Graft),
   * `mixed`, or null when no record was recognised.
   */
  kind: RecordKind | 'mixed' | null;
  /** Usable records of each kind. */
  kindCounts: Partial<Record<RecordKind, number>>;
  /** Usable records per task, for multi-task files (records with a `task`); empty otherwise. */
  tasks: Record<string, number>;
  /** What the reader tolerated in the file (comments, trailing commas), in sentences. */
  notes: string[];
  /** Fields of the records no reader recognised (at most 12), for the column mapping; empty when none. */
  unknownFields: string[];
  /** The column mapping applied to this file, if one was chosen. */
  mapping: ColumnMapping | null;
}

/** The kinds of record the Data screen tells apart. */
export type RecordKind = 'sft' | 'preference' | 'kto' | 'text';

/** LLaMA-Factory's dataset_info `columns` a field can be mapped to (text only). */
export type MappingColumn = 'prompt' | 'query' | 'response' | 'history' | 'messages' | 'system' | 'chosen' | 'rejected';

/**
 * A column mapping as dataset_info.json writes it: `columns` maps LLaMA-Factory's column names to the file's
 * fields (e.g. {prompt: "question", response: "answer"}); `ranking` for chosen / rejected columns.
 */
export interface ColumnMapping {
  formatting: 'alpaca' | 'sharegpt';
  ranking?: boolean;
  columns: Partial<Record<MappingColumn, string>>;
}

/** A row's editable fields, by format. */
export type RowFields =
  | { kind: 'alpaca'; instruction: string; input: string; output: string; system: string; history: number }
  | { kind: 'chat'; format: 'sharegpt' | 'openai'; system: string; turns: { role: string; content: string }[] }
  | { kind: 'json'; json: string };

/** An edit of a row: new fields of the same kind, or removing the row from the dataset. */
export type RowEdit = RowFields | { kind: 'removed' };

export interface RowView {
  /** 0-based position in the table. */
  row: number;
  source: RecordSource;
  /** "line 7" / "record 3" */
  where: string;
  format: DatasetFormat | null;
  fields: RowFields;
  /** Why the row cannot be trained on; undefined when it can. */
  problem?: string;
  edited: boolean;
  removed: boolean;
  /** False for rows too large to edit in the page (their text is cut). */
  editable: boolean;
  /** First user message and last answer, for the table. */
  prompt: string;
  answer: string;
  /** Turns (user + assistant messages) of the valid record. */
  turns: number;
  /** The kind of record its reader found (null: none recognised). */
  kind: RecordKind | null;
  /** A multi-task record's task. */
  task?: string;
  /** A preference pair's answers (the prompt is in `prompt`). */
  chosen?: string;
  rejected?: string;
}

export interface RowQuery {
  offset: number;
  limit: number;
  /** 'problems': only rows that cannot be trained on. */
  only?: 'all' | 'problems';
}

export interface RowPage {
  rows: RowView[];
  /** Rows matching the query. */
  total: number;
}

export interface RowUpdate {
  row: RowView;
  summary: DatasetSummary;
}

/** Which tokenizer, template and encoding options to use (the settings' names in brackets). */
export interface EncodingChoice {
  repo: string;
  revision?: string;
  /** `cutoff_len` */
  cutoffLen: number;
  /** `train_on_prompt` */
  trainOnPrompt?: boolean;
  /** `mask_history` */
  maskHistory?: boolean;
}

export interface DatasetTokenStats {
  repo: string;
  revision: string;
  cutoffLen: number;
  stats: TokenStats;
  /** Records that could not be encoded (left out of the stats). */
  problems: ProblemView[];
  templateOrigin: string;
  ms: number;
}

export interface TokenView {
  id: number;
  /** The text this token adds (a character split over several tokens shows on the last one). */
  text: string;
  /** The vocabulary entry, e.g. "Ġthe" or "<|im_start|>". */
  token: string;
  /** Its label is the token itself (trained), or -100 (masked: context only). */
  trained: boolean;
  /** Beyond cutoff_len: cut off, not seen in training at all. */
  cut: boolean;
  special: boolean;
}

export interface EncodedRowView {
  row: number;
  where: string;
  repo: string;
  cutoffLen: number;
  /** The conversation rendered with the chat template (what the tokens spell). */
  rendered: string;
  /** Every token of the rendered text, the cut ones included (at most MAX_TOKENS_SHOWN). */
  tokens: TokenView[];
  /** Tokens whose label is the token (within cutoff_len). */
  trained: number;
  /** Tokens labelled -100 (within cutoff_len). */
  masked: number;
  /** Tokens beyond cutoff_len. */
  cut: number;
  fullLength: number;
  /** Tokens not sent because there are more than MAX_TOKENS_SHOWN. */
  omitted: number;
  templateOrigin: string;
}

export interface ModelCard {
  repo: string;
  revision: string;
  /** Where it was read from: this device's store, or the hub (config and weight headers only). */
  from: 'device' | 'hub';
  info: ModelInfo;
  shape: ShapeNumbers;
  /**
   * The largest weight that must fit one storage binding, in bytes as f32 on the GPU. The embedding, lm_head
   * and GPT-2's position table are split by rows when too large (src/model/params.ts), so they are not it.
   */
  largestTensor: { name: string; bytes: number };
  /** Estimates for the asked sequence length and LoRA rank. */
  estimates: MemoryEstimates;
  /** Bytes of every file of the model as stored (device) or of the weight files (hub). */
  downloadBytes: number;
}

export interface SettingsCheck {
  ok: boolean;
  problems: SettingsProblem[];
  /** Accepted keys that change nothing in Graft. */
  notes: string[];
  /** Valid but probably unintended combinations. */
  warnings: string[];
  /** The job as LLaMA-Factory YAML ('' when not valid). */
  yaml: string;
  settings?: TrainSettings;
}

export interface DataApi {
  /** Reads a dataset from bytes (a dropped or picked file; pass the ArrayBuffer with comlink's transfer()) or text (pasted). */
  openDataset(input: ArrayBuffer | string, name: string): Promise<DatasetSummary>;
  /** Fetches and reads a dataset (the built-in samples); `url` must be absolute. */
  openDatasetUrl(url: string, name: string): Promise<DatasetSummary>;
  /** The dataset stored under `id` (after a reload), or undefined when it is gone. */
  restoreDataset(id: string): Promise<DatasetSummary | undefined>;
  datasetSummary(id: string): Promise<DatasetSummary>;
  datasetRows(id: string, query: RowQuery): Promise<RowPage>;
  /** Changes (or removes) one row and validates it again. */
  updateDatasetRow(id: string, row: number, edit: RowEdit): Promise<RowUpdate>;
  /**
   * Reads the dataset's records through a column mapping (null: as they are), checked as a dataset_info.json
   * entry; remembered with the file on this device.
   */
  setDatasetMapping(id: string, mapping: ColumnMapping | null): Promise<DatasetSummary>;
  /** The dataset with its edits as JSON Lines (valid and invalid rows, removed ones left out). */
  datasetJsonl(id: string): Promise<string>;
  /** Token statistics with a stored model's tokenizer and chat template. */
  datasetTokenStats(id: string, encoding: EncodingChoice): Promise<DatasetTokenStats>;
  /** One row rendered and tokenized, with its labels. Throws EncodeError-like WorkerError when it cannot be encoded. */
  encodeDatasetRow(id: string, row: number, encoding: EncodingChoice): Promise<EncodedRowView>;
  /** Describes a stored model (`from: 'device'`) or one on the hub (config.json and weight headers only). */
  describeModelCard(repo: string, revision: string | undefined, options: { seqLen: number; loraRank: number; from: 'device' | 'hub' }): Promise<ModelCard>;
  /**
   * src/model/info.ts's estimateMemory, for models described by numbers (the built-in list); `defaultPrecision`:
   * how the checkpoint's weights are held by default ('16-bit' for BF16/F16 files).
   */
  estimateModelMemory(parameters: number, shape: ShapeNumbers, seqLen: number, loraRank: number, defaultPrecision?: PlanPrecision): Promise<MemoryEstimates>;
  /** Validates job settings (LLaMA-Factory names) and writes the job YAML; problems are returned, not thrown. */
  checkSettings(input: Record<string, unknown>): Promise<SettingsCheck>;
}
