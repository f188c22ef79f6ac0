// bfloat16 → f32, exactly, from raw little-endian bytes: packed[k] holds values 2k (low 16 bits) and 2k + 1
// (high 16 bits). A bfloat16 is the top half of an f32, so this is a shift; `out` is written as bits.
{{include:elementwise}}

fn element(i: u32) {
  let b = (packed[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu;
  out[i] = b << 16u;
}
