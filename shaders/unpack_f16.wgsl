// IEEE half → f32, exactly, from raw little-endian bytes: packed[k] holds halves 2k (low 16 bits) and 2k + 1
// (high 16 bits). The conversion is done on the bits (unpack2x16float leaves infinities, NaN and subnormals
// to the implementation), and `out` is written as bits so that nothing canonicalizes NaNs or flushes
// subnormals on the way.
{{include:elementwise}}

fn element(i: u32) {
  let h = (packed[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu;
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  var bits: u32;
  if (e == 0u) {
    // ±0 and subnormals: m·2⁻²⁴, exact and a normal f32 (≥ 2⁻²⁴) unless zero.
    bits = sign | bitcast<u32>(f32(m) * 5.9604644775390625e-8);
  } else if (e == 31u) {
    // ±Inf (m = 0) and NaN (payload kept).
    bits = sign | 0x7f800000u | (m << 13u);
  } else {
    // Normal: rebias the exponent from 15 to 127.
    bits = sign | ((e + 112u) << 23u) | (m << 13u);
  }
  out[i] = bits;
}
