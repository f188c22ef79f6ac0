// Incremental decoding against a KV cache (CausalLM.forwardCached, batch 1): the checks on a call, its inputs
// (a prompt adapter's virtual tokens first when the cache is empty, positions from the cache's length on), each
// layer's append of the new keys and values to the cache and its read of all of them for attention, and the
// last position, whose logits are the only ones read back.
import type { GpuContext } from '../engine/context';
import { copyBlock, writeRows } from '../engine/ops/copy-block';
import { checkEmbeddingIds } from '../engine/ops/embedding';
import type { Tensor } from '../engine/tensor';
import { GpuKvCache, type KvCache } from './kv-cache';

/** The cache as the GPU cache `owner` made; throws when another model made it or it was released. */
export function ownCache(cache: KvCache, owner: object): GpuKvCache {
  if (!(cache instanceof GpuKvCache) || cache.owner !== owner) throw new Error('forwardCached: the cache was made by another model');
  if (cache.isReleased) throw new Error('forwardCached: the cache was released');
  return cache;
}

/** One decode call's T = lead + ids.length positions: ids (0 at the `lead` virtual ones) and positions, on the CPU and the GPU. */
export interface DecodeInput {
  T: number;
  idsCpu: Int32Array;
  positionsCpu: Int32Array;
  /** i32 [T]; the caller releases it. */
  ids: Tensor;
  /** i32 [T]; the caller releases it. */
  positions: Tensor;
}

/** Checks that the cache has room for `lead` virtual tokens and `ids` and that the ids are in the vocabulary, then uploads them. */
export function decodeInput(ctx: GpuContext, ids: readonly number[], cache: GpuKvCache, lead: number, vocabSize: number): DecodeInput {
  const start = cache.length;
  const T = lead + ids.length;
  if (start + T > cache.maxTokens) {
    const virtual = lead ? ` (${lead} of them the prompt adapter's virtual tokens)` : '';
    throw new Error(`forwardCached: ${start} cached + ${T} new tokens${virtual} exceed the cache's ${cache.maxTokens}; create a larger cache`);
  }
  checkEmbeddingIds(ids, vocabSize);
  const idsCpu = Int32Array.from({ length: T }, (_, i) => (i < lead ? 0 : ids[i - lead]!));
  const positionsCpu = Int32Array.from({ length: T }, (_, i) => start + i);
  const idsT = ctx.upload([T], idsCpu, 'i32', { label: 'decode ids' });
  const positions = ctx.upload([T], positionsCpu, 'i32', { label: 'decode positions' });
  return { T, idsCpu, positionsCpu, ids: idsT, positions };
}

/**
 * Writes layer l's keys and values of T new positions (k, v [1, T, kv heads, head dim]) into the cache at rows
 * start .. start + T, and returns views of the layer's first start + T cached rows for attention to read.
 */
export function appendToCache(ctx: GpuContext, cache: GpuKvCache, l: number, k: Tensor, v: Tensor, start: number, T: number): { k: Tensor; v: Tensor } {
  writeRows(ctx, cache.k[l]!, k.view([T, cache.numKvHeads, cache.headDim]), start);
  writeRows(ctx, cache.v[l]!, v.view([T, cache.numKvHeads, cache.headDim]), start);
  return cache.layerView(l, start + T);
}

/** The last of the T rows of x [T, H], as a new tensor [1, H]. */
export function lastRow(ctx: GpuContext, x: Tensor, T: number, H: number): Tensor {
  const last = ctx.empty([1, H]);
  copyBlock(ctx, last, x, { rows: 1, cols: H, srcStride: H, srcOffset: (T - 1) * H, dstStride: H, dstOffset: 0 });
  return last;
}
