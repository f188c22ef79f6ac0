// Register-blocked matmul without workgroup memory or subgroup operations (same contract as matmul_quad.wgsl):
//   out[z, m, n] = alpha · Σ_k A(z, m, k) · B(z, k, n)   (+ out[z, m, n] when params.accumulate = 1)
// TRANS_A = false: a holds [M, K] (k contiguous); true: [K, M] (m contiguous).
// TRANS_B = false: b holds [K, N] (n contiguous); true: [N, K] (k contiguous).
// The k range is [z·kStep, min(K, z·kStep + kLen)): kStep = 0, kLen = K for a whole product (z is the batch),
// kStep = kLen = chunk for split-K (z is the chunk, out a [chunks, M, N] partial buffer).
// Each invocation computes a 16×16 block of out in registers, reading its 16 rows of A and 16 columns of B
// straight from the storage buffers: per 4 k, 128 scalar loads for 1024 multiply-adds. No barriers and no
// workgroup memory: on SwiftShader (WebGPU on the CPU, 4 invocations per SIMD vector) every load is a
// per-lane gather and every barrier a context switch, and big register blocks are what pay. (Where the
// adapter has subgroups, matmul_quad.wgsl halves the loads by sharing them within a quad.) Loads are
// scalar, so any M, N, K works: rows/columns past the edge are read clamped and never written, k past the
// end reads as zero. 8 k per loop iteration halve the cost of SwiftShader's masked loop-carried values.
const TRANS_A: bool = {{TRANS_A}};
const TRANS_B: bool = {{TRANS_B}};
const WX: u32 = {{WX}}u;
const WY: u32 = {{WY}}u;
const BM: u32 = 16u * WY;
const BN: u32 = 16u * WX;

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

// Column t holds B(k + t, column 0..3), with B(k + t, column j) = b[p[j] + (k + t) · sb].
fn bBlock(p: vec4<u32>, k: u32, sb: u32) -> mat4x4<f32> {
  let k0 = k * sb;
  let k1 = k0 + sb;
  let k2 = k1 + sb;
  let k3 = k2 + sb;
  return mat4x4(
    vec4(b[p.x + k0], b[p.y + k0], b[p.z + k0], b[p.w + k0]),
    vec4(b[p.x + k1], b[p.y + k1], b[p.z + k1], b[p.w + k1]),
    vec4(b[p.x + k2], b[p.y + k2], b[p.z + k2], b[p.w + k2]),
    vec4(b[p.x + k3], b[p.y + k3], b[p.z + k3], b[p.w + k3]));
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
    select(vec4(0.0), vec4(b[p.x + kk.x], b[p.y + kk.x], b[p.z + kk.x], b[p.w + kk.x]), k < kEnd),
    select(vec4(0.0), vec4(b[p.x + kk.y], b[p.y + kk.y], b[p.z + kk.y], b[p.w + kk.y]), k + 1u < kEnd),
    select(vec4(0.0), vec4(b[p.x + kk.z], b[p.y + kk.z], b[p.z + kk.z], b[p.w + kk.z]), k + 2u < kEnd),
    select(vec4(0.0), vec4(b[p.x + kk.w], b[p.y + kk.w], b[p.z + kk.w], b[p.w + kk.w]), k + 3u < kEnd));
}

