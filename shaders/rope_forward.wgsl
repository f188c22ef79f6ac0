// RoPE forward, Hugging Face "rotate_half" layout. One invocation per rotated pair (x1[i], x2[i]) =
// (x[.., i], x[.., i + D/2]) of one head vector of x [B, T, H, D]:
//   out1 = x1·cos − x2·sin,  out2 = x2·cos + x1·sin,  cos/sin = table[positions[b, t], i].
// {{OUT}} is `out`, or `x` for the in-place variant (x bound once, read_write). A position outside the
// table writes NaN: a loud failure instead of silently reading another row.
{{include:elementwise}}

fn element(n: u32) {
  let half = params.half;
  let i = n % half;
  let headIdx = n / half;                  // (b·T + t)·H + h
  let bt = headIdx / params.heads;         // b·T + t
  let base = headIdx * 2u * half;
  let pos = positions[bt];
  let x1 = x[base + i];
  let x2 = x[base + half + i];
  if (pos < 0 || u32(pos) >= params.maxPositions) {
    var nanBits = 0x7fc00000u;  // a var: a NaN constant expression does not compile
    let nan = bitcast<f32>(nanBits);
    {{OUT}}[base + i] = nan;
    {{OUT}}[base + half + i] = nan;
    return;
  }
  let c = cosTable[u32(pos) * half + i];
  let s = sinTable[u32(pos) * half + i];
  {{OUT}}[base + i] = x1 * c - x2 * s;
  {{OUT}}[base + half + i] = x2 * c + x1 * s;
}
