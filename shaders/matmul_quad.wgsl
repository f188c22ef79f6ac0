// Register-blocked matmul whose four invocations of a quad share what they load (needs `enable subgroups;`):
//   out[z, m, n] = alpha · Σ_k A(z, m, k) · B(z, k, n)   (+ out[z, m, n] when params.accumulate = 1)
// TRANS_A, TRANS_B: the layouts of a and b (lib/matmul_blocks.wgsl, which holds the loads and the store).
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
{{include:matmul_blocks}}

const QX: u32 = {{QX}}u;
const QY: u32 = {{QY}}u;
const BM: u32 = 32u * QY;
const BN: u32 = 32u * QX;

fn swapX(v: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4(quadSwapX(v[0]), quadSwapX(v[1]), quadSwapX(v[2]), quadSwapX(v[3]));
}

fn swapY(v: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4(quadSwapY(v[0]), quadSwapY(v[1]), quadSwapY(v[2]), quadSwapY(v[3]));
}

@compute @workgroup_size(4u * QX * QY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lidx: u32,
        @builtin(subgroup_invocation_id) sgid: u32) {
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
  let op = operands(z);
  let sa = op.sa;
  let sb = op.sb;
  let kEnd = op.kEnd;
  let rows = vec4(mO, mO + 1u, mO + 2u, mO + 3u);
  let cols = vec4(nO, nO + 1u, nO + 2u, nO + 3u);
  let oa0 = aRows(op, rows);
  let oa1 = aRows(op, rows + 4u);
  let ob0 = bCols(op, cols);
  let ob1 = bCols(op, cols + 4u);

  // cRC_ij: rows (R = own O / partner's X) block i, columns (C) block j.
  var cOO00 = mat4x4<f32>(); var cOO01 = mat4x4<f32>(); var cOO10 = mat4x4<f32>(); var cOO11 = mat4x4<f32>();
  var cOX00 = mat4x4<f32>(); var cOX01 = mat4x4<f32>(); var cOX10 = mat4x4<f32>(); var cOX11 = mat4x4<f32>();
  var cXO00 = mat4x4<f32>(); var cXO01 = mat4x4<f32>(); var cXO10 = mat4x4<f32>(); var cXO11 = mat4x4<f32>();
  var cXX00 = mat4x4<f32>(); var cXX01 = mat4x4<f32>(); var cXX10 = mat4x4<f32>(); var cXX11 = mat4x4<f32>();
  var k = op.kBegin;
  for (; k < op.kMain; k += 8u) {
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
