// Flash attention backward, dq, register-blocked variant (see flash_attention_register_forward.wgsl for why
// and for the layout). Same contract as flash_attention_backward_dq.wgsl: stats [B·H·T, 2] holds (lse, Δ)
// per query row (b·H + h)·T + t; dq += scale · Σ_s ds · k_s with p = exp(scale·q·k − lse),
// ds = p·(dOut·v − Δ). No workgroup memory and no barriers: invocation tid owns the 4 query rows
// rb·BR + 4·tid + i (BR = 4·WG) of head (b, h) and walks its visible keys in blocks of 16 (4 groups of 4):
//   S_g = Qᵀ·K_g, dP_g = dOutᵀ·V_g (4 rows × 4 keys, column = key), P_g = e^(scale·S_g − lse) where visible,
//   dS_g = P_g ⊙ (dP_g − Δ), dq += Σ_g dS_g·K_gᵀ (a private array of 4×4 blocks, rows × 4 dims).
// A row with no visible key adds nothing.
{{include:flash_register}}
{{include:flash_register_dout}}

// blockProducts' operands: 0 = q against k (scores), 1 = dOut against v (dP).
fn rowBlock(op: u32, at: vec4<u32>, d: u32) -> mat4x4<f32> {
  if (op == 0u) { return qBlock(at, d); }
  return gBlock(at, d);
}
fn colBlock(op: u32, at: vec4<u32>, d: u32) -> mat4x4<f32> {
  if (op == 0u) { return kBlock(at, d); }
  return vBlock(at, d);
}

/** dS of 4 keys s .. s + 3 (columns) for 4 rows: P = e^(scale·x − lse) where visible, (dp − Δ)·P. */
fn dScores(x: mat4x4<f32>, dp: mat4x4<f32>, b: u32, s: u32, lastKey: vec4<u32>, rowLse: vec4<f32>, delta: vec4<f32>) -> mat4x4<f32> {
  let sc = params.scale;
  let p0 = select(vec4(0.0), exp(sc * x[0] - rowLse), seen4(vec4(s), lastKey) & vec4(keyOk(b, s)));
  let p1 = select(vec4(0.0), exp(sc * x[1] - rowLse), seen4(vec4(s + 1u), lastKey) & vec4(keyOk(b, s + 1u)));
  let p2 = select(vec4(0.0), exp(sc * x[2] - rowLse), seen4(vec4(s + 2u), lastKey) & vec4(keyOk(b, s + 2u)));
  let p3 = select(vec4(0.0), exp(sc * x[3] - rowLse), seen4(vec4(s + 3u), lastKey) & vec4(keyOk(b, s + 3u)));
  return mat4x4(p0 * (dp[0] - delta), p1 * (dp[1] - delta), p2 * (dp[2] - delta), p3 * (dp[3] - delta));
}

fn flashBlock(w: u32, tid: u32) {
  let qb = queryBlock(w);
  let qq = queryQuad(qb, tid);
  if (qq.first >= params.T) { return; }
  let b = qb.b;
  let qAt = qq.qAt;
  let row = vec4((b * params.H + qb.h) * params.T) + qq.tc;
  let rowLse = vec4(stats[2u * row[0]], stats[2u * row[1]], stats[2u * row[2]], stats[2u * row[3]]);
  let delta = vec4(stats[2u * row[0] + 1u], stats[2u * row[1] + 1u], stats[2u * row[2] + 1u], stats[2u * row[3] + 1u]);
  let last = params.S - 1u;

  var acc = array<mat4x4<f32>, NC>();
  for (var s0 = 0u; s0 < qq.nKeys; s0 += 16u) {
    let a0 = rows4(qb.kBase, s0, last, qb.kvStride);
    let a1 = rows4(qb.kBase, s0 + 4u, last, qb.kvStride);
    let a2 = rows4(qb.kBase, s0 + 8u, last, qb.kvStride);
    let a3 = rows4(qb.kBase, s0 + 12u, last, qb.kvStride);
    let x = blockProducts(0u, qAt, a0, a1, a2, a3);
    let y = blockProducts(1u, qAt, a0, a1, a2, a3);
    let z0 = dScores(x.x0, y.x0, b, s0, qq.lastKey, rowLse, delta);
    let z1 = dScores(x.x1, y.x1, b, s0 + 4u, qq.lastKey, rowLse, delta);
    let z2 = dScores(x.x2, y.x2, b, s0 + 8u, qq.lastKey, rowLse, delta);
    let z3 = dScores(x.x3, y.x3, b, s0 + 12u, qq.lastKey, rowLse, delta);
    for (var c = 0u; c < NC; c++) {
      let d = 4u * c;
      acc[c] += z0 * transpose(kBlock(a0, d)) + z1 * transpose(kBlock(a1, d))
        + z2 * transpose(kBlock(a2, d)) + z3 * transpose(kBlock(a3, d));
    }
  }

  for (var i = 0u; i < 4u; i++) {
    if (qq.t[i] < params.T) {
      for (var c = 0u; c < NC; c++) {
        let ac = acc[c];
        for (var j = 0u; j < 4u; j++) {
          let d = 4u * c + j;
          if (d < HD) { dq[qAt[i] + d] += params.scale * ac[j][i]; }
        }
      }
    }
  }
}
