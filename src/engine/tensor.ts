// A tensor is a GPU buffer with a shape and an element type. It owns its buffer until released.
// 'f16' and 'bf16' tensors hold 16-bit values, two per 4-byte word (element 2k in the low half of word k, as
// the little-endian bytes of a safetensors file lay them out): kernels that read frozen weights take them as
// `array<u32>` and unpack each value (shaders/lib/weight_*.wgsl), or, for f16 on a device with shader-f16,
// as `array<f16>`.

export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u32';

export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, i32: 4, u32: 4 };

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`Invalid tensor dimension ${d} in [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

/** A tensor's shape as error messages write it: `[2, 3]`, or `[2×3]` with sep '×'. */
export function shapeText(t: { readonly shape: readonly number[] }, sep: ', ' | '×' = ', '): string {
  return `[${t.shape.join(sep)}]`;
}

/** A tensor's shape and element type as error messages write them, `[2, 3] f32` (`null` for none). */
export function tensorText(t: { readonly shape: readonly number[]; readonly dtype: DType } | null): string {
  return t ? `${shapeText(t)} ${t.dtype}` : 'null';
}

/** What owns a tensor's buffer (the GpuContext): where the buffer goes when the tensor is released. */
export interface BufferOwner {
  releaseBuffer(buffer: GPUBuffer, pooled: boolean): void;
}

export class Tensor {
  private released = false;
  constructor(
    readonly ctx: BufferOwner,
    private readonly buf: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    /** Whether the buffer goes back to the context's pool on release. */
    readonly pooled: boolean,
  ) {}

  get buffer(): GPUBuffer {
    if (this.released) throw new Error('Use of a released tensor');
    return this.buf;
  }

  get size(): number {
    return numel(this.shape);
  }

  get byteLength(): number {
    return this.size * DTYPE_BYTES[this.dtype];
  }

  get isReleased(): boolean {
    return this.released;
  }

  /** Returns the buffer to the pool (or destroys it). Safe to call before queued work that uses it has run. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.ctx.releaseBuffer(this.buf, this.pooled);
  }

  /** The same buffer seen with another shape of equal element count. */
  view(shape: readonly number[]): Tensor {
    if (numel(shape) !== this.size) throw new Error(`Cannot view [${this.shape}] as [${shape}]`);
    return new TensorView(this, shape);
  }
}

/** A reshaped view; releasing a view does nothing, the base tensor owns the buffer. */
class TensorView extends Tensor {
  constructor(
    private readonly base: Tensor,
    shape: readonly number[],
  ) {
    super(base.ctx, base.buffer, shape, base.dtype, false);
  }
  override get buffer(): GPUBuffer {
    return this.base.buffer;
  }
  override release(): void {}
}
