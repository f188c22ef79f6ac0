// Frozen weights as the kernels read them: a plain Tensor (f32; f16 or bf16 packed two a u32 word), or a
// QuantizedTensor (NF4, FP4 or int8 codes packed in u32 words, with one f32 scale per block of 64 values; see
// quantize.ts). Kernels that read weights (the matmuls' operand b, the embedding gather) take any of them and
// unpack each value as they load it (shaders/lib/weight_<format>.wgsl): a dequantized or widened copy of a
// whole weight is never written.
import type { GpuContext } from './context';
import { dequantizeWeight, QUANT_BLOCK, type QuantFormat, type QuantizedWeight } from './quantize';
import { numel, shapeText, Tensor } from './tensor';

export type { QuantFormat } from './quantize';

/** How a weight is stored on the GPU. */
export type WeightFormat = 'f32' | 'f16' | 'bf16' | QuantFormat;

/** A weight of `shape` (row-major) held as packed codes and per-block scales. */
export class QuantizedTensor {
  constructor(
    readonly format: QuantFormat,
    readonly shape: readonly number[],
    /** u32 words: 8 codes each (nf4, fp4) or 4 (int8). */
    readonly data: Tensor,
    /** f32, one per block of 64 values. */
    readonly scales: Tensor,
  ) {}

  get size(): number {
    return numel(this.shape);
  }

  get byteLength(): number {
    return this.data.byteLength + this.scales.byteLength;
  }

  get isReleased(): boolean {
    return this.data.isReleased;
  }

  release(): void {
    this.data.release();
    this.scales.release();
  }
}

/** What a frozen weight may be on the GPU. */
export type WeightTensor = Tensor | QuantizedTensor;

export function isQuantized(w: WeightTensor): w is QuantizedTensor {
  return w instanceof QuantizedTensor;
}

export function weightFormatOf(w: WeightTensor): WeightFormat {
  if (w instanceof QuantizedTensor) return w.format;
  if (w.dtype === 'f32' || w.dtype === 'f16' || w.dtype === 'bf16') return w.dtype;
  throw new Error(`A weight must be f32, f16, bf16 or quantized; got a ${w.dtype} tensor ${shapeText(w)}`);
}

/** The weight as a plain Tensor, or an Error naming `what` needs one (a trainable parameter, say). */
export function asTensor(w: WeightTensor, what: string): Tensor {
  if (w instanceof QuantizedTensor) throw new Error(`${what}: the weight ${shapeText(w)} is ${w.format}-quantized; it needs an f32 tensor`);
  return w;
}

/** GPU bytes of a weight of n values stored as `format` (buffers rounded up to 16 bytes, as GpuContext allocates). */
export function weightBytes(n: number, format: WeightFormat): number {
  const r16 = (b: number) => Math.max(16, Math.ceil(b / 16) * 16);
  switch (format) {
    case 'f32':
      return r16(4 * n);
    case 'f16':
    case 'bf16':
      return r16(2 * n);
    case 'int8':
      return r16(Math.ceil(n / 4) * 4) + r16(4 * Math.ceil(n / QUANT_BLOCK));
    default:
      return r16(Math.ceil(n / 8) * 4) + r16(4 * Math.ceil(n / QUANT_BLOCK));
  }
}

/** Uploads a quantized weight (persistent: weights live as long as the model). */
export function uploadQuantized(ctx: GpuContext, shape: readonly number[], q: QuantizedWeight, label: string): QuantizedTensor {
  const data = ctx.upload([q.words.length], q.words, 'u32', { persistent: true, label: `${label} (${q.format} codes)` });
  const scales = ctx.upload([q.scales.length], q.scales, 'f32', { persistent: true, label: `${label} (${q.format} scales)` });
  return new QuantizedTensor(q.format, shape, data, scales);
}

/** The f32 values a weight computes with, read back (16-bit widened exactly; quantized dequantized). */
export async function readWeightF32(ctx: GpuContext, w: WeightTensor): Promise<Float32Array> {
  if (w instanceof QuantizedTensor) {
    const words = (await ctx.read(w.data)) as Uint32Array;
    const scales = await ctx.readF32(w.scales);
    return dequantizeWeight({ format: w.format, words, scales }, w.size);
  }
  return ctx.readF32(w);
}
