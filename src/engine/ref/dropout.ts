// Float64 reference for dropout, and the CPU copy of its random generator.
//
// The keep decision for element i depends only on (seed, offset + i): it is the first word of
// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11; the generator of
// cuRAND and PyTorch's CUDA dropout) with
//   counter = (lo32(offset + i), hi32(offset + i), 0, 0),  key = (lo32(seed), hi32(seed)),
// and element i is kept when that word is ≥ threshold = floor(p · 2³²) (p = 1 drops everything).
// The shader (shaders/lib/philox.wgsl) computes the same words with the same 32-bit integer operations.
import { dropoutParams } from '../dropout-params';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** The high 32 bits of the 64-bit product a·b (a, b u32), from 16-bit halves as the shader does it. */
export function mulhi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
}

/** Philox-4x32-10 of a 128-bit counter and a 64-bit key; returns the 4 output words. */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
): [number, number, number, number] {
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi32(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  return [c0, c1, c2, c3];
}


/** mask[i] = 1 when element i is kept by dropout with (p, seed, offset), else 0; n elements. */
export function dropoutMaskRef(n: number, p: number, seed: number, offset: number): Uint8Array {
  const { threshold, seedLo, seedHi } = dropoutParams('dropoutMaskRef', p, seed, offset);
  const mask = new Uint8Array(n);
  if (p >= 1) return mask;
  for (let i = 0; i < n; i++) {
    const c = offset + i; // < 2^53 + n: exact for offsets well below 2^53
    const [r] = philox4x32(c % 2 ** 32, Math.floor(c / 2 ** 32), 0, 0, seedLo, seedHi);
    mask[i] = r >= threshold ? 1 : 0;
  }
  return mask;
}

/** out = mask · x / (1 − p). */
export function dropoutForwardRef(x: Float64Array, mask: Uint8Array, p: number): Float64Array {
  const s = p >= 1 ? 0 : 1 / (1 - p);
  return x.map((v, i) => (mask[i] ? v * s : 0));
}

/** dx = mask · dOut / (1 − p). */
export function dropoutBackwardRef(dOut: Float64Array, mask: Uint8Array, p: number): Float64Array {
  return dropoutForwardRef(dOut, mask, p);
}
