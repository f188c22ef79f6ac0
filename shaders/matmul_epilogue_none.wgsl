// The plain matmul's epilogue hooks (appended to matmul_quad.wgsl / matmul_tiled.wgsl): no second product
// (K2 = 0, so its loop never runs and compiles away) and no bias. matmul_epilogue_fused.wgsl is the other
// choice; both define the same functions.
fn seg2K() -> u32 { return 0u; }
fn a2Block(r: vec4<u32>, k: u32) -> mat4x4<f32> { return mat4x4<f32>(); }
fn b2Block(c: vec4<u32>, k: u32) -> mat4x4<f32> { return mat4x4<f32>(); }
fn a2Vec(m: u32, k: u32) -> vec4<f32> { return vec4(0.0); }
fn b2Vec(k: u32, n: u32) -> vec4<f32> { return vec4(0.0); }
fn biasAt(n: u32) -> vec4<f32> { return vec4(0.0); }
