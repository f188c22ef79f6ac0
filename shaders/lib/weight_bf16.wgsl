// Reading element i of a frozen weight {{W}} stored as bfloat16, two per u32 word (element 2k in the low half) (see src/engine/quantize.ts), for the kernels that
// read weights (the matmuls' operand b, the embedding gather): `wAt(i)` is the f32 value the kernel computes with.
// A bfloat16 is the top half of an f32: placing its 16 bits there widens it exactly.
fn wAt(i: u32) -> f32 {
  let word = {{W}}[i >> 1u];
  return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (i & 1u) != 0u));
}
