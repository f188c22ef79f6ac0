// Reading element i of a frozen weight {{W}} stored as f32 (or f16 where the device has shader-f16: the binding is then array<f16>) (see src/engine/quantize.ts), for the kernels that
// read weights (the matmuls' operand b, the embedding gather): `wAt(i)` is the f32 value the kernel computes with.
fn wAt(i: u32) -> f32 { return f32({{W}}[i]); }

// Elements i .. i + 3 (i a multiple of 4).
fn wQuad(i: u32) -> vec4<f32> { return vec4(f32({{W}}[i]), f32({{W}}[i + 1u]), f32({{W}}[i + 2u]), f32({{W}}[i + 3u])); }
