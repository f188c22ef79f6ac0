// Register-blocked matmul whose four invocations of a quad share what they load (needs `enable subgroups;`):
//   out[z, m, n] = alpha · Σ_k A(z, m, k) · B(z, k, n)   (+ out[z, m, n] when params.accumulate = 1)
// TRANS_A = false: a holds [M, K] (k contiguous); true: [K, M] (m contiguous).
// TRANS_B = false: b holds [K, N] (n contiguous); true: [N, K] (k contiguous).
// The k range is [z·kStep, min(K, z·kStep + kLen)): kStep = 0, kLen = K for a whole product (z is then the
// batch), kStep = kLen = chunk for split-K (z is then the chunk, and out a [chunks, M, N] partial buffer).
//
// Why this shape (SwiftShader, a CPU implementation of WebGPU, is what it was tuned on): SwiftShader runs 4
// invocations as the 4 lanes of a SIMD vector, and every load from a storage buffer is a per-lane gather that
// costs tens of instructions, whatever the addresses; barriers are costlier still. So the kernel keeps big
// blocks in registers, uses no workgroup memory, and has each lane load only half of the A rows and half of
// the B columns it needs: a quad computes a 32×32 block of out, lane (x, y) = (lane & 1, lane >> 1) the
// 16×16 block at rows 16y.., columns 16x..; lanes with the same y need the same A rows and load 8 each
// (quadSwapX gives each the other 8), lanes with the same x need the same B columns (quadSwapY). Per 4 k a
// lane loads 64 values for 1024 multiply-adds; a quad swap is a register shuffle. Loads are scalar, so any
// M, N, K works (rows/columns past the edge are read clamped and never written, k past the end as zero).
// 8 k per loop iteration halves the per-iteration cost of SwiftShader's masked loop-carried values.
//
// The epilogue hooks (seg2K, a2Block, b2Block, biasAt) come from matmul_epilogue_none.wgsl (plain) or
// matmul_epilogue_fused.wgsl (a second short K segment and a bias, for LoRA: see there), appended to this file.
//
// Quads are 4 consecutive subgroup invocations (subgroup_invocation_id & 3); the quad's tile comes from
// local_invocation_index / 4, which assumes that a 1-D workgroup's invocations fill subgroups in order (true
// on SwiftShader and the GPUs we know of; matmul.test.ts checks every output).
const TRANS_A: bool = {{TRANS_A}};
const TRANS_B: bool = {{TRANS_B}};
const QX: u32 = {{QX}}u;
const QY: u32 = {{QY}}u;
const BM: u32 = 32u * QY;
const BN: u32 = 32u * QX;

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

fn swapX(v: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4(quadSwapX(v[0]), quadSwapX(v[1]), quadSwapX(v[2]), quadSwapX(v[3]));
}

fn swapY(v: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4(quadSwapY(v[0]), quadSwapY(v[1]), quadSwapY(v[2]), quadSwapY(v[3]));
}

// Writes rows m..m+3, columns n..n+3 of out from c (c[i] = row m + i). A block inside the matrix takes the
// fast path: one bounds test, one accumulate test.
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