// Writes rows m..m+3, columns n..n+3 of out from c (c[i] = row m + i). A block inside the matrix takes the
// fast path: one bounds test, one accumulate test.
fn store(base: u32, m: u32, n: u32, c: mat4x4<f32>) {
  let N = params.N;
  let alpha = params.alpha;
  if (m + 3u < params.M && n + 3u < N) {
    let o = base + m * N + n;
    if (params.accumulate != 0u) {
      for (var i = 0u; i < 4u; i++) {
        let r = o + i * N;
        out[r] += alpha * c[i][0];
        out[r + 1u] += alpha * c[i][1];
        out[r + 2u] += alpha * c[i][2];
        out[r + 3u] += alpha * c[i][3];
      }
    } else {
      for (var i = 0u; i < 4u; i++) {
        let r = o + i * N;
        out[r] = alpha * c[i][0];
        out[r + 1u] = alpha * c[i][1];
        out[r + 2u] = alpha * c[i][2];
        out[r + 3u] = alpha * c[i][3];
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
          out[o] += alpha * c[i][j];
        } else {
          out[o] = alpha * c[i][j];
        }
      }
    }
  }
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let z = params.z0 + wid.z;
  let m = (params.m0 + wid.y) * BM + 16u * lid.y;
  let n = (params.n0 + wid.x) * BN + 16u * lid.x;
  // Element (row m, k) of A is a[aBase + m·ra + k·sa]; element (k, column n) of B is b[bBase + n·rb + k·sb].
  let sa = select(1u, M, TRANS_A);
  let ra = select(K, 1u, TRANS_A);
  let sb = select(N, 1u, TRANS_B);
  let rb = select(1u, K, TRANS_B);
  let aBase = z * params.aBatch;
  let bBase = z * params.bBatch;
  let rows = vec4(m, m + 1u, m + 2u, m + 3u);
  let cols = vec4(n, n + 1u, n + 2u, n + 3u);
  let lastRow = vec4(M - 1u);
  let lastCol = vec4(N - 1u);
  let oa0 = aBase + min(rows, lastRow) * ra;
  let oa1 = aBase + min(rows + 4u, lastRow) * ra;
  let oa2 = aBase + min(rows + 8u, lastRow) * ra;
  let oa3 = aBase + min(rows + 12u, lastRow) * ra;
  let ob0 = bBase + min(cols, lastCol) * rb;
  let ob1 = bBase + min(cols + 4u, lastCol) * rb;
  let ob2 = bBase + min(cols + 8u, lastCol) * rb;
  let ob3 = bBase + min(cols + 12u, lastCol) * rb;
  let kBegin = z * params.kStep;
  let kEnd = min(K, kBegin + params.kLen);
  let kMain = kBegin + ((max(kEnd, kBegin) - kBegin) & ~7u);

  // cij: rows m + 4i.., columns n + 4j..
  var c00 = mat4x4<f32>(); var c01 = mat4x4<f32>(); var c02 = mat4x4<f32>(); var c03 = mat4x4<f32>();
  var c10 = mat4x4<f32>(); var c11 = mat4x4<f32>(); var c12 = mat4x4<f32>(); var c13 = mat4x4<f32>();
  var c20 = mat4x4<f32>(); var c21 = mat4x4<f32>(); var c22 = mat4x4<f32>(); var c23 = mat4x4<f32>();
  var c30 = mat4x4<f32>(); var c31 = mat4x4<f32>(); var c32 = mat4x4<f32>(); var c33 = mat4x4<f32>();
  var k = kBegin;
  for (; k < kMain; k += 8u) {
    {
      let a0 = aBlock(oa0, k, sa);
      let a1 = aBlock(oa1, k, sa);
      let a2 = aBlock(oa2, k, sa);
      let a3 = aBlock(oa3, k, sa);
      let b0 = bBlock(ob0, k, sb);
      let b1 = bBlock(ob1, k, sb);
      let b2 = bBlock(ob2, k, sb);
      let b3 = bBlock(ob3, k, sb);
      c00 += b0 * a0; c01 += b1 * a0; c02 += b2 * a0; c03 += b3 * a0;
      c10 += b0 * a1; c11 += b1 * a1; c12 += b2 * a1; c13 += b3 * a1;
      c20 += b0 * a2; c21 += b1 * a2; c22 += b2 * a2; c23 += b3 * a2;
      c30 += b0 * a3; c31 += b1 * a3; c32 += b2 * a3; c33 += b3 * a3;
    }
    {
      let k4 = k + 4u;
      let a0 = aBlock(oa0, k4, sa);
      let a1 = aBlock(oa1, k4, sa);
      let a2 = aBlock(oa2, k4, sa);
      let a3 = aBlock(oa3, k4, sa);
      let b0 = bBlock(ob0, k4, sb);
      let b1 = bBlock(ob1, k4, sb);
      let b2 = bBlock(ob2, k4, sb);
      let b3 = bBlock(ob3, k4, sb);
      c00 += b0 * a0; c01 += b1 * a0; c02 += b2 * a0; c03 += b3 * a0;
      c10 += b0 * a1; c11 += b1 * a1; c12 += b2 * a1; c13 += b3 * a1;
      c20 += b0 * a2; c21 += b1 * a2; c22 += b2 * a2; c23 += b3 * a2;
      c30 += b0 * a3; c31 += b1 * a3; c32 += b2 * a3; c33 += b3 * a3;
    }
  }
  // Up to 7 k remain: one or two masked blocks.
  for (; k < kEnd; k += 4u) {
    let a0 = aBlockMasked(oa0, k, sa, kEnd);
    let a1 = aBlockMasked(oa1, k, sa, kEnd);
    let a2 = aBlockMasked(oa2, k, sa, kEnd);
    let a3 = aBlockMasked(oa3, k, sa, kEnd);
    let b0 = bBlockMasked(ob0, k, sb, kEnd);
    let b1 = bBlockMasked(ob1, k, sb, kEnd);
    let b2 = bBlockMasked(ob2, k, sb, kEnd);
    let b3 = bBlockMasked(ob3, k, sb, kEnd);
    c00 += b0 * a0; c01 += b1 * a0; c02 += b2 * a0; c03 += b3 * a0;
    c10 += b0 * a1; c11 += b1 * a1; c12 += b2 * a1; c13 += b3 * a1;
    c20 += b0 * a2; c21 += b1 * a2; c22 += b2 * a2; c23 += b3 * a2;
    c30 += b0 * a3; c31 += b1 * a3; c32 += b2 * a3; c33 += b3 * a3;
  }

  let oBase = z * params.oBatch;
  store(oBase, m, n, c00); store(oBase, m, n + 4u, c01); store(oBase, m, n + 8u, c02); store(oBase, m, n + 12u, c03);
  store(oBase, m + 4u, n, c10); store(oBase, m + 4u, n + 4u, c11); store(oBase, m + 4u, n + 8u, c12); store(oBase, m + 4u, n + 12u, c13);
  store(oBase, m + 8u, n, c20); store(oBase, m + 8u, n + 4u, c21); store(oBase, m + 8u, n + 8u, c22); store(oBase, m + 8u, n + 12u, c23);
  store(oBase, m + 12u, n, c30); store(oBase, m + 12u, n + 4u, c31); store(oBase, m + 12u, n + 8u, c32); store(oBase, m + 12u, n + 12u, c33);
}
