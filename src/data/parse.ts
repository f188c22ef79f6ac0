// Reading an SFT dataset file: JSON (one array of records) or JSON Lines (one record per line), as text or bytes
// (the container: json-file.ts). Every record that cannot be used is skipped and reported with where it is (line
// for JSON Lines, 1-based; index for a JSON array, 0-based) and why; the rest is read. Nothing in a file makes this
// throw.
import { readJsonRecords } from './json-file';
import { normaliseRecord } from './normalize';
import type { Conversation, DatasetFormat, DatasetProblem } from './types';

export { DEFAULT_MAX_RECORD_BYTES, firstInvalidUtf8 } from './json-file';

export interface ParseOptions {
  /** The records' format; when left out it is detected per record (files may mix ShareGPT and OpenAI). */
  format?: DatasetFormat;
  /** Longest JSON Lines record (line) accepted, in bytes. Default 2 MiB. A JSON list has no such limit. */
  maxRecordBytes?: number;
  /**
   * Rewrites each raw record before it is read (dataset_info.json's columns and tags, or a column mapping the
   * person chose): see dataset-info.ts. Returns the record in one of the formats Graft reads.
   */
  mapRecord?: (record: unknown) => unknown;
}

export interface ParsedDataset {
  records: Conversation[];
  problems: DatasetProblem[];
  /** The records' format: one of them, `mixed` when several occur, null when no record could be read. */
  format: DatasetFormat | 'mixed' | null;
  /** How many records of each format were read. */
  formatCounts: Partial<Record<DatasetFormat, number>>;
  /** `json`: one array of records; `jsonl`: one record per line. Detected from the content. */
  container: 'json' | 'jsonl';
  /** What was tolerated in the file (comments, trailing commas), in a sentence; parseDatasetText always sets it. */
  notes?: string[];
}

/**
 * Reads a dataset file's records. `input`: the text, or the raw bytes (then invalid UTF-8 is reported by line).
 * `fileName` appears in messages about the file as a whole.
 */
export function parseDatasetText(input: string | Uint8Array | ArrayBuffer, fileName: string, options: ParseOptions = {}): ParsedDataset {
  const raw = readJsonRecords(input, fileName, options.maxRecordBytes !== undefined ? { maxRecordBytes: options.maxRecordBytes } : {});
  const records: Conversation[] = [];
  const problems = raw.problems;
  const counts: Partial<Record<DatasetFormat, number>> = {};
  for (const { value, where } of raw.items) {
    const r = normaliseRecord(options.mapRecord ? options.mapRecord(value) : value, options.format);
    if (r.ok) {
      records.push({ ...r.conversation, source: where });
      counts[r.format] = (counts[r.format] ?? 0) + 1;
    } else problems.push({ ...where, reason: r.reason });
  }
  const kinds = Object.keys(counts) as DatasetFormat[];
  const format = kinds.length === 1 ? kinds[0]! : kinds.length > 1 ? 'mixed' : (options.format ?? null);
  problems.sort((a, b) => (a.line ?? a.index ?? 0) - (b.line ?? b.index ?? 0));
  return { records, problems, format, formatCounts: counts, container: raw.container, notes: raw.notes };
}
