// Reading element i of a frozen weight {{W}} stored as NF4 codes (bitsandbytes) (see src/engine/quantize.ts), for the kernels that
// read weights (the matmuls' operand b, the embedding gather): `wAt(i)` is the f32 value the kernel computes with.
// The level of a 4-bit code: two selects of vec4 and two of f32 (a dynamically indexed private array is a
// per-lane loop on SwiftShader; these are vector operations). The levels are bit patterns: exactly the f32
// values src/engine/quantize.ts (and bitsandbytes) use.
const L0 = vec4<f32>(bitcast<f32>(0xbf800000u), bitcast<f32>(0xbf3239b1u), bitcast<f32>(0xbf066b30u), bitcast<f32>(0xbeca32a0u));
const L1 = vec4<f32>(bitcast<f32>(0xbe91a24du), bitcast<f32>(0xbe3d353fu), bitcast<f32>(0xbdba7871u), bitcast<f32>(0x00000000u));
const L2 = vec4<f32>(bitcast<f32>(0x3da2faffu), bitcast<f32>(0x3e24cae3u), bitcast<f32>(0x3e7c04ddu), bitcast<f32>(0x3ead033au));
const L3 = vec4<f32>(bitcast<f32>(0x3ee1a4b8u), bitcast<f32>(0x3f1007abu), bitcast<f32>(0x3f3913b3u), bitcast<f32>(0x3f800000u));

fn level4(c: u32) -> f32 {
  let hi = (c & 4u) != 0u;
  let v = select(select(L0, L1, hi), select(L2, L3, hi), (c & 8u) != 0u);
  let odd = (c & 1u) != 0u;
  return select(select(v.x, v.y, odd), select(v.z, v.w, odd), (c & 2u) != 0u);
}

// Two codes a byte, the first value in the high nibble (bitsandbytes' order), bytes little-endian in u32 words;
// one scale (absmax) per block of 64 values.
fn wAt(i: u32) -> f32 {
  let shift = 8u * ((i >> 1u) & 3u) + select(4u, 0u, (i & 1u) != 0u);
  return level4(({{W}}[i >> 3u] >> shift) & 15u) * {{W}}_scales[i >> 6u];
}

// Elements i .. i + 3 (i a multiple of 4): half a word (bytes (i/2) and (i/2) + 1, high nibble first), one scale.
fn wQuad(i: u32) -> vec4<f32> {
  let h = ({{W}}[i >> 3u] >> (8u * ((i >> 1u) & 2u))) & 0xffffu;
  return vec4(level4((h >> 4u) & 15u), level4(h & 15u), level4((h >> 12u) & 15u), level4((h >> 8u) & 15u)) * {{W}}_scales[i >> 6u];
}
