// The register-blocked flash backward kernels' loads of dOut (flash_register.wgsl has q, k and v).
fn g4(at: u32, dim: u32) -> vec4<f32> { return headDims(vec4(dOut[at], dOut[at + 1u], dOut[at + 2u], dOut[at + 3u]), dim); }
fn gBlock(at: vec4<u32>, d: u32) -> mat4x4<f32> { return mat4x4(g4(at[0] + d, d), g4(at[1] + d, d), g4(at[2] + d, d), g4(at[3] + d, d)); }
