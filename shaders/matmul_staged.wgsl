// Staged matmul for GPUs: a workgroup tile in workgroup memory, TM×TN outputs per thread, double-buffered:
//   out[z, m, n] = alpha · Σ_k A(z, m, k) · B(z, k, n)   (+ out[z, m, n] when params.accumulate = 1)
// Same contract as matmul_tiled.wgsl (TRANS_A / TRANS_B layouts, the k range [z·kStep, min(K, z·kStep + kLen)),
// n0/m0/z0 offsets of a split grid, the epilogue hooks seg2K / a2Vec / b2Vec / biasAt appended after this file,
// b read through wAt / wQuad of lib/weight_<format>.wgsl). What differs (docs/kernels.md, "Matmul plans"):
// - WX×WY threads, each TM×TN outputs (TM, TN ∈ {4, 8}): BM = TM·WY rows, BN = TN·WX columns a workgroup; a
//   thread owns the row groups 4·(ty + r·WY) .. +3 (r < TM/4) and the column groups 4·(tx + c·WX) .. +3, so the
//   vec4 reads from workgroup memory of a quarter-warp fall on consecutive words (no bank conflicts) and the
//   8×8 case (128×128 tiles) reads 2 + 2 vec4 per k for 64 multiply-adds.
// - Loads of 4 values along the stored (contiguous) dimension: one vec4 load (A_QUAD, wQuad) where the tile is
//   inside the matrix and the operands are aligned to 4 (the wrapper's VEC_A / VEC_B: a bound as vec4<f32>, b
//   through the vec4 reader), else 4 scalar loads, clamped at the edges (k past the end reads zero).
// - Staging without bank conflicts: consecutive threads stage consecutive rows (columns) of the slice, so the
//   scalar stores that transpose a k-contiguous operand into the k-major staging fall on consecutive words
//   (matmul_tiled.wgsl's stores of 4 threads hit one bank).
// - STAGES = 2: double buffering. While the threads multiply stage s, the next k slice is already in registers
//   and is stored into stage 1 − s afterwards: one barrier per k slice instead of two.
// - The products (KTILE): kTileDirect (one f32 multiply-add per term in k order: each output is an f32 dot
//   product in k order) or kTileSliced (the f16 path, ELEM_S = f16 with shader-f16, opt-in: both operands
//   staged as f16, the products of a k slice of BK summed in f16, each slice's sums added to the f32 sums).
const TRANS_A: bool = {{TRANS_A}};
const TRANS_B: bool = {{TRANS_B}};
const WX: u32 = {{WX}}u;
const WY: u32 = {{WY}}u;
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const BK: u32 = {{BK}}u;
const STAGES: u32 = {{STAGES}}u;
const VEC_A: bool = {{VEC_A}};
const VEC_B: bool = {{VEC_B}};
const BM: u32 = TM * WY;
const BN: u32 = TN * WX;
const BM4: u32 = BM / 4u;
const BN4: u32 = BN / 4u;
const THREADS: u32 = WX * WY;
const TM4: u32 = TM / 4u;
const TN4: u32 = TN / 4u;
// vec4 units of a slice of A (BM × BK) and B (BK × BN), and how many each thread moves (the plan makes these whole).
const UA: u32 = BM * BK / 4u;
const UB: u32 = BN * BK / 4u;
const LA: u32 = (UA + THREADS - 1u) / THREADS;
const LB: u32 = (UB + THREADS - 1u) / THREADS;
const NACC: u32 = TM * TN4;

// As[stage][k][m] as vec4 over m (BM4 a row), Bs[stage][k][n] as vec4 over n.
var<workgroup> As: array<vec4<{{ELEM_S}}>, STAGES * BK * BM4>;
var<workgroup> Bs: array<vec4<{{ELEM_S}}>, STAGES * BK * BN4>;

fn aAt(i: u32) -> f32 { return {{A_AT}}; }
fn aQuad(i: u32) -> vec4<f32> { return {{A_QUAD}}; }

