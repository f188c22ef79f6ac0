// Parquet dataset files → the same records, conversations and problems as a JSON file (read with hyparquet in the
// browser worker too; codecs and rules: docs/hub.md, "Datasets from the hub").
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { decompressSync } from 'fflate';
import { normaliseRecord } from './normalize';
import type { ParsedDataset, ParseOptions } from './parse';
import type { Conversation, DatasetFormat, DatasetProblem } from './types';

const isParquet = (b: Uint8Array) =>
  b.length >= 12 && b[0] === 0x50 && b[1] === 0x41 && b[2] === 0x52 && b[3] === 0x31 && b[b.length - 4] === 0x50 && b[b.length - 3] === 0x41 && b[b.length - 2] === 0x52 && b[b.length - 1] === 0x31;

/** Turns hyparquet's values into JSON-like ones: BigInt → number (or a decimal string past 2^53), Date → ISO text. */
export function plainValue(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(plainValue);
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number | bigint>, plainValue);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plainValue(x);
    return out;
  }
  return v;
}

/** Why a Parquet file could not be read, for the person who has it. */
function readFailure(e: unknown, fileName: string): string {
  const msg = e instanceof Error ? e.message : String(e);
  const codec = /unsupported compression codec: (\w+)/.exec(msg);
  if (codec) {
    return `${fileName} is compressed with ${codec[1]}, which Graft cannot read yet (it reads uncompressed, SNAPPY and GZIP Parquet); save it with SNAPPY compression (pyarrow's default) or as JSON Lines`;
  }
  return `${fileName} could not be read as Parquet: ${msg.replace(/^parquet /, '')}`;
}

/** The rows of a Parquet file as plain objects. Throws on a file hyparquet cannot read (see parseParquetDataset). */
export async function readParquetRows(bytes: Uint8Array): Promise<Record<string, unknown>[]> {
  const file = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : (bytes.slice().buffer as ArrayBuffer);
  const metadata = parquetMetadata(file);
  const rows = await parquetReadObjects({ file, metadata, compressors: { GZIP: (input: Uint8Array) => decompressSync(input) } });
  return rows.map((r) => plainValue(r) as Record<string, unknown>);
}

export interface RowsOptions {
  /** The records' format; detected per row when left out. */
  format?: DatasetFormat;
  /** Added to the row indices in sources and problems (rows of a later file of the same split). Default 0. */
  indexOffset?: number;
}

/**
 * Rows (objects from Parquet, or any list of records) → a ParsedDataset, through the same normalisation and
 * problem reporting as JSON files. Positions are row indices (0-based).
 */
export function recordsFromRows(rows: readonly unknown[], options: RowsOptions = {}): ParsedDataset {
  const records: Conversation[] = [];
  const problems: DatasetProblem[] = [];
  const counts: Partial<Record<DatasetFormat, number>> = {};
  const offset = options.indexOffset ?? 0;
  rows.forEach((row, i) => {
    const index = offset + i;
    const r = normaliseRecord(row, options.format);
    if (r.ok) {
      records.push({ ...r.conversation, source: { index } });
      counts[r.format] = (counts[r.format] ?? 0) + 1;
    } else {
      problems.push({ index, reason: r.reason });
    }
  });
  const kinds = Object.keys(counts) as DatasetFormat[];
  const format = kinds.length === 1 ? kinds[0]! : kinds.length > 1 ? 'mixed' : (options.format ?? null);
  return { records, problems, format, formatCounts: counts, container: 'json', notes: [] };
}

/**
 * A Parquet dataset file → records and problems. `fileName` appears in messages about the file as a whole.
 * `container` is reported as 'json' (one list of records), since rows have no line numbers.
 */
export async function parseParquetDataset(bytes: Uint8Array | ArrayBuffer, fileName: string, options: ParseOptions & Pick<RowsOptions, 'indexOffset'> = {}): Promise<ParsedDataset> {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const fail = (reason: string): ParsedDataset => ({ records: [], problems: [{ reason }], format: options.format ?? null, formatCounts: {}, container: 'json', notes: [] });
  if (!isParquet(b)) {
    return fail(`${fileName} is not a Parquet file (it does not start and end with "PAR1"); was the download cut short, or is it JSON with a .parquet name?`);
  }
  let rows: Record<string, unknown>[];
  try {
    rows = await readParquetRows(b);
  } catch (e) {
    return fail(readFailure(e, fileName));
  }
  if (rows.length === 0) return fail(`${fileName} holds no rows`);
  const rowOptions: RowsOptions = {};
  if (options.format !== undefined) rowOptions.format = options.format;
  if (options.indexOffset !== undefined) rowOptions.indexOffset = options.indexOffset;
  return recordsFromRows(rows, rowOptions);
}
