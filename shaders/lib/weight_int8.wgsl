// Reading element i of a frozen weight {{W}} stored as Graft's blockwise int8 (see src/engine/quantize.ts), for the kernels that
// read weights (the matmuls' operand b, the embedding gather): `wAt(i)` is the f32 value the kernel computes with.
// One signed byte a value, bytes little-endian in u32 words; one scale (absmax / 127) per block of 64 values.
fn wAt(i: u32) -> f32 {
  let q = bitcast<i32>({{W}}[i >> 2u] << (24u - 8u * (i & 3u))) >> 24u;
  return f32(q) * {{W}}_scales[i >> 6u];
}