@compute @workgroup_size(4u * QX * QY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lidx: u32,
        @builtin(subgroup_invocation_id) sgid: u32) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let q = lidx / 4u;
  let lane = sgid & 3u;
  let x = lane & 1u;
  let y = lane >> 1u;
  let z = params.z0 + wid.z;
  let mQ = (params.m0 + wid.y) * BM + 32u * (q / QX);
  let nQ = (params.n0 + wid.x) * BN + 32u * (q % QX);
  // This lane's rows: the 8 it loads (mO..) and the 8 its x-partner loads (mX..); columns likewise.
  let mO = mQ + 16u * y + 8u * x;
  let mX = mQ + 16u * y + 8u * (1u - x);
  let nO = nQ + 16u * x + 8u * y;
  let nX = nQ + 16u * x + 8u * (1u - y);
  // Element (row m, k) of A is a[aBase + m·ra + k·sa]; element (k, column n) of B is b[bBase + n·rb + k·sb].
  let sa = select(1u, M, TRANS_A);
  let ra = select(K, 1u, TRANS_A);
  let sb = select(N, 1u, TRANS_B);
  let rb = select(1u, K, TRANS_B);
  let aBase = z * params.aBatch;
  let bBase = z * params.bBatch;
  let rows = vec4(mO, mO + 1u, mO + 2u, mO + 3u);
  let cols = vec4(nO, nO + 1u, nO + 2u, nO + 3u);
  let oa0 = aBase + min(rows, vec4(M - 1u)) * ra;
  let oa1 = aBase + min(rows + 4u, vec4(M - 1u)) * ra;
  let ob0 = bBase + min(cols, vec4(N - 1u)) * rb;
  let ob1 = bBase + min(cols + 4u, vec4(N - 1u)) * rb;
  let kBegin = z * params.kStep;
  let kEnd = min(K, kBegin + params.kLen);
  let kMain = kBegin + ((max(kEnd, kBegin) - kBegin) & ~7u);

  // cRC_ij: rows (R = own O / partner's X) block i, columns (C) block j.
  var cOO00 = mat4x4<f32>(); var cOO01 = mat4x4<f32>(); var cOO10 = mat4x4<f32>(); var cOO11 = mat4x4<f32>();
  var cOX00 = mat4x4<f32>(); var cOX01 = mat4x4<f32>(); var cOX10 = mat4x4<f32>(); var cOX11 = mat4x4<f32>();
  var cXO00 = mat4x4<f32>(); var cXO01 = mat4x4<f32>(); var cXO10 = mat4x4<f32>(); var cXO11 = mat4x4<f32>();
  var cXX00 = mat4x4<f32>(); var cXX01 = mat4x4<f32>(); var cXX10 = mat4x4<f32>(); var cXX11 = mat4x4<f32>();
  var k = kBegin;
  for (; k < kMain; k += 8u) {
    {
      let aO0 = aBlock(oa0, k, sa);
      let aO1 = aBlock(oa1, k, sa);
      let bO0 = bBlock(ob0, k, sb);
      let bO1 = bBlock(ob1, k, sb);
      let aX0 = swapX(aO0);
      let aX1 = swapX(aO1);
      let bX0 = swapY(bO0);
      let bX1 = swapY(bO1);
      cOO00 += bO0 * aO0; cOO01 += bO1 * aO0; cOO10 += bO0 * aO1; cOO11 += bO1 * aO1;
      cOX00 += bX0 * aO0; cOX01 += bX1 * aO0; cOX10 += bX0 * aO1; cOX11 += bX1 * aO1;
      cXO00 += bO0 * aX0; cXO01 += bO1 * aX0; cXO10 += bO0 * aX1; cXO11 += bO1 * aX1;
      cXX00 += bX0 * aX0; cXX01 += bX1 * aX0; cXX10 += bX0 * aX1; cXX11 += bX1 * aX1;
    }
    {
      let k4 = k + 4u;
      let aO0 = aBlock(oa0, k4, sa);
      let aO1 = aBlock(oa1, k4, sa);
      let bO0 = bBlock(ob0, k4, sb);
      let bO1 = bBlock(ob1, k4, sb);
      let aX0 = swapX(aO0);
      let aX1 = swapX(aO1);
      let bX0 = swapY(bO0);
      let bX1 = swapY(bO1);
      cOO00 += bO0 * aO0; cOO01 += bO1 * aO0; cOO10 += bO0 * aO1; cOO11 += bO1 * aO1;
      cOX00 += bX0 * aO0; cOX01 += bX1 * aO0; cOX10 += bX0 * aO1; cOX11 += bX1 * aO1;
      cXO00 += bO0 * aX0; cXO01 += bO1 * aX0; cXO10 += bO0 * aX1; cXO11 += bO1 * aX1;
      cXX00 += bX0 * aX0; cXX01 += bX1 * aX0; cXX10 += bX0 * aX1; cXX11 += bX1 * aX1;
    }
  }
  // Up to 7 k remain: one or two masked blocks (the condition is the same for the whole quad).
  for (; k < kEnd; k += 4u) {
    let aO0 = aBlockMasked(oa0, k, sa, kEnd);
    let aO1 = aBlockMasked(oa1, k, sa, kEnd);
    let bO0 = bBlockMasked(ob0, k, sb, kEnd);
    let bO1 = bBlockMasked(ob1, k, sb, kEnd);
    let aX0 = swapX(aO0);
    let aX1 = swapX(aO1);
    let bX0 = swapY(bO0);
    let bX1 = swapY(bO1);
    cOO00 += bO0 * aO0; cOO01 += bO1 * aO0; cOO10 += bO0 * aO1; cOO11 += bO1 * aO1;
    cOX00 += bX0 * aO0; cOX01 += bX1 * aO0; cOX10 += bX0 * aO1; cOX11 += bX1 * aO1;
    cXO00 += bO0 * aX0; cXO01 += bO1 * aX0; cXO10 += bO0 * aX1; cXO11 += bO1 * aX1;
    cXX00 += bX0 * aX0; cXX01 += bX1 * aX0; cXX10 += bX0 * aX1; cXX11 += bX1 * aX1;
  }
  // The fused epilogue's second K segment (LoRA's rank r), into the same accumulators; K2 = 0 when plain.
  for (var j = 0u; j < seg2K(); j += 4u) {
    let aO0 = a2Block(rows, j);
    let aO1 = a2Block(rows + 4u, j);
    let bO0 = b2Block(cols, j);
    let bO1 = b2Block(cols + 4u, j);
    let aX0 = swapX(aO0);
    let aX1 = swapX(aO1);
    let bX0 = swapY(bO0);
    let bX1 = swapY(bO1);
    cOO00 += bO0 * aO0; cOO01 += bO1 * aO0; cOO10 += bO0 * aO1; cOO11 += bO1 * aO1;
    cOX00 += bX0 * aO0; cOX01 += bX1 * aO0; cOX10 += bX0 * aO1; cOX11 += bX1 * aO1;
    cXO00 += bO0 * aX0; cXO01 += bO1 * aX0; cXO10 += bO0 * aX1; cXO11 += bO1 * aX1;
    cXX00 += bX0 * aX0; cXX01 += bX1 * aX0; cXX10 += bX0 * aX1; cXX11 += bX1 * aX1;
  }

  let oBase = z * params.oBatch;
  store(oBase, mO, nO, cOO00); store(oBase, mO, nO + 4u, cOO01);
  store(oBase, mO + 4u, nO, cOO10); store(oBase, mO + 4u, nO + 4u, cOO11);
  store(oBase, mO, nX, cOX00); store(oBase, mO, nX + 4u, cOX01);
  store(oBase, mO + 4u, nX, cOX10); store(oBase, mO + 4u, nX + 4u, cOX11);
  store(oBase, mX, nO, cXO00); store(oBase, mX, nO + 4u, cXO01);
  store(oBase, mX + 4u, nO, cXO10); store(oBase, mX + 4u, nO + 4u, cXO11);
  store(oBase, mX, nX, cXX00); store(oBase, mX, nX + 4u, cXX01);
  store(oBase, mX + 4u, nX, cXX10); store(oBase, mX + 4u, nX + 4u, cXX11);
}
