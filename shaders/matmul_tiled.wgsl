// Tiled matmul through workgroup memory:
//   out[z, m, n] = alpha · Σ_k A(z, m, k) · B(z, k, n)   (+ out[z, m, n] when params.accumulate = 1)
// a and b hold ELEM (f32, or f16 with `enable f16;`): every element is widened to f32 as it is staged, so
// products and sums are f32 either way. out is f32. b is read through wAt (lib/weight_<format>.wgsl: f32/f16,
// or a frozen weight kept packed and unpacked as it is staged).
// The k range is [z·kStep, min(K, z·kStep + kLen)): kStep = 0, kLen = K for a whole product (z is the batch),
// kStep = kLen = chunk for split-K (z is the chunk, out a [chunks, M, N] partial buffer).
// The layouts are compile-time constants:
//   TRANS_A = false: a holds [M, K] row-major (k contiguous);  true: a holds [K, M] (m contiguous).
//   TRANS_B = false: b holds [K, N] row-major (n contiguous);  true: b holds [N, K] (k contiguous).
// A workgroup of WX×WY threads computes a BM×BN tile of out (BM = 4·WY, BN = 4·WX), each thread a 4×4
// block held in registers. The K dimension is walked BK at a time: the workgroup stages a BM×BK slice of A
// and a BK×BN slice of B in workgroup memory (each global element read once per tile, coalesced along the
// contiguous dimension), then every thread reads its 4 rows and 4 columns from there as vec4s.
// Out-of-range rows/columns are read clamped (their results are never written), out-of-range k as zero,
// so any M, N, K works. The grid is (N tiles, M tiles, batch); n0/m0/z0 offset a chunk of a grid that
// had to be split to respect maxComputeWorkgroupsPerDimension.
// The epilogue hooks (seg2K, a2Vec, b2Vec, biasAt) come from matmul_epilogue_none.wgsl (plain) or
// matmul_epilogue_fused.wgsl (a second short K segment and a bias, for LoRA: see there), appended to this
// file. The second segment is read straight from global memory by each thread (K2 is a LoRA rank: a few
// values per row and column, not worth staging).
const TRANS_A: bool = {{TRANS_A}};
const TRANS_B: bool = {{TRANS_B}};
const WX: u32 = {{WX}}u;
const WY: u32 = {{WY}}u;
const BK: u32 = {{BK}}u;
const BM: u32 = 4u * WY;
const BN: u32 = 4u * WX;
const THREADS: u32 = WX * WY;

// As[k * BM/4 + i] holds rows 4i..4i+3 of column k of the A slice; Bs likewise for columns of B.
var<workgroup> As: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>;

fn loadA(base: u32, m: u32, k: u32, kEnd: u32) -> f32 {
  if (k >= kEnd) { return 0.0; }
  let mm = min(m, params.M - 1u);
  if (TRANS_A) { return f32(a[base + k * params.M + mm]); }
  return f32(a[base + mm * params.K + k]);
}

fn loadB(base: u32, k: u32, n: u32, kEnd: u32) -> f32 {
  if (k >= kEnd) { return 0.0; }
  let nn = min(n, params.N - 1u);
  if (TRANS_B) { return wAt(base + nn * params.K + k); }
  return wAt(base + k * params.N + nn);
}

// Stages the BM×BK slice of A starting at (mTile, k0) and the BK×BN slice of B at (k0, nTile): every thread
// loads groups of 4 elements that are consecutive along the stored (contiguous) dimension.
fn stage(tid: u32, aBase: u32, bBase: u32, mTile: u32, nTile: u32, k0: u32, kEnd: u32) {
  for (var g = tid; g < BM * BK / 4u; g += THREADS) {
    if (TRANS_A) {
      // 4 consecutive m at one k: one vec4 of As.
      let k = g / (BM / 4u);
      let i = g % (BM / 4u);
      let m = mTile + 4u * i;
      As[k * (BM / 4u) + i] = vec4(loadA(aBase, m, k0 + k, kEnd), loadA(aBase, m + 1u, k0 + k, kEnd),
                                   loadA(aBase, m + 2u, k0 + k, kEnd), loadA(aBase, m + 3u, k0 + k, kEnd));
    } else {
      // 4 consecutive k at one m: one component of 4 vec4s.
      let r = g / (BK / 4u);
      let k = 4u * (g % (BK / 4u));
      let m = mTile + r;
      for (var j = 0u; j < 4u; j++) {
        As[(k + j) * (BM / 4u) + r / 4u][r % 4u] = loadA(aBase, m, k0 + k + j, kEnd);
      }
    }
  }
  for (var g = tid; g < BN * BK / 4u; g += THREADS) {
    if (TRANS_B) {
      let c = g / (BK / 4u);
      let k = 4u * (g % (BK / 4u));
      let n = nTile + c;
      for (var j = 0u; j < 4u; j++) {
        Bs[(k + j) * (BN / 4u) + c / 4u][c % 4u] = loadB(bBase, k0 + k + j, n, kEnd);
      }
    } else {
      let k = g / (BN / 4u);
      let i = g % (BN / 4u);
      let n = nTile + 4u * i;
      Bs[k * (BN / 4u) + i] = vec4(loadB(bBase, k0 + k, n, kEnd), loadB(bBase, k0 + k, n + 1u, kEnd),
                                   loadB(bBase, k0 + k, n + 2u, kEnd), loadB(bBase, k0 + k, n + 3u, kEnd));
    }
  }
}

fn store(base: u32, m: u32, n: u32, v: vec4<f32>) {
  if (m >= params.M) { return; }
  let bv = biasAt(n);
  for (var j = 0u; j < 4u; j++) {
    if (n + j < params.N) {
      let o = base + m * params.N + n + j;
      if (params.accumulate != 0u) {
        out[o] = out[o] + params.alpha * v[j] + bv[j];
      } else {
        out[o] = params.alpha * v[j] + bv[j];
      }
    }
  }
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let tid = lid.y * WX + lid.x;
  let z = params.z0 + wid.z;
  let aBase = z * params.aBatch;
  let bBase = z * params.bBatch;
  let mTile = (params.m0 + wid.y) * BM;
  let nTile = (params.n0 + wid.x) * BN;

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  let kBegin = z * params.kStep;
  let kEnd = min(params.K, kBegin + params.kLen);
  for (var k0 = kBegin; k0 < kEnd; k0 += BK) {
    stage(tid, aBase, bBase, mTile, nTile, k0, kEnd);
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let av = As[k * (BM / 4u) + lid.y];
      let bv = Bs[k * (BN / 4u) + lid.x];
      acc0 += av.x * bv;
      acc1 += av.y * bv;
      acc2 += av.z * bv;
      acc3 += av.w * bv;
    }
    workgroupBarrier();
  }

  let m = mTile + 4u * lid.y;
  let n = nTile + 4u * lid.x;
  // The fused epilogue's second K segment (LoRA's rank r); K2 = 0 when plain.
  for (var j = 0u; j < seg2K(); j++) {
    let av = a2Vec(m, j);
    let bv = b2Vec(j, n);
    acc0 += av.x * bv;
    acc1 += av.y * bv;
    acc2 += av.z * bv;
    acc3 += av.w * bv;
  }

  let oBase = z * params.oBatch;
  store(oBase, m, n, acc0);
  store(oBase, m + 1u, n, acc1);
  store(oBase, m + 2u, n, acc2);
  store(oBase, m + 3u, n, acc3);
}
