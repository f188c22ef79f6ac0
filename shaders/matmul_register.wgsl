// Register-blocked matmul without workgroup memory or subgroup operations (same contract as matmul_quad.wgsl):
//   out[z, m, n] = alpha · Σ_k A(z, m, k) · B(z, k, n)   (+ out[z, m, n] when params.accumulate = 1)
// TRANS_A, TRANS_B: the layouts of a and b (lib/matmul_blocks.wgsl, which holds the loads and the store).
// The k range is [z·kStep, min(K, z·kStep + kLen)): kStep = 0, kLen = K for a whole product (z is the batch),
// kStep = kLen = chunk for split-K (z is the chunk, out a [chunks, M, N] partial buffer).
// Each invocation computes a 16×16 block of out in registers, reading its 16 rows of A and 16 columns of B
// straight from the storage buffers: per 4 k, 128 scalar loads for 1024 multiply-adds. No barriers and no
// workgroup memory: on SwiftShader (WebGPU on the CPU, 4 invocations per SIMD vector) every load is a
// per-lane gather and every barrier a context switch, and big register blocks are what pay. (Where the
// adapter has subgroups, matmul_quad.wgsl halves the loads by sharing them within a quad.) Loads are
// scalar, so any M, N, K works: rows/columns past the edge are read clamped and never written, k past the
// end reads as zero. 8 k per loop iteration halve the cost of SwiftShader's masked loop-carried values.
{{include:matmul_blocks}}

const WX: u32 = {{WX}}u;
const WY: u32 = {{WY}}u;
const BM: u32 = 16u * WY;
const BN: u32 = 16u * WX;

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let z = params.z0 + wid.z;
  let m = (params.m0 + wid.y) * BM + 16u * lid.y;
  let n = (params.n0 + wid.x) * BN + 16u * lid.x;
  let op = operands(z);
  let sa = op.sa;
  let sb = op.sb;
  let kEnd = op.kEnd;
  let rows = vec4(m, m + 1u, m + 2u, m + 3u);
  let cols = vec4(n, n + 1u, n + 2u, n + 3u);
  let oa0 = aRows(op, rows);
  let oa1 = aRows(op, rows + 4u);
  let oa2 = aRows(op, rows + 8u);
  let oa3 = aRows(op, rows + 12u);
  let ob0 = bCols(op, cols);
  let ob1 = bCols(op, cols + 4u);
  let ob2 = bCols(op, cols + 8u);
  let ob3 = bCols(op, cols + 12u);

  // cij: rows m + 4i.., columns n + 4j..
  var c00 = mat4x4<f32>(); var c01 = mat4x4<f32>(); var c02 = mat4x4<f32>(); var c03 = mat4x4<f32>();
  var c10 = mat4x4<f32>(); var c11 = mat4x4<f32>(); var c12 = mat4x4<f32>(); var c13 = mat4x4<f32>();
  var c20 = mat4x4<f32>(); var c21 = mat4x4<f32>(); var c22 = mat4x4<f32>(); var c23 = mat4x4<f32>();
  var c30 = mat4x4<f32>(); var c31 = mat4x4<f32>(); var c32 = mat4x4<f32>(); var c33 = mat4x4<f32>();
  var k = op.kBegin;
  for (; k < op.kMain; k += 8u) {
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
