// Token embedding: forward gathers rows of the table; backward scatters dOut rows into the table gradient
// without float atomics, using an index (built on the CPU, which knows the batch's ids) that groups the
// token positions by id. The forward reads an f32 table or a frozen 16-bit one kept packed (bf16/f16, two a u32
// word: shaders/lib/weight_<format>.wgsl), and may scale the rows (Gemma's √hidden, rounded to the weights'
// dtype as transformers does).
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import forwardSrc from '../../../shaders/embedding_forward.wgsl?raw';
import backwardSrc from '../../../shaders/embedding_backward.wgsl?raw';

const WG = 256;

/** How the table is stored: f32, or 16-bit packed (read as array<u32>). */
type TableFormat = 'f32' | 'f16' | 'bf16';

function forwardSpec(format: TableFormat): KernelSpec {
  return {
    name: format === 'f32' ? 'embedding_forward' : `embedding_forward_${format}`,
    source: `${forwardSrc}\n{{include:weight_${format}}}\n`,
    bindings: [rw('out'), ro('ids', 'i32'), ro('table', format === 'f32' ? 'f32' : 'u32')],
    params: [
      ['n', 'u32'],
      ['C', 'u32'],
      ['V', 'u32'],
      ['scale', 'f32'],
    ],
    defines: { WG, W: 'table', ROUND: 0 },
  };
}

const FORWARD_SPECS: Record<TableFormat, KernelSpec> = { f32: forwardSpec('f32'), f16: forwardSpec('f16'), bf16: forwardSpec('bf16') };

/** Rows scaled after the gather (Gemma): out = round_to(table[id] · scale). */
export interface EmbeddingScale {
  /** The factor, already in the weights' dtype (e.g. √hidden rounded to bf16). */
  scale: number;
  /** Round each product to this dtype (as a 16-bit model computes it); absent: f32. */
  round?: 'bf16' | 'f16';
}

const backwardSpec: KernelSpec = {
  name: 'embedding_backward',
  source: backwardSrc,
  bindings: [rw('dTable'), ro('dOut'), ro('uniqueIds', 'i32'), ro('offsets', 'u32'), ro('positions', 'u32')],
  params: [
    ['count', 'u32'],
    ['C', 'u32'],
  ],
  defines: { WG: 64 },
};

/**
 * The ids of a batch grouped by value, on the GPU: unique id g is uniqueIds[g] (i32 [count], ascending), its
 * token positions are positions[offsets[g] .. offsets[g + 1]) (u32 [T], ascending within a group; offsets
 * u32 [count + 1]). Build one per batch with buildEmbeddingGradIndex, release it after the backward.
 */
export interface EmbeddingGradIndex {
  uniqueIds: Tensor;
  offsets: Tensor;
  positions: Tensor;
  count: number;
}

/** The table's [V, C] and checks that `rows` (out or dOut) is [..., C] with one row per token. */
function tableDims(op: string, table: Tensor, rows: Tensor, rowsName: string, tokens: number, packedOk = false): { V: number; C: number } {
  if (table.shape.length !== 2) throw new Error(`${op}: the table must be [V, C], got ${shapeText(table)}`);
  const [V, C] = table.shape as [number, number];
  const last = rows.shape[rows.shape.length - 1];
  if (last !== C || rows.size !== tokens * C) {
    throw new Error(`${op}: ${rowsName} ${shapeText(rows)} must be [${tokens}, ${C}] (one row of the table's width per token), table ${shapeText(table)}`);
  }
  const tableOk = table.dtype === 'f32' || (packedOk && (table.dtype === 'bf16' || table.dtype === 'f16'));
  if (!tableOk || rows.dtype !== 'f32') throw new Error(`${op}: ${rowsName} must be f32 and the table ${packedOk ? 'f32, bf16 or f16' : 'f32'}, got ${rows.dtype} and ${table.dtype}`);
  return { V, C };
}

/**
 * out[T, C] = table[ids[t], :] for ids i32 [T] (T = B·S flattened; out may be [B, S, C]), table [V, C] (f32, or
 * bf16/f16 kept packed). With `scaled`, out = round_to(table[ids[t], :] · scale) (see EmbeddingScale).
 * The GPU cannot report a bad id: a row whose id is outside [0, V) is written as zeros. The ids are checked
 * on the CPU by buildEmbeddingGradIndex (and checkEmbeddingIds), which see them.
 */
