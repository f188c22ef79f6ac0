// Register-blocked matmul without workgroup memory (same contract and grid as matmul_tiled.wgsl):
//   out[z, m, n] = alpha · Σ_k A(z, m, k) · B(z, k, n)   (+ out[z, m, n] when params.accumulate = 1)
// TRANS_A = false: a holds [M, K] (k contiguous); true: [K, M].  TRANS_B = false: b holds [K, N]; true: [N, K].
// Each thread computes a 4×4 block of out in registers, reading its 4 rows of A and 4 columns of B straight
// from the storage buffers (8 loads per 16 multiply-adds) and relying on the caches for reuse. There are no
// barriers, which is what a CPU implementation of WebGPU (SwiftShader) runs fastest.
// Rows/columns past the edge are read clamped and never written, so any M, N, K works.
const TRANS_A: bool = {{TRANS_A}};
const TRANS_B: bool = {{TRANS_B}};
const WX: u32 = {{WX}}u;
const WY: u32 = {{WY}}u;
const BM: u32 = 4u * WY;
const BN: u32 = 4u * WX;

fn store(base: u32, m: u32, n: u32, v: vec4<f32>) {
  if (m >= params.M) { return; }
  for (var j = 0u; j < 4u; j++) {
    if (n + j < params.N) {
      let o = base + m * params.N + n + j;
      if (params.accumulate != 0u) {
        out[o] = out[o] + params.alpha * v[j];
      } else {
        out[o] = params.alpha * v[j];
      }
    }
  }
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let z = params.z0 + wid.z;
  let m = (params.m0 + wid.y) * BM + 4u * lid.y;
  let n = (params.n0 + wid.x) * BN + 4u * lid.x;
  let M = params.M;
  let N = params.N;
  let K = params.K;

  // Element (m, k) of A is a[ai + k * sa] with ai from the row; element (k, n) of B is b[bj + k * sb].
  let sa = select(1u, M, TRANS_A);
  let sb = select(N, 1u, TRANS_B);
  let ra = select(K, 1u, TRANS_A);
  let rb = select(1u, K, TRANS_B);
  let aBase = z * params.aBatch;
  let bBase = z * params.bBatch;
  let a0 = aBase + min(m, M - 1u) * ra;
  let a1 = aBase + min(m + 1u, M - 1u) * ra;
  let a2 = aBase + min(m + 2u, M - 1u) * ra;
  let a3 = aBase + min(m + 3u, M - 1u) * ra;
  let b0 = bBase + min(n, N - 1u) * rb;
  let b1 = bBase + min(n + 1u, N - 1u) * rb;
  let b2 = bBase + min(n + 2u, N - 1u) * rb;
  let b3 = bBase + min(n + 3u, N - 1u) * rb;

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var ka = 0u;
  var kb = 0u;
  for (var k = 0u; k < K; k++) {
    let av = vec4(a[a0 + ka], a[a1 + ka], a[a2 + ka], a[a3 + ka]);
    let bv = vec4(b[b0 + kb], b[b1 + kb], b[b2 + kb], b[b3 + kb]);
    acc0 += av.x * bv;
    acc1 += av.y * bv;
    acc2 += av.z * bv;
    acc3 += av.w * bv;
    ka += sa;
    kb += sb;
  }

  let oBase = z * params.oBatch;
  store(oBase, m, n, acc0);
  store(oBase, m + 1u, n, acc1);
  store(oBase, m + 2u, n, acc2);
  store(oBase, m + 3u, n, acc3);
}
