// Flash attention forward, register-blocked variant (for SwiftShader, where every load is a gather, every
// barrier a coroutine switch and a dynamically indexed private array a per-lane loop, but 4×4 matrix products
// on named values run at full speed). Same contract, visibility and outputs as flash_attention_forward.wgsl.
// No workgroup memory and no barriers: invocation tid of workgroup w owns the 4 query rows
// t = rb·BR + 4·tid + i (i < 4, BR = 4·WG) of head (b, h), row block rb = nRowBlocks − 1 − w % nRowBlocks
// (the longest rows first), (b, h) = w / nRowBlocks, and walks its keys in blocks of 16 (4 groups of 4) up
// to the last key its last row sees, with an online softmax:
//   S_g (4 rows × 4 keys, column = key) = Σ_chunks Qᵀ·K_g over the head dim in chunks of 4;
//   m' = max(m, row max), P_g = e^(S_g − m'), l = l·e^(m−m') + Σ P_g, O = O·e^(m−m') + Σ_g P_g·V_gᵀ.
// K and V come straight from the storage buffers (the cache holds them: every invocation of the head reads
// the same ones). O lives in a private array of 4×4 blocks (rows × 4 dims), one read-modify-write per chunk
// per 16 keys. A row with no visible key writes out = 0 and lse = {{EMPTY_LSE}}.
{{include:flash_register}}

const NEG_BIG = -3.0e38;
const HIDDEN = -1.0e38;  // scores at or below this are not visible

/** Scaled scores of 4 keys s .. s + 3 (columns) for the 4 rows whose last visible key is lastKey (vec4 over rows). */
fn visibleScores(x: mat4x4<f32>, b: u32, s: u32, lastKey: vec4<u32>) -> mat4x4<f32> {
  let y = x * params.scale;
  return mat4x4(
    select(vec4(NEG_BIG), y[0], seen4(vec4(s), lastKey) & vec4(keyOk(b, s))),
    select(vec4(NEG_BIG), y[1], seen4(vec4(s + 1u), lastKey) & vec4(keyOk(b, s + 1u))),
    select(vec4(NEG_BIG), y[2], seen4(vec4(s + 2u), lastKey) & vec4(keyOk(b, s + 2u))),
    select(vec4(NEG_BIG), y[3], seen4(vec4(s + 3u), lastKey) & vec4(keyOk(b, s + 3u))));
}

// blockProducts' operands: q against k.
fn rowBlock(op: u32, at: vec4<u32>, d: u32) -> mat4x4<f32> { return qBlock(at, d); }
fn colBlock(op: u32, at: vec4<u32>, d: u32) -> mat4x4<f32> { return kBlock(at, d); }

fn colMax(x: mat4x4<f32>) -> vec4<f32> { return max(max(x[0], x[1]), max(x[2], x[3])); }
fn colSum(x: mat4x4<f32>) -> vec4<f32> { return x[0] + x[1] + x[2] + x[3]; }

/** e^(x − m) per column, 0 where x is hidden. */
fn probs(x: mat4x4<f32>, m: vec4<f32>) -> mat4x4<f32> {
  return mat4x4(
    select(vec4(0.0), exp(x[0] - m), x[0] > vec4(HIDDEN)),
    select(vec4(0.0), exp(x[1] - m), x[1] > vec4(HIDDEN)),
    select(vec4(0.0), exp(x[2] - m), x[2] > vec4(HIDDEN)),
    select(vec4(0.0), exp(x[3] - m), x[3] > vec4(HIDDEN)));
}

fn flashBlock(w: u32, tid: u32) {
  let qb = queryBlock(w);
  let qq = queryQuad(qb, tid);
  if (qq.first >= params.T) { return; }
  let b = qb.b;
  let t = qq.t;
  let qAt = qq.qAt;
  let lastKey = qq.lastKey;  // row i sees keys s ≤ lastKey[i]
  let last = params.S - 1u;

  var o = array<mat4x4<f32>, NC>();
  var m = vec4(NEG_BIG);
  var l = vec4(0.0);
  for (var s0 = 0u; s0 < qq.nKeys; s0 += 16u) {
    // Keys past S (only in the last block) are clamped here and hidden by visibleScores.
    let a0 = rows4(qb.kBase, s0, last, qb.kvStride);
    let a1 = rows4(qb.kBase, s0 + 4u, last, qb.kvStride);
    let a2 = rows4(qb.kBase, s0 + 8u, last, qb.kvStride);
    let a3 = rows4(qb.kBase, s0 + 12u, last, qb.kvStride);
    let qk = blockProducts(0u, qAt, a0, a1, a2, a3);
    let x0 = visibleScores(qk.x0, b, s0, lastKey);
    let x1 = visibleScores(qk.x1, b, s0 + 4u, lastKey);
    let x2 = visibleScores(qk.x2, b, s0 + 8u, lastKey);
    let x3 = visibleScores(qk.x3, b, s0 + 12u, lastKey);
    let mNew = max(m, max(max(colMax(x0), colMax(x1)), max(colMax(x2), colMax(x3))));
    let alpha = exp(m - mNew);
    let p0 = probs(x0, mNew);
    let p1 = probs(x1, mNew);
    let p2 = probs(x2, mNew);
    let p3 = probs(x3, mNew);
    l = l * alpha + (colSum(p0) + colSum(p1)) + (colSum(p2) + colSum(p3));
    m = mNew;
    for (var c = 0u; c < NC; c++) {
      let d = 4u * c;
      let oc = o[c];
      o[c] = mat4x4(oc[0] * alpha, oc[1] * alpha, oc[2] * alpha, oc[3] * alpha)
        + p0 * transpose(vBlock(a0, d)) + p1 * transpose(vBlock(a1, d))
        + p2 * transpose(vBlock(a2, d)) + p3 * transpose(vBlock(a3, d));
    }
  }

  let empty = l == vec4(0.0);
  let inv = select(1.0 / l, vec4(0.0), empty);
  let rowLse = select(m + log(select(l, vec4(1.0), empty)), vec4({{EMPTY_LSE}}), empty);
  for (var i = 0u; i < 4u; i++) {
    if (t[i] < params.T) {
      for (var c = 0u; c < NC; c++) {
        let oc = o[c];
        for (var j = 0u; j < 4u; j++) {
          let d = 4u * c + j;
          if (d < HD) { out[qAt[i] + d] = oc[j][i] * inv[i]; }
        }
      }
      lse[(b * params.H + qb.h) * params.T + t[i]] = rowLse[i];
    }
  }
}
