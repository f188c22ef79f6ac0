// Philox-4x32-10 (Salmon et al., SC'11), the counter-based generator of cuRAND and PyTorch's CUDA dropout.
// Included by the dropout kernels. WGSL has no 32×32→64-bit multiply, so the high word is assembled from
// 16-bit halves; src/engine/ref/dropout.ts does the same arithmetic on the CPU.
fn mulhi32(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}

fn philox4x32_10(counter: vec4u, key: vec2u) -> vec4u {
  var c = counter;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) {
      k += vec2u(0x9e3779b9u, 0xbb67ae85u);
    }
    let hi0 = mulhi32(0xd2511f53u, c.x);
    let lo0 = 0xd2511f53u * c.x;
    let hi1 = mulhi32(0xcd9e8d57u, c.z);
    let lo1 = 0xcd9e8d57u * c.z;
    c = vec4u(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}

// Whether element i is kept: the first Philox word of counter (offset + i as 64 bits, 0, 0) under the key
// (seed as 64 bits) is compared with floor(p·2³²); keepScale = 0 (p = 1) drops everything.
fn dropoutKeep(i: u32) -> bool {
  let lo = params.offsetLo + i;
  let hi = params.offsetHi + select(0u, 1u, lo < params.offsetLo);
  let r = philox4x32_10(vec4u(lo, hi, 0u, 0u), vec2u(params.seedLo, params.seedHi)).x;
  return r >= params.threshold && params.keepScale > 0.0;
}
