// The register-blocked matmuls' loads and stores (matmul_register.wgsl, matmul_quad.wgsl): 4×4 blocks of A and
// B read with scalar loads straight from the storage buffers, and 4×4 blocks of out written with the epilogue's
// bias (biasAt: matmul_epilogue_none.wgsl or matmul_epilogue_fused.wgsl, appended to the kernel).
// TRANS_A = false: a holds [M, K] (k contiguous); true: [K, M] (m contiguous).
// TRANS_B = false: b holds [K, N] (n contiguous); true: [N, K] (k contiguous).
// b is read through wAt (lib/weight_<format>.wgsl, appended by the wrapper with W = b): f32, or a frozen weight
// kept packed (16-bit, NF4, FP4, int8) and unpacked as it is loaded.
const TRANS_A: bool = {{TRANS_A}};
const TRANS_B: bool = {{TRANS_B}};
// B_QUADS: b is a packed weight whose 4 values along the contiguous dimension start at a multiple of 4 in every
// block load (the wrapper checks K % 4 = 0 for TRANS_B, N % 4 = 0 otherwise): they are read with one wQuad
// (a word or two) instead of four wAt. Off for f32, whose loads stay exactly as they were.
const B_QUADS: bool = {{B_QUADS}};

// Product z's operands: element (row m, k) of A is a[aBase + m·ra + k·sa], element (k, column n) of B is
// wAt(bBase + n·rb + k·sb); its k range is [kBegin, kEnd), of which [kBegin, kMain) is whole groups of 8.
struct Operands {
  sa: u32, ra: u32, sb: u32, rb: u32,  // strides
  aBase: u32, bBase: u32,
  kBegin: u32, kEnd: u32, kMain: u32,  // the k range
}

fn operands(z: u32) -> Operands {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let kBegin = z * params.kStep;
  let kEnd = min(K, kBegin + params.kLen);
  let kMain = kBegin + ((max(kEnd, kBegin) - kBegin) & ~7u);
  return Operands(select(1u, M, TRANS_A), select(K, 1u, TRANS_A), select(N, 1u, TRANS_B), select(1u, K, TRANS_B),
    z * params.aBatch, z * params.bBatch, kBegin, kEnd, kMain);
}

// Where rows r (of A) and columns c (of B) start; those past the edge are read clamped (never written).
fn aRows(o: Operands, r: vec4<u32>) -> vec4<u32> { return o.aBase + min(r, vec4(params.M - 1u)) * o.ra; }
fn bCols(o: Operands, c: vec4<u32>) -> vec4<u32> { return o.bBase + min(c, vec4(params.N - 1u)) * o.rb; }

// Column i holds A(row i, k..k+3), with A(row i, k + t) = a[o[i] + (k + t) · sa].
fn aBlock(o: vec4<u32>, k: u32, sa: u32) -> mat4x4<f32> {
  let k0 = k * sa;
  let k1 = k0 + sa;
  let k2 = k1 + sa;
  let k3 = k2 + sa;
  return mat4x4(
    vec4(a[o.x + k0], a[o.x + k1], a[o.x + k2], a[o.x + k3]),
    vec4(a[o.y + k0], a[o.y + k1], a[o.y + k2], a[o.y + k3]),
    vec4(a[o.z + k0], a[o.z + k1], a[o.z + k2], a[o.z + k3]),
    vec4(a[o.w + k0], a[o.w + k1], a[o.w + k2], a[o.w + k3]));
}

// Column t holds B(k + t, column 0..3), with B(k + t, column j) = wAt(p[j] + (k + t) · sb).
fn bBlock(p: vec4<u32>, k: u32, sb: u32) -> mat4x4<f32> {
  if (B_QUADS) {
    // TRANS_B: each column's k .. k + 3 are consecutive; otherwise each row's 4 columns are (from p.x; columns
    // past N read the next values, harmlessly: their results are never written).
    if (TRANS_B) { return transpose(mat4x4(wQuad(p.x + k * sb), wQuad(p.y + k * sb), wQuad(p.z + k * sb), wQuad(p.w + k * sb))); }
    let r = p.x + k * sb;
    return mat4x4(wQuad(r), wQuad(r + sb), wQuad(r + 2u * sb), wQuad(r + 3u * sb));
  }
  let k0 = k * sb;
  let k1 = k0 + sb;
  let k2 = k1 + sb;
  let k3 = k2 + sb;
  return mat4x4(
    vec4(wAt(p.x + k0), wAt(p.y + k0), wAt(p.z + k0), wAt(p.w + k0)),
    vec4(wAt(p.x + k1), wAt(p.y + k1), wAt(p.z + k1), wAt(p.w + k1)),
    vec4(wAt(p.x + k2), wAt(p.y + k2), wAt(p.z + k2), wAt(p.w + k2)),
    vec4(wAt(p.x + k3), wAt(p.y + k3), wAt(p.z + k3), wAt(p.w + k3)));
}

