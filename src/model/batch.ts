// A training or evaluation batch on the GPU: token ids [B, T], their positions, and the key padding mask
// (and, for prompt tuning, the same batch widened by the virtual positions in front of each row).
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';

export interface Batch {
  B: number;
  T: number;
  /** Token ids on the CPU, [B·T] (the embedding gradient groups positions by id on the CPU). */
  idsCpu: Int32Array;
  /** Positions on the CPU, [B·T] (GPT-2's learned position embedding gradient groups by position). */
  positionsCpu: Int32Array;
  ids: Tensor; // i32 [B·T]
  positions: Tensor; // i32 [B·T]
  /** i32 [B·T], 1 for real tokens and 0 for padding; null when nothing is padded. */
  keyMask: Tensor | null;
  /** The key mask on the CPU, [B·T] (null like keyMask). */
  keyMaskCpu: Int32Array | null;
}

/**
 * Uploads a batch of token ids [B, T]; positions count from 0 in each row (as Hugging Face does without
 * explicit position_ids, so pad on the right); attentionMask 0 marks padding, which no query attends to.
 */
export function uploadBatch(ctx: GpuContext, ids: number[][], attentionMask?: number[][]): Batch {
  const B = ids.length;
  const T = ids[0]?.length ?? 0;
  if (B === 0 || T === 0 || ids.some((r) => r.length !== T)) throw new Error('uploadBatch: rows must be non-empty and of equal length');
  if (attentionMask && (attentionMask.length !== B || attentionMask.some((r) => r.length !== T))) {
    throw new Error(`uploadBatch: attentionMask must be [${B}, ${T}] like the ids`);
  }
  const idsCpu = Int32Array.from(ids.flat());
  const positionsCpu = new Int32Array(B * T).map((_, i) => i % T);
  const padded = attentionMask?.some((r) => r.some((m) => m === 0)) ?? false;
  const keyMaskCpu = padded ? Int32Array.from(attentionMask!.flat(), (m) => (m ? 1 : 0)) : null;
  return {
    B,
    T,
    idsCpu,
    positionsCpu,
    ids: ctx.upload([B * T], idsCpu, 'i32', { label: 'batch ids' }),
    positions: ctx.upload([B * T], positionsCpu, 'i32', { label: 'batch positions' }),
    keyMask: keyMaskCpu ? ctx.upload([B * T], keyMaskCpu, 'i32') : null,
    keyMaskCpu,
  };
}

/**
 * The batch widened by n virtual positions in front of every row (prompt tuning, see prompt-tuning.ts):
 * [B, n + T] with id 0 at the virtual positions (a placeholder: the prompt embeddings overwrite those rows),
 * positions 0 .. n + T − 1, and the key mask 1 there (a mask only when the batch has one). New tensors.
 */
export function prefixBatch(ctx: GpuContext, b: Batch, n: number): Batch {
  const T = n + b.T;
  const widen = (src: Int32Array, fill: number) =>
    Int32Array.from({ length: b.B * T }, (_, i) => (i % T < n ? fill : src[Math.floor(i / T) * b.T + (i % T) - n]!));
  const idsCpu = widen(b.idsCpu, 0);
  const positionsCpu = new Int32Array(b.B * T).map((_, i) => i % T);
  const keyMaskCpu = b.keyMaskCpu ? widen(b.keyMaskCpu, 1) : null;
  return {
    B: b.B,
    T,
    idsCpu,
    positionsCpu,
    ids: ctx.upload([b.B * T], idsCpu, 'i32', { label: 'batch ids after virtual tokens' }),
    positions: ctx.upload([b.B * T], positionsCpu, 'i32', { label: 'batch positions after virtual tokens' }),
    keyMask: keyMaskCpu ? ctx.upload([b.B * T], keyMaskCpu, 'i32') : null,
    keyMaskCpu,
  };
}

export function releaseBatch(b: Batch): void {
  b.ids.release();
  b.positions.release();
  b.keyMask?.release();
}
