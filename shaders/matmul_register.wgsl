// Register-blocked matmul with vec4 loads and no workgroup memory (same contract and grid as
// matmul_tiled.wgsl):
//   out[z, m, n] = alpha · Σ_k A(z, m, k) · B(z, k, n)   (+ out[z, m, n] when params.accumulate = 1)
// TRANS_A = false: a holds [M, K] (k contiguous); true: [K, M] (m contiguous).
// TRANS_B = false: b holds [K, N] (n contiguous); true: [N, K] (k contiguous).
// a and b are bound as arrays of vec4, so every contiguous dimension must be a multiple of 4 (the wrapper
// checks; matmul_register_scalar.wgsl takes the other shapes). K itself need not be when neither operand is
// k-contiguous (TN): the last group of 4 k's is then masked.
// Each thread computes an 8×8 block of out as four 4×4 matrices. Per 4 values of k it loads the 8×4 slice
// of A and the 4×8 slice of B as 16 vec4s, for 256 multiply-adds: the ratio that makes SwiftShader (a CPU
// implementation of WebGPU, where every load is a gather and every barrier a context switch) fastest.
// Rows/columns past the edge are read clamped and never written, so M and N need not fill a block.
const TRANS_A: bool = {{TRANS_A}};
const TRANS_B: bool = {{TRANS_B}};
const WX: u32 = {{WX}}u;
const WY: u32 = {{WY}}u;
const BM: u32 = 8u * WY;
const BN: u32 = 8u * WX;

// The 4×4 block A[m..m+3, k..k+3] as a matrix with A(m + i, k + j) at [j][i] (column j, row i).
// `base` is the batch offset in vec4s.
fn aBlock(base: u32, m: u32, k: u32) -> mat4x4<f32> {
  let M = params.M;
  let K = params.K;
  if (TRANS_A) {
    // Column j is the vec4 a[k + j, m..m+3]; rows past K count as zero, m past M is clamped.
    let q = min(m, M - 4u) / 4u;
    let M4 = M / 4u;
    return mat4x4(
      select(vec4(0.0), a[base + min(k, K - 1u) * M4 + q], k < K),
      select(vec4(0.0), a[base + min(k + 1u, K - 1u) * M4 + q], k + 1u < K),
      select(vec4(0.0), a[base + min(k + 2u, K - 1u) * M4 + q], k + 2u < K),
      select(vec4(0.0), a[base + min(k + 3u, K - 1u) * M4 + q], k + 3u < K));
  }
  // Row i is the vec4 a[m + i, k..k+3] (K is a multiple of 4 here).
  let K4 = K / 4u;
  let q = k / 4u;
  return transpose(mat4x4(
    a[base + min(m, M - 1u) * K4 + q],
    a[base + min(m + 1u, M - 1u) * K4 + q],
    a[base + min(m + 2u, M - 1u) * K4 + q],
    a[base + min(m + 3u, M - 1u) * K4 + q]));
}

// The 4×4 block B[k..k+3, n..n+3] as a matrix with B(k + i, n + j) at [j][i].
fn bBlock(base: u32, k: u32, n: u32) -> mat4x4<f32> {
  let N = params.N;
  let K = params.K;
  if (TRANS_B) {
    // Column j is the vec4 b[n + j, k..k+3] (K is a multiple of 4 here).
    let K4 = K / 4u;
    let q = k / 4u;
    return mat4x4(
      b[base + min(n, N - 1u) * K4 + q],
      b[base + min(n + 1u, N - 1u) * K4 + q],
      b[base + min(n + 2u, N - 1u) * K4 + q],
      b[base + min(n + 3u, N - 1u) * K4 + q]);
  }
  // Row i is the vec4 b[k + i, n..n+3]; rows past K are clamped (A's are zero there).
  let q = min(n, N - 4u) / 4u;
  let N4 = N / 4u;
  return transpose(mat4x4(
    b[base + min(k, K - 1u) * N4 + q],
    b[base + min(k + 1u, K - 1u) * N4 + q],
    b[base + min(k + 2u, K - 1u) * N4 + q],
    b[base + min(k + 3u, K - 1u) * N4 + q]));
}

// Writes rows m..m+3, columns n..n+3 of out from c, which holds the block transposed (c[i] = row i).
fn store(base: u32, m: u32, n: u32, c: mat4x4<f32>) {
  for (var i = 0u; i < 4u; i++) {
    if (m + i >= params.M) { return; }
    for (var j = 0u; j < 4u; j++) {
      if (n + j < params.N) {
        let o = base + (m + i) * params.N + n + j;
        if (params.accumulate != 0u) {
          out[o] = out[o] + params.alpha * c[i][j];
        } else {
          out[o] = params.alpha * c[i][j];
        }
      }
    }
  }
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let z = params.z0 + wid.z;
  let m = (params.m0 + wid.y) * BM + 8u * lid.y;
  let n = (params.n0 + wid.x) * BN + 8u * lid.x;
  let aBase = z * (params.aBatch / 4u);
  let bBase = z * (params.bBatch / 4u);

  // cIJ = (A rows m+4I.., · B columns n+4J..)ᵀ, accumulated as Bᵀ·Aᵀ so that cIJ[i] is a row of out.
  var c00 = mat4x4<f32>();
  var c01 = mat4x4<f32>();
  var c10 = mat4x4<f32>();
  var c11 = mat4x4<f32>();
  for (var k = 0u; k < params.K; k += 4u) {
    let a0 = transpose(aBlock(aBase, m, k));
    let a1 = transpose(aBlock(aBase, m + 4u, k));
    let b0 = transpose(bBlock(bBase, k, n));
    let b1 = transpose(bBlock(bBase, k, n + 4u));
    c00 += b0 * a0;
    c01 += b1 * a0;
    c10 += b0 * a1;
    c11 += b1 * a1;
  }

  let oBase = z * params.oBatch;
  store(oBase, m, n, c00);
  store(oBase, m, n + 4u, c01);
  store(oBase, m + 4u, n, c10);
  store(oBase, m + 4u, n + 4u, c11);
}
