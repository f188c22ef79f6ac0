// References for unpacking 16-bit floats: the CPU conversions of src/engine/half.ts applied to the halves of
// little-endian u32 words.
import { bf16BitsToF32, f16BitsToF32 } from '../half';

/** The 16-bit values of `n` elements packed two per word (element 2k in the low half of word k). */
export function halvesOf(packed: ArrayLike<number>, n: number): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = (packed[i >> 1]! >>> ((i & 1) * 16)) & 0xffff;
  return out;
}

/** Packs 16-bit values two per u32 word (little-endian), as the bytes of a safetensors blob read as u32. */
export function packHalves(halves: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(Math.ceil(halves.length / 2));
  for (let i = 0; i < halves.length; i++) out[i >> 1]! |= (halves[i]! & 0xffff) << ((i & 1) * 16);
  return out;
}

export function unpackF16Ref(packed: ArrayLike<number>, n: number): Float64Array {
  return Float64Array.from(halvesOf(packed, n), f16BitsToF32);
}

export function unpackBf16Ref(packed: ArrayLike<number>, n: number): Float64Array {
  return Float64Array.from(halvesOf(packed, n), bf16BitsToF32);
}
