// RoPE backward, accumulating: dx += dOut rotated by −angle (the transpose of the forward rotation):
//   dx1 += dO1·cos + dO2·sin,  dx2 += dO2·cos − dO1·sin.
// One invocation per rotated pair, laid out as in rope_forward.wgsl. A position outside the table
// writes NaN.
{{include:elementwise}}

fn element(n: u32) {
  let half = params.half;
  let i = n % half;
  let headIdx = n / half;
  let bt = headIdx / params.heads;
  let base = headIdx * 2u * half;
  let pos = positions[bt];
  if (pos < 0 || u32(pos) >= params.maxPositions) {
    var nanBits = 0x7fc00000u;  // a var: a NaN constant expression does not compile
    let nan = bitcast<f32>(nanBits);
    dx[base + i] = nan;
    dx[base + half + i] = nan;
    return;
  }
  let c = cosTable[u32(pos) * half + i];
  let s = sinTable[u32(pos) * half + i];
  let d1 = dOut[base + i];
  let d2 = dOut[base + half + i];
  dx[base + i] += d1 * c + d2 * s;
  dx[base + half + i] += d2 * c - d1 * s;
}
