// Reading element i of an f32 weight {{W}} bound as vec4<f32> (the staged matmul, where every 4 values its loads
// take start at a multiple of 4: docs/kernels.md, "Matmul plans"): `wAt(i)` one value, `wQuad(i)` (i a multiple
// of 4) one vec4 load.
fn wAt(i: u32) -> f32 { return {{W}}[i >> 2u][i & 3u]; }

fn wQuad(i: u32) -> vec4<f32> { return {{W}}[i >> 2u]; }