// 4 values of A from (row r, k) along the stored dimension: k .. k + 3 (TRANS_A false) or rows r .. r + 3 (true).
fn aFour(aBase: u32, r: u32, k: u32, kEnd: u32, inside: bool) -> vec4<f32> {
  let M = params.M;
  if (!TRANS_A) {
    if (inside) {
      let i = aBase + r * params.K + k;
      if (VEC_A) { return aQuad(i); }
      return vec4(aAt(i), aAt(i + 1u), aAt(i + 2u), aAt(i + 3u));
    }
    let o = aBase + min(r, M - 1u) * params.K;
    let kk = vec4(k, k + 1u, k + 2u, k + 3u);
    let kc = min(kk, vec4(kEnd - 1u));
    return select(vec4(0.0), vec4(aAt(o + kc.x), aAt(o + kc.y), aAt(o + kc.z), aAt(o + kc.w)), kk < vec4(kEnd));
  }
  let o = aBase + min(k, kEnd - 1u) * M;
  if (inside) {
    if (VEC_A) { return aQuad(o + r); }
    return vec4(aAt(o + r), aAt(o + r + 1u), aAt(o + r + 2u), aAt(o + r + 3u));
  }
  if (k >= kEnd) { return vec4(0.0); }
  let rc = min(vec4(r, r + 1u, r + 2u, r + 3u), vec4(M - 1u));
  return vec4(aAt(o + rc.x), aAt(o + rc.y), aAt(o + rc.z), aAt(o + rc.w));
}

// 4 values of B from (k, column c) along the stored dimension: k .. k + 3 (TRANS_B true) or columns c .. c + 3.
fn bFour(bBase: u32, c: u32, k: u32, kEnd: u32, inside: bool) -> vec4<f32> {
  let N = params.N;
  if (TRANS_B) {
    if (inside) {
      let i = bBase + c * params.K + k;
      if (VEC_B) { return wQuad(i); }
      return vec4(wAt(i), wAt(i + 1u), wAt(i + 2u), wAt(i + 3u));
    }
    let o = bBase + min(c, N - 1u) * params.K;
    let kk = vec4(k, k + 1u, k + 2u, k + 3u);
    let kc = min(kk, vec4(kEnd - 1u));
    return select(vec4(0.0), vec4(wAt(o + kc.x), wAt(o + kc.y), wAt(o + kc.z), wAt(o + kc.w)), kk < vec4(kEnd));
  }
  let o = bBase + min(k, kEnd - 1u) * N;
  if (inside) {
    if (VEC_B) { return wQuad(o + c); }
    return vec4(wAt(o + c), wAt(o + c + 1u), wAt(o + c + 2u), wAt(o + c + 3u));
  }
  if (k >= kEnd) { return vec4(0.0); }
  let cc = min(vec4(c, c + 1u, c + 2u, c + 3u), vec4(N - 1u));
  return vec4(wAt(o + cc.x), wAt(o + cc.y), wAt(o + cc.z), wAt(o + cc.w));
}

// Unit u of the A slice at (mTile, k0): (row, k) of its first value. Consecutive u: consecutive rows (k-contiguous
// A, 4 k per unit) or consecutive row quads (m-contiguous A).
fn aUnit(u: u32) -> vec2<u32> {
  if (!TRANS_A) { return vec2(u % BM, 4u * (u / BM)); }
  return vec2(4u * (u % BM4), u / BM4);
}

fn bUnit(u: u32) -> vec2<u32> {
  if (TRANS_B) { return vec2(u % BN, 4u * (u / BN)); }
  return vec2(4u * (u % BN4), u / BN4);
}

fn putA(s: u32, u: u32, v: vec4<f32>) {
  let p = aUnit(u);
  let base = s * BK * BM4;
  if (!TRANS_A) {
    // 4 k of one row: one component in each of 4 k rows; consecutive threads, consecutive rows: consecutive words.
    for (var j = 0u; j < 4u; j++) { As[base + (p.y + j) * BM4 + p.x / 4u][p.x % 4u] = {{ELEM_S}}(v[j]); }
  } else {
    As[base + p.y * BM4 + p.x / 4u] = vec4<{{ELEM_S}}>(v);
  }
}

