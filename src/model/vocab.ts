// The vocabulary-sized layers — the token embedding and the lm_head — over parameters that may be split by
// rows into blocks (see params.ts): the embedding gathers from each block with ids shifted to it (ids outside a
// block read zeros there) and sums; the lm_head computes one block of logit columns per weight block.
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { addInPlace } from '../engine/ops/elementwise';
import { embeddingBackward, embeddingForward, type EmbeddingGradIndex, type EmbeddingScale } from '../engine/ops/embedding';
import { matmulNN, matmulNT, matmulTN } from '../engine/ops/matmul';
import { copyBlock } from '../engine/ops/copy-block';
import type { ParamTensor } from './params';
import { asTensor } from '../engine/weight';

/** Logit columns [vocabStart, vocabStart + size) of every token: logits [N, size]. */
export interface LogitsChunk {
  vocabStart: number;
  logits: Tensor;
}

/** out [N, C] = table[ids] for ids i32 [N] (idsCpu the same ids on the CPU), over the table's row blocks; `scaled`: Gemma's. */
export function embedForward(ctx: GpuContext, out: Tensor, ids: Tensor, idsCpu: Int32Array, table: ParamTensor, scaled?: EmbeddingScale): void {
  if (table.parts.length === 1) {
    embeddingForward(ctx, out, ids, asTensor(table.parts[0]!, table.name), scaled);
    return;
  }
  const tmp = ctx.empty(out.shape, 'f32', { label: 'embedding block rows' });
  table.parts.forEach((part, i) => {
    const r0 = table.rowStarts[i]!;
    const shifted = ctx.upload([idsCpu.length], idsCpu.map((id) => id - r0), 'i32', { label: 'ids shifted to an embedding block' });
    embeddingForward(ctx, i === 0 ? out : tmp, shifted, asTensor(part, table.name), scaled);
    if (i > 0) addInPlace(ctx, out, tmp);
    shifted.release();
  });
  tmp.release();
}

/**
 * The ids in rows [r0, r0 + rows) grouped by id (shifted by r0), as embeddingBackward reads them. The
 * positions tensor keeps one slot per token, as the kernel expects; only the first offsets[count] are used.
 */
function blockGradIndex(ctx: GpuContext, ids: Int32Array, r0: number, rows: number): EmbeddingGradIndex | null {
  const counts = new Map<number, number[]>();
  ids.forEach((id, t) => {
    const local = id - r0;
    if (local < 0 || local >= rows) return;
    let list = counts.get(local);
    if (!list) counts.set(local, (list = []));
    list.push(t);
  });
  if (counts.size === 0) return null;
  const unique = [...counts.keys()].sort((a, b) => a - b);
  const offsets = new Uint32Array(unique.length + 1);
  const positions = new Uint32Array(ids.length);
  let at = 0;
  unique.forEach((id, g) => {
    offsets[g] = at;
    for (const t of counts.get(id)!) positions[at++] = t;
  });
  offsets[unique.length] = at;
  return {
    uniqueIds: ctx.upload([unique.length], Int32Array.from(unique), 'i32', { label: 'embedding gradient: unique ids' }),
    offsets: ctx.upload([unique.length + 1], offsets, 'u32', { label: 'embedding gradient: offsets' }),
    positions: ctx.upload([ids.length], positions, 'u32', { label: 'embedding gradient: positions' }),
    count: unique.length,
  };
}

/** dTable blocks += the embedding gradient of dOut [N, C] (accumulates). */
export function embedBackward(ctx: GpuContext, dTable: Tensor[], dOut: Tensor, idsCpu: Int32Array, table: ParamTensor): void {
  table.parts.forEach((part, i) => {
    const index = blockGradIndex(ctx, idsCpu, table.rowStarts[i]!, part.shape[0]!);
    if (!index) return;
    embeddingBackward(ctx, dTable[i]!, dOut, index);
    index.uniqueIds.release();
    index.offsets.release();
    index.positions.release();
  });
}

/** logits = h [N, H] · Wᵀ, one chunk of columns per row block of W [V, H]. */
export function lmHeadForward(ctx: GpuContext, h: Tensor, w: ParamTensor): LogitsChunk[] {
  const N = h.size / h.shape[h.shape.length - 1]!;
  return w.parts.map((part, i) => {
    const logits = ctx.empty([N, part.shape[0]!], 'f32', { label: `logits [${N}×${part.shape[0]}]` });
    matmulNT(ctx, logits, h, part);
    return { vocabStart: w.rowStarts[i]!, logits };
  });
}

/** dh [N, H] += Σ_chunks dLogits·W, and dW blocks (when given) += dLogitsᵀ·h. */
export function lmHeadBackward(ctx: GpuContext, dh: Tensor, dW: Tensor[] | undefined, dLogits: readonly Tensor[], h: Tensor, w: ParamTensor): void {
  if (dLogits.length !== w.parts.length) {
    throw new Error(`lm_head backward: ${dLogits.length} blocks of dLogits for ${w.parts.length} blocks of the vocabulary`);
  }
  w.parts.forEach((part, i) => {
    const d = dLogits[i]!;
    if (dW) matmulTN(ctx, dW[i]!, d, h, { accumulate: true });
    matmulNN(ctx, dh, d, part, { accumulate: true });
  });
}

/** The chunks side by side: logits [N, V]. */
export function assembleLogits(ctx: GpuContext, chunks: readonly LogitsChunk[], V: number): Tensor {
  const N = chunks[0]!.logits.shape[0]!;
  const out = ctx.empty([N, V], 'f32', { label: `logits [${N}×${V}]` });
  for (const { vocabStart, logits } of chunks) {
    const C = logits.shape[1]!;
    copyBlock(ctx, out, logits, { rows: N, cols: C, srcStride: C, srcOffset: 0, dstStride: V, dstOffset: vocabStart });
  }
  return out;
}

/** dLogits [N, V] cut into the chunks' column blocks (new tensors, the caller releases them). */
export function splitLogits(ctx: GpuContext, dLogits: Tensor, chunks: readonly LogitsChunk[]): Tensor[] {
  const V = dLogits.shape[dLogits.shape.length - 1]!;
  const N = dLogits.size / V;
  return chunks.map(({ vocabStart, logits }) => {
    const C = logits.shape[1]!;
    const part = ctx.empty([N, C], 'f32', { label: 'dLogits block' });
    copyBlock(ctx, part, dLogits, { rows: N, cols: C, srcStride: V, srcOffset: vocabStart, dstStride: C, dstOffset: 0 });
    return part;
  });
}
