// Reading element i of a frozen weight {{W}} stored as Graft's blockwise int8 (see src/engine/quantize.ts), for the kernels that
// read weights (the matmuls' operand b, the embedding gather): `wAt(i)` is the f32 value the kernel computes with.
// One signed byte a value, bytes little-endian in u32 words; one scale (absmax / 127) per block of 64 values.
fn wAt(i: u32) -> f32 {
  let q = bitcast<i32>({{W}}[i >> 2u] << (24u - 8u * (i & 3u))) >> 24u;
  return f32(q) * {{W}}_scales[i >> 6u];
}

// Elements i .. i + 3 (i a multiple of 4): one word, one scale (a block of 64 holds all four).
fn wQuad(i: u32) -> vec4<f32> {
  let w = {{W}}[i >> 2u];
  let q = bitcast<vec4<i32>>(vec4(w << 24u, w << 16u, w << 8u, w)) >> vec4(24u);
  return vec4<f32>(q) * {{W}}_scales[i >> 6u];
}