fn putB(s: u32, u: u32, v: vec4<f32>) {
  let p = bUnit(u);
  let base = s * BK * BN4;
  if (TRANS_B) {
    for (var j = 0u; j < 4u; j++) { Bs[base + (p.y + j) * BN4 + p.x / 4u][p.x % 4u] = {{ELEM_S}}(v[j]); }
  } else {
    Bs[base + p.y * BN4 + p.x / 4u] = vec4<{{ELEM_S}}>(v);
  }
}

// The products of the staged k slice s into the thread's TM×TN sums: one multiply-add per term, in k order.
fn kTileDirect(s: u32, tx: u32, ty: u32, acc: ptr<function, array<vec4<f32>, NACC>>) {
  for (var k = 0u; k < BK; k++) {
    let ao = (s * BK + k) * BM4;
    let bo = (s * BK + k) * BN4;
    var av: array<vec4<f32>, TM4>;
    for (var r = 0u; r < TM4; r++) { av[r] = vec4<f32>(As[ao + ty + r * WY]); }
    var bv: array<vec4<f32>, TN4>;
    for (var c = 0u; c < TN4; c++) { bv[c] = vec4<f32>(Bs[bo + tx + c * WX]); }
    for (var i = 0u; i < TM; i++) {
      let x = av[i / 4u][i % 4u];
      for (var c = 0u; c < TN4; c++) { (*acc)[i * TN4 + c] += x * bv[c]; }
    }
  }
}

// The f16 path: the slice's products summed in ELEM_S (f16 fma), then added to the f32 sums once per slice.
fn kTileSliced(s: u32, tx: u32, ty: u32, acc: ptr<function, array<vec4<f32>, NACC>>) {
  var part: array<vec4<{{ELEM_S}}>, NACC>;
  for (var k = 0u; k < BK; k++) {
    let ao = (s * BK + k) * BM4;
    let bo = (s * BK + k) * BN4;
    var av: array<vec4<{{ELEM_S}}>, TM4>;
    for (var r = 0u; r < TM4; r++) { av[r] = As[ao + ty + r * WY]; }
    var bv: array<vec4<{{ELEM_S}}>, TN4>;
    for (var c = 0u; c < TN4; c++) { bv[c] = Bs[bo + tx + c * WX]; }
    for (var i = 0u; i < TM; i++) {
      let x = vec4<{{ELEM_S}}>(av[i / 4u][i % 4u]);
      for (var c = 0u; c < TN4; c++) { part[i * TN4 + c] = fma(x, bv[c], part[i * TN4 + c]); }
    }
  }
  for (var i = 0u; i < NACC; i++) { (*acc)[i] += vec4<f32>(part[i]); }
}