// The tail of the k range: k + t >= kEnd reads as zero (in both operands, so that no inf·0 appears).
fn aBlockMasked(o: vec4<u32>, k: u32, sa: u32, kEnd: u32) -> mat4x4<f32> {
  let v = vec4(k, k + 1u, k + 2u, k + 3u) < vec4(kEnd);
  let kk = min(vec4(k, k + 1u, k + 2u, k + 3u), vec4(kEnd - 1u)) * sa;
  return mat4x4(
    select(vec4(0.0), vec4(a[o.x + kk.x], a[o.x + kk.y], a[o.x + kk.z], a[o.x + kk.w]), v),
    select(vec4(0.0), vec4(a[o.y + kk.x], a[o.y + kk.y], a[o.y + kk.z], a[o.y + kk.w]), v),
    select(vec4(0.0), vec4(a[o.z + kk.x], a[o.z + kk.y], a[o.z + kk.z], a[o.z + kk.w]), v),
    select(vec4(0.0), vec4(a[o.w + kk.x], a[o.w + kk.y], a[o.w + kk.z], a[o.w + kk.w]), v));
}

fn bBlockMasked(p: vec4<u32>, k: u32, sb: u32, kEnd: u32) -> mat4x4<f32> {
  let kk = min(vec4(k, k + 1u, k + 2u, k + 3u), vec4(kEnd - 1u)) * sb;
  return mat4x4(
    select(vec4(0.0), vec4(wAt(p.x + kk.x), wAt(p.y + kk.x), wAt(p.z + kk.x), wAt(p.w + kk.x)), k < kEnd),
    select(vec4(0.0), vec4(wAt(p.x + kk.y), wAt(p.y + kk.y), wAt(p.z + kk.y), wAt(p.w + kk.y)), k + 1u < kEnd),
    select(vec4(0.0), vec4(wAt(p.x + kk.z), wAt(p.y + kk.z), wAt(p.z + kk.z), wAt(p.w + kk.z)), k + 2u < kEnd),
    select(vec4(0.0), vec4(wAt(p.x + kk.w), wAt(p.y + kk.w), wAt(p.z + kk.w), wAt(p.w + kk.w)), k + 3u < kEnd));
}

// Writes rows m..m+3, columns n..n+3 of out from c (c[i] = row m + i): alpha · c + bias. A block inside the
// matrix takes the fast path: one bounds test, one accumulate test.
fn store(base: u32, m: u32, n: u32, c: mat4x4<f32>) {
  let N = params.N;
  let alpha = params.alpha;
  let bv = biasAt(n);
  if (m + 3u < params.M && n + 3u < N) {
    let o = base + m * N + n;
    if (params.accumulate != 0u) {
      for (var i = 0u; i < 4u; i++) {
        let r = o + i * N;
        out[r] += alpha * c[i][0] + bv.x;
        out[r + 1u] += alpha * c[i][1] + bv.y;
        out[r + 2u] += alpha * c[i][2] + bv.z;
        out[r + 3u] += alpha * c[i][3] + bv.w;
      }
    } else {
      for (var i = 0u; i < 4u; i++) {
        let r = o + i * N;
        out[r] = alpha * c[i][0] + bv.x;
        out[r + 1u] = alpha * c[i][1] + bv.y;
        out[r + 2u] = alpha * c[i][2] + bv.z;
        out[r + 3u] = alpha * c[i][3] + bv.w;
      }
    }
    return;
  }
  for (var i = 0u; i < 4u; i++) {
    if (m + i >= params.M) { return; }
    for (var j = 0u; j < 4u; j++) {
      if (n + j < N) {
        let o = base + (m + i) * N + n + j;
        if (params.accumulate != 0u) {
          out[o] += alpha * c[i][j] + bv[j];
        } else {
          out[o] = alpha * c[i][j] + bv[j];
        }
      }
    }
  }
}
