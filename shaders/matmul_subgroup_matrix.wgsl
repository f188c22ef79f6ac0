// Matmul on the adapter's subgroup matrices (chromium_experimental_subgroup_matrix: cooperative matrices /
// simdgroup matrices / WMMA, whichever the driver maps them to):
//   out[z, m, n] = alpha · Σ_k A(z, m, k) · B(z, k, n)   (+ out[z, m, n] when params.accumulate = 1)
// Same contract as matmul_tiled.wgsl (TRANS_A / TRANS_B, the k range [z·kStep, min(K, z·kStep + kLen)), the
// n0/m0/z0 offsets of a split grid, b read through wAt of lib/weight_<format>.wgsl, so every weight format works),
// without the fused epilogue (the wrapper runs a second product and a bias as their own dispatches).
// A workgroup is WG invocations, the adapter's largest subgroup (the extension requires workgroup_size.x to be a
// multiple of it), and computes one BM×BN tile (FM×FN result matrices of SM×SN): every offset is uniform over the
// workgroup, as the subgroup-matrix builtins require. Where the device runs smaller subgroups, each subgroup
// computes the same tile and stores the same values. k is staged BK = KS·SK at a time: the threads copy the A
// slice (row-major [BM, BK]) and the B slice (row-major [BK, BN]) into workgroup memory as ELEM_T (f32, or f16
// with the opt-in f16 path: the values rounded to f16), rows and columns past the edge clamped and k past the
// end zero, so any M, N, K works; the products and sums are the hardware's, into f32 result matrices, which
// go through workgroup memory to the stores (alpha, accumulate, edges).
const TRANS_A: bool = {{TRANS_A}};
const TRANS_B: bool = {{TRANS_B}};
const SM: u32 = {{SM}}u;
const SN: u32 = {{SN}}u;
const SK: u32 = {{SK}}u;
const FM: u32 = {{FM}}u;
const FN: u32 = {{FN}}u;
const KS: u32 = {{KS}}u;
const WG: u32 = {{WG}}u;
const BM: u32 = FM * SM;
const BN: u32 = FN * SN;
const BK: u32 = KS * SK;
alias T = {{ELEM_T}};

var<workgroup> As: array<T, BM * BK>;
var<workgroup> Bs: array<T, BK * BN>;
var<workgroup> Cs: array<f32, BM * BN>;

fn loadA(base: u32, m: u32, k: u32, kEnd: u32) -> f32 {
  if (k >= kEnd) { return 0.0; }
  let mm = min(m, params.M - 1u);
  if (TRANS_A) { return a[base + k * params.M + mm]; }
  return a[base + mm * params.K + k];
}

fn loadB(base: u32, k: u32, n: u32, kEnd: u32) -> f32 {
  if (k >= kEnd) { return 0.0; }
  let nn = min(n, params.N - 1u);
  if (TRANS_B) { return wAt(base + nn * params.K + k); }
  return wAt(base + k * params.N + nn);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lidx: u32) {
  let z = params.z0 + wid.z;
  let aBase = z * params.aBatch;
  let bBase = z * params.bBatch;
  let mTile = (params.m0 + wid.y) * BM;
  let nTile = (params.n0 + wid.x) * BN;
  let kBegin = z * params.kStep;
  let kEnd = min(params.K, kBegin + params.kLen);

  var acc: array<subgroup_matrix_result<f32, SN, SM>, FM * FN>;
  for (var k0 = kBegin; k0 < kEnd; k0 += BK) {
    for (var i = lidx; i < BM * BK; i += WG) { As[i] = T(loadA(aBase, mTile + i / BK, k0 + i % BK, kEnd)); }
    for (var i = lidx; i < BK * BN; i += WG) { Bs[i] = T(loadB(bBase, k0 + i / BN, nTile + i % BN, kEnd)); }
    workgroupBarrier();
    for (var ks = 0u; ks < KS; ks++) {
      var right: array<subgroup_matrix_right<T, SN, SK>, FN>;
      for (var j = 0u; j < FN; j++) {
        right[j] = subgroupMatrixLoad<subgroup_matrix_right<T, SN, SK>>(&Bs, ks * SK * BN + j * SN, false, BN);
      }
      for (var i = 0u; i < FM; i++) {
        let left = subgroupMatrixLoad<subgroup_matrix_left<T, SK, SM>>(&As, i * SM * BK + ks * SK, false, BK);
        for (var j = 0u; j < FN; j++) {
          acc[i * FN + j] = subgroupMatrixMultiplyAccumulate(left, right[j], acc[i * FN + j]);
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < FM; i++) {
    for (var j = 0u; j < FN; j++) {
      subgroupMatrixStore(&Cs, i * SM * BN + j * SN, acc[i * FN + j], false, BN);
    }
  }
  workgroupBarrier();
  let oBase = z * params.oBatch;
  for (var i = lidx; i < BM * BN; i += WG) {
    let m = mTile + i / BN;
    let n = nTile + i % BN;
    if (m < params.M && n < params.N) {
      let o = oBase + m * params.N + n;
      if (params.accumulate != 0u) { out[o] = out[o] + params.alpha * Cs[i]; } else { out[o] = params.alpha * Cs[i]; }
    }
  }
}
