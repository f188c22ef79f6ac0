// Float64 reference for the strided block copy.
import type { BlockLayout } from '../ops/copy-block';

/** A copy of dst with dst[dstOffset + r·dstStride + c] (+)= src[srcOffset + r·srcStride + c]. */
export function copyBlockRef(dst: Float64Array, src: Float64Array, b: BlockLayout): Float64Array {
  const out = Float64Array.from(dst);
  for (let r = 0; r < b.rows; r++) {
    for (let c = 0; c < b.cols; c++) {
      const v = src[b.srcOffset + r * b.srcStride + c]!;
      const d = b.dstOffset + r * b.dstStride + c;
      out[d] = b.accumulate ? out[d]! + v : v;
    }
  }
  return out;
}