export function embeddingForward(ctx: GpuContext, out: Tensor, ids: Tensor, table: Tensor, scaled?: EmbeddingScale): void {
  if (ids.dtype !== 'i32') throw new Error(`embeddingForward: ids must be i32, got ${ids.dtype}`);
  const { V, C } = tableDims('embeddingForward', table, out, 'out', ids.size, true);
  const n = out.size;
  const scale = scaled?.scale ?? 1;
  const ROUND = scaled?.round === 'bf16' ? 1 : scaled?.round === 'f16' ? 2 : 0;
  const spec = FORWARD_SPECS[table.dtype as TableFormat];
  ctx.dispatch(ctx.kernel(spec, { ROUND }), { out, ids, table }, { n, C, V, scale }, grid1d(n, WG));
}

/** Throws a clear Error when an id is not an integer in [0, vocabSize). */
export function checkEmbeddingIds(ids: ArrayLike<number>, vocabSize: number): void {
  if (!Number.isInteger(vocabSize) || vocabSize <= 0) throw new Error(`Embedding: vocabulary size ${vocabSize} is not a positive integer`);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Error(
        `Embedding: token id ${id} at position ${t} is outside the vocabulary [0, ${vocabSize}). The tokenizer does not match the model, or the data was tokenized for another model; re-tokenize with this model's tokenizer.`,
      );
    }
  }
}

/**
 * Groups the positions of `ids` (the batch's ids on the CPU, [T]) by id and uploads the grouping.
 * Throws for ids outside [0, vocabSize).
 */
export function buildEmbeddingGradIndex(ctx: GpuContext, ids: Int32Array, vocabSize: number): EmbeddingGradIndex {
  checkEmbeddingIds(ids, vocabSize);
  const T = ids.length;
  // Counting sort by id: stable, so positions are ascending within each group.
  const counts = new Uint32Array(vocabSize);
  for (let t = 0; t < T; t++) counts[ids[t]!]!++;
  let count = 0;
  for (let v = 0; v < vocabSize; v++) if (counts[v]! > 0) count++;
  const uniqueIds = new Int32Array(count);
  const offsets = new Uint32Array(count + 1);
  const start = new Uint32Array(vocabSize);
  let g = 0;
  let at = 0;
  for (let v = 0; v < vocabSize; v++) {
    const c = counts[v]!;
    if (c === 0) continue;
    uniqueIds[g] = v;
    offsets[g] = at;
    start[v] = at;
    at += c;
    g++;
  }
  offsets[count] = at;
  const positions = new Uint32Array(T);
  for (let t = 0; t < T; t++) positions[start[ids[t]!]!++] = t;
  return {
    uniqueIds: ctx.upload([count], uniqueIds, 'i32', { label: 'embedding gradient: unique ids' }),
    offsets: ctx.upload([count + 1], offsets, 'u32', { label: 'embedding gradient: offsets' }),
    positions: ctx.upload([T], positions, 'u32', { label: 'embedding gradient: positions' }),
    count,
  };
}

export function releaseEmbeddingGradIndex(index: EmbeddingGradIndex): void {
  index.uniqueIds.release();
  index.offsets.release();
  index.positions.release();
}

/** dTable[V, C] += Σ over positions t with ids[t] = v of dOut[t, :] (accumulates; deterministic). dOut [T, C]. */
export function embeddingBackward(ctx: GpuContext, dTable: Tensor, dOut: Tensor, index: EmbeddingGradIndex): void {
  const T = index.positions.size;
  const { C } = tableDims('embeddingBackward', dTable, dOut, 'dOut', T);
  if (index.uniqueIds.size !== index.count || index.offsets.size !== index.count + 1) {
    throw new Error(`embeddingBackward: the index is inconsistent (count ${index.count}, ${index.uniqueIds.size} unique ids, ${index.offsets.size} offsets)`);
  }
  if (index.count === 0) return;
  // One workgroup per unique id; its width follows C so that narrow tables leave few invocations idle.
  const wg = C >= 256 ? 256 : C >= 128 ? 128 : C >= 64 ? 64 : 32;
  const { uniqueIds, offsets, positions } = index;
  ctx.dispatch(
    ctx.kernel(backwardSpec, { WG: wg }),
    { dTable, dOut, uniqueIds, offsets, positions },
    { count: index.count, C },
    grid1d(index.count, 1),
  );
}
