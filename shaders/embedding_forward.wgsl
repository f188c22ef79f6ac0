// Embedding lookup: out[t, c] = finish(table[ids[t], c]), one invocation per output element (n = T·C).
// The table is read through wAt (lib/weight_<format>.wgsl, appended by the wrapper: f32, or 16-bit packed two a
// u32 word). finish multiplies by params.scale (1 for most models, exact; Gemma's √hidden) and, with ROUND =
// bf16 or f16, rounds the product to that type, as transformers computes a 16-bit model's scaled embedding in
// the weights' dtype (the product of two 16-bit values is exact in f32, so one rounding gives torch's result).
// The kernel cannot report a bad id, so an id outside [0, V) yields a row of zeros; the CPU side rejects such
// ids where it sees them (buildEmbeddingGradIndex).
{{include:elementwise}}

const ROUND: u32 = {{ROUND}}u;  // 0: none, 1: bf16, 2: f16

fn finish(v: f32) -> f32 {
  let x = v * params.scale;
  if (ROUND == 1u) {
    // Round to nearest even at bit 16 (finite values: a scaled embedding is never inf or NaN).
    let b = bitcast<u32>(x);
    return bitcast<f32>((b + 0x7fffu + ((b >> 16u) & 1u)) & 0xffff0000u);
  }
  if (ROUND == 2u) {
    return unpack2x16float(pack2x16float(vec2(x, 0.0))).x;
  }
  return x;
}

fn element(i: u32) {
  let t = i / params.C;
  let c = i - t * params.C;
  let id = ids[t];
  if (id < 0 || u32(id) >= params.V) {
    out[i] = 0.0;
    return;
  }
  out[i] = finish(wAt(u32(id) * params.C + c));
}