fn store(base: u32, m: u32, n: u32, v: vec4<f32>) {
  if (m >= params.M) { return; }
  let bv = biasAt(n);
  let o = base + m * params.N + n;
  let acc = params.accumulate != 0u;
  if (n + 3u < params.N) {
    if (acc) {
      out[o] += params.alpha * v.x + bv.x; out[o + 1u] += params.alpha * v.y + bv.y;
      out[o + 2u] += params.alpha * v.z + bv.z; out[o + 3u] += params.alpha * v.w + bv.w;
    } else {
      out[o] = params.alpha * v.x + bv.x; out[o + 1u] = params.alpha * v.y + bv.y;
      out[o + 2u] = params.alpha * v.z + bv.z; out[o + 3u] = params.alpha * v.w + bv.w;
    }
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    if (n + j < params.N) {
      if (acc) { out[o + j] += params.alpha * v[j] + bv[j]; } else { out[o + j] = params.alpha * v[j] + bv[j]; }
    }
  }
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let tx = lid.x;
  let ty = lid.y;
  let tid = ty * WX + tx;
  let z = params.z0 + wid.z;
  let aBase = z * params.aBatch;
  let bBase = z * params.bBatch;
  let mTile = (params.m0 + wid.y) * BM;
  let nTile = (params.n0 + wid.x) * BN;
  let kBegin = z * params.kStep;
  let kEnd = min(params.K, kBegin + params.kLen);
  // The tile lies inside the matrix in m and n: its slices need no clamps except in k (the last slice).
  let fullMN = mTile + BM <= params.M && nTile + BN <= params.N;

  var acc: array<vec4<f32>, NACC>;
  var ra: array<vec4<f32>, LA>;
  var rb: array<vec4<f32>, LB>;

  // The first slice into stage 0.
  var k0 = kBegin;
  if (k0 < kEnd) {
    let inside = fullMN && k0 + BK <= kEnd;
    for (var i = 0u; i < LA; i++) {
      let u = tid + i * THREADS;
      if (u < UA) { let p = aUnit(u); putA(0u, u, aFour(aBase, mTile + p.x, k0 + p.y, kEnd, inside)); }
    }
    for (var i = 0u; i < LB; i++) {
      let u = tid + i * THREADS;
      if (u < UB) { let p = bUnit(u); putB(0u, u, bFour(bBase, nTile + p.x, k0 + p.y, kEnd, inside)); }
    }
  }
  workgroupBarrier();
  var s = 0u;
  for (; k0 < kEnd; k0 += BK) {
    let next = k0 + BK;
    let more = next < kEnd;
    if (STAGES == 2u && more) {
      // Double buffering: the next slice into registers now, into the other stage after the products.
      let inside = fullMN && next + BK <= kEnd;
      for (var i = 0u; i < LA; i++) {
        let u = tid + i * THREADS;
        if (u < UA) { let p = aUnit(u); ra[i] = aFour(aBase, mTile + p.x, next + p.y, kEnd, inside); }
      }
      for (var i = 0u; i < LB; i++) {
        let u = tid + i * THREADS;
        if (u < UB) { let p = bUnit(u); rb[i] = bFour(bBase, nTile + p.x, next + p.y, kEnd, inside); }
      }
    }
    {{KTILE}}(s, tx, ty, &acc);
    if (STAGES == 2u) {
      if (more) {
        for (var i = 0u; i < LA; i++) { let u = tid + i * THREADS; if (u < UA) { putA(1u - s, u, ra[i]); } }
        for (var i = 0u; i < LB; i++) { let u = tid + i * THREADS; if (u < UB) { putB(1u - s, u, rb[i]); } }
      }
      s = 1u - s;
      workgroupBarrier();
    } else {
      workgroupBarrier();
      if (more) {
        let inside = fullMN && next + BK <= kEnd;
        for (var i = 0u; i < LA; i++) {
          let u = tid + i * THREADS;
          if (u < UA) { let p = aUnit(u); putA(0u, u, aFour(aBase, mTile + p.x, next + p.y, kEnd, inside)); }
        }
        for (var i = 0u; i < LB; i++) {
          let u = tid + i * THREADS;
          if (u < UB) { let p = bUnit(u); putB(0u, u, bFour(bBase, nTile + p.x, next + p.y, kEnd, inside)); }
        }
      }
      workgroupBarrier();
    }
  }

  // The fused epilogue's second K segment (LoRA's rank r); K2 = 0 when plain.
  for (var j = 0u; j < seg2K(); j++) {
    for (var r = 0u; r < TM4; r++) {
      let av = a2Vec(mTile + 4u * (ty + r * WY), j);
      for (var c = 0u; c < TN4; c++) {
        let bv = b2Vec(j, nTile + 4u * (tx + c * WX));
        for (var i = 0u; i < 4u; i++) { acc[(4u * r + i) * TN4 + c] += av[i] * bv; }
      }
    }
  }

  let oBase = z * params.oBatch;
  for (var r = 0u; r < TM4; r++) {
    for (var i = 0u; i < 4u; i++) {
      let m = mTile + 4u * (ty + r * WY) + i;
      for (var c = 0u; c < TN4; c++) { store(oBase, m, nTile + 4u * (tx + c * WX), acc[(4u * r + i) * TN4 + c]); }
    }
  }
}
