// Strided copies between f32 tensors: a block of rows × cols values read with one row stride and offset and
// written (or added) with another. The model uses it to split GPT-2's fused q·k·v columns (and to add their
// gradients back), to place vocabulary blocks of logits side by side, to take the last row of a sequence,
// and to append keys and values to a KV cache at a row offset.
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import copySrc from '../../../shaders/copy_block.wgsl?raw';

const WG = 256;

const copySpec: KernelSpec = {
  name: 'copy_block',
  source: copySrc,
  bindings: [rw('dst'), ro('src')],
  params: [
    ['rows', 'u32'],
    ['cols', 'u32'],
    ['srcStride', 'u32'],
    ['srcOffset', 'u32'],
    ['dstStride', 'u32'],
    ['dstOffset', 'u32'],
    ['accumulate', 'u32'],
  ],
  defines: { WG },
};

export interface BlockLayout {
  rows: number;
  cols: number;
  /** Elements between the starts of consecutive rows, and of the first element, in src and in dst. */
  srcStride: number;
  srcOffset: number;
  dstStride: number;
  dstOffset: number;
  /** dst += src instead of dst = src. */
  accumulate?: boolean;
}


/** The element index one past the last one a block touches. */
function extent(rows: number, cols: number, stride: number, offset: number): number {
  return rows === 0 || cols === 0 ? 0 : offset + (rows - 1) * stride + cols;
}

/** dst[dstOffset + r·dstStride + c] (+)= src[srcOffset + r·srcStride + c] for r < rows, c < cols. */
export function copyBlock(ctx: GpuContext, dst: Tensor, src: Tensor, b: BlockLayout): void {
  const op = 'copyBlock';
  if (dst.dtype !== 'f32' || src.dtype !== 'f32') throw new Error(`${op}: dst and src must be f32 (got ${dst.dtype}, ${src.dtype})`);
  if (dst.buffer === src.buffer) throw new Error(`${op}: dst and src must be different tensors`);
  for (const [k, v] of Object.entries(b)) {
    if (typeof v === 'number' && (!Number.isInteger(v) || v < 0)) throw new Error(`${op}: ${k} = ${v} must be an integer ≥ 0`);
  }
  const srcEnd = extent(b.rows, b.cols, b.srcStride, b.srcOffset);
  const dstEnd = extent(b.rows, b.cols, b.dstStride, b.dstOffset);
  if (srcEnd > src.size || dstEnd > dst.size) {
    throw new Error(
      `${op}: a block of ${b.rows}×${b.cols} reads src ${shapeText(src, '×')} up to element ${srcEnd} and writes dst ${shapeText(dst, '×')} up to ${dstEnd}, past their ends`,
    );
  }
  if (b.cols > Math.min(b.srcStride, b.dstStride) && b.rows > 1) {
    throw new Error(`${op}: rows of ${b.cols} overlap with strides ${b.srcStride} (src) and ${b.dstStride} (dst)`);
  }
  const n = b.rows * b.cols;
  if (n === 0) return;
  const { rows, cols, srcStride, srcOffset, dstStride, dstOffset } = b;
  ctx.dispatch(
    ctx.kernel(copySpec),
    { dst, src },
    { rows, cols, srcStride, srcOffset, dstStride, dstOffset, accumulate: b.accumulate ? 1 : 0 },
    grid1d(n, WG, ctx.limits.maxComputeWorkgroupsPerDimension),
  );
}

/** Rows and last dim of a tensor seen as a matrix [..., C]. */
function matrix(t: Tensor): { rows: number; C: number } {
  const C = t.shape[t.shape.length - 1] ?? 1;
  return { rows: C === 0 ? 0 : t.size / C, C };
}

/** out[rows, w] = x[rows, c0 : c0 + w] (columns of x [rows, C]; leading dims are rows). */
export function sliceColumnsForward(ctx: GpuContext, out: Tensor, x: Tensor, c0: number): void {
  const o = matrix(out);
  const i = matrix(x);
  if (o.rows !== i.rows || c0 + o.C > i.C) {
    throw new Error(`sliceColumnsForward: out ${shapeText(out, '×')} is not columns ${c0}..${c0 + o.C} of x ${shapeText(x, '×')}`);
  }
  copyBlock(ctx, out, x, { rows: o.rows, cols: o.C, srcStride: i.C, srcOffset: c0, dstStride: o.C, dstOffset: 0 });
}

/** dx[rows, c0 : c0 + w] += dOut[rows, w] (accumulates; the other columns of dx are untouched). */
export function sliceColumnsBackward(ctx: GpuContext, dx: Tensor, dOut: Tensor, c0: number): void {
  const o = matrix(dOut);
  const i = matrix(dx);
  if (o.rows !== i.rows || c0 + o.C > i.C) {
    throw new Error(`sliceColumnsBackward: dOut ${shapeText(dOut, '×')} is not columns ${c0}..${c0 + o.C} of dx ${shapeText(dx, '×')}`);
  }
  copyBlock(ctx, dx, dOut, { rows: o.rows, cols: o.C, srcStride: o.C, srcOffset: 0, dstStride: i.C, dstOffset: c0, accumulate: true });
}

/** Elements per row of a tensor [R, ...]: the product of the dims after the first. */
function rowWidth(t: Tensor): number {
  return t.shape.slice(1).reduce((a, b) => a * b, 1);
}

/** dst[row0 + i, ...] = src[i, ...] for the n rows of src [n, ...]; dst is [R, ...] with rows of the same width. */
export function writeRows(ctx: GpuContext, dst: Tensor, src: Tensor, row0: number): void {
  const width = rowWidth(dst);
  if (src.shape.length < 1 || dst.shape.length < 1 || rowWidth(src) !== width) {
    throw new Error(`writeRows: rows of src ${shapeText(src, '×')} and dst ${shapeText(dst, '×')} differ in width`);
  }
  const n = src.shape[0]!;
  copyBlock(ctx, dst, src, { rows: n, cols: width, srcStride: width, srcOffset: 0, dstStride: width, dstOffset: row0 * width });
}
