// Reading element i of a frozen weight {{W}} stored as f32 (or f16 where the device has shader-f16: the binding is then array<f16>) (see src/engine/quantize.ts), for the kernels that
// read weights (the matmuls' operand b, the embedding gather): `wAt(i)` is the f32 value the kernel computes with.
fn wAt(i: u32) -> f32 { return f32({{W}}[i]); }
