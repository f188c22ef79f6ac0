// Reading element i of a frozen weight {{W}} stored as IEEE halves, two per u32 word (element 2k in the low half) (see src/engine/quantize.ts), for the kernels that
// read weights (the matmuls' operand b, the embedding gather): `wAt(i)` is the f32 value the kernel computes with.
// unpack2x16float widens exactly (core WGSL, no shader-f16 needed).
fn wAt(i: u32) -> f32 {
  let v = unpack2x16float({{W}}[i >> 1u]);
  return select(v.x, v.y, (i & 1u) != 0u);
}

// Elements i .. i + 3 (i a multiple of 4): two words.
fn wQuad(i: u32) -> vec4<f32> {
  let w = i >> 1u;
  return vec4(unpack2x16float({{W}}[w]), unpack2x16float({{W}}[w + 1u]));
}
