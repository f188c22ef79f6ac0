// The key/value cache of incremental decoding (batch 1): per layer, the rotated keys and the values of
// every position seen so far, [maxTokens, kv heads, head dim], filled from row 0. `length` counts the
// positions held; CausalLM.forwardCached appends to it.
import type { GpuContext } from '../engine/context';
import { Tensor } from '../engine/tensor';

export interface KvCache {
  readonly length: number;
  readonly maxTokens: number;
  /** Forgets every position (keeps the buffers). Call after switching adapters: cached keys depend on them. */
  reset(): void;
  release(): void;
}

/** A view of the first rows of a buffer owned by someone else; releasing it does nothing. */
class PrefixView extends Tensor {
  override release(): void {}
}

export class GpuKvCache implements KvCache {
  private len = 0;
  private released = false;
  readonly k: Tensor[];
  readonly v: Tensor[];

  constructor(
    readonly ctx: GpuContext,
    /** Identifies the model that made the cache, so another model cannot use it. */
    readonly owner: object,
    readonly maxTokens: number,
    readonly numLayers: number,
    readonly numKvHeads: number,
    readonly headDim: number,
  ) {
    if (!Number.isInteger(maxTokens) || maxTokens <= 0) throw new Error(`createKvCache: maxTokens ${maxTokens} must be a positive integer`);
    const shape = [maxTokens, numKvHeads, headDim];
    const make = (what: string, l: number): Tensor =>
      ctx.empty(shape, 'f32', { persistent: true, label: `KV cache ${what} of layer ${l} [${shape.join('×')}]` });
    this.k = Array.from({ length: numLayers }, (_, l) => make('keys', l));
    this.v = Array.from({ length: numLayers }, (_, l) => make('values', l));
  }

  get length(): number {
    return this.len;
  }

  get isReleased(): boolean {
    return this.released;
  }

  /** Marks `count` more positions as held (after their keys and values were written). */
  advance(count: number): void {
    this.len += count;
  }

  reset(): void {
    this.len = 0;
  }

  /** The keys and values of layer `l` for the first `rows` positions, as [1, rows, kv heads, head dim]. */
  layerView(l: number, rows: number): { k: Tensor; v: Tensor } {
    const shape = [1, rows, this.numKvHeads, this.headDim];
    return {
      k: new PrefixView(this.ctx, this.k[l]!.buffer, shape, 'f32', false),
      v: new PrefixView(this.ctx, this.v[l]!.buffer, shape, 'f32', false),
    };
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const t of [...this.k, ...this.v]) t.release();
  }
}
