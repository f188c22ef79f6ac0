// Reading element i of a frozen weight {{W}} stored as bfloat16, two per u32 word (element 2k in the low half) (see src/engine/quantize.ts), for the kernels that
// read weights (the matmuls' operand b, the embedding gather): `wAt(i)` is the f32 value the kernel computes with.
// A bfloat16 is the top half of an f32: placing its 16 bits there widens it exactly.
fn wAt(i: u32) -> f32 {
  let word = {{W}}[i >> 1u];
  return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (i & 1u) != 0u));
}

// Elements i .. i + 3 (i a multiple of 4): two words, no selects.
fn wQuad(i: u32) -> vec4<f32> {
  let w = i >> 1u;
  let a = {{W}}[w];
  let b = {{W}}[w + 1u];
  return bitcast<vec4<f32>>(vec4(a << 16u, a & 0xffff0000u, b << 16u, b & 0xffff0000u));
}
