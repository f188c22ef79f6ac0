// Flash attention backward, dk and dv, register-blocked variant (see flash_attention_register_forward.wgsl for
// why). Same contract as flash_attention_backward_dkdv.wgsl. No workgroup memory and no barriers: invocation
// tid owns the 4 keys s = kb·BC + 4·tid + i (BC = 4·WG) of (b, kv head kh), key block kb = w % nKeyBlocks
// (the earliest keys, seen by the most queries, first), (b, kh) = w / nKeyBlocks. For each query head of the
// group it walks the queries that see its first key in blocks of 16 (4 groups of 4):
//   Sᵀ_g = Kᵀ·Q_g, dPᵀ_g = Vᵀ·dOut_g (4 keys × 4 queries, column = query), Pᵀ_g = e^(scale·Sᵀ_g − lse) where
//   visible, dSᵀ_g = Pᵀ_g ⊙ (dPᵀ_g − Δ), dv += Σ_g Pᵀ_g·dOut_gᵀ, dk += Σ_g dSᵀ_g·Q_gᵀ
// (private arrays of 4×4 blocks, keys × 4 dims). dk gets the factor scale at the end. Each key row is written
// by exactly one invocation: no atomics.
{{include:flash_register}}
{{include:flash_register_dout}}

const BC = 4u * WG;

// blockProducts' operands: 0 = k against q (Sᵀ), 1 = v against dOut (dPᵀ).
fn rowBlock(op: u32, at: vec4<u32>, d: u32) -> mat4x4<f32> {
  if (op == 0u) { return kBlock(at, d); }
  return vBlock(at, d);
}
fn colBlock(op: u32, at: vec4<u32>, d: u32) -> mat4x4<f32> {
  if (op == 0u) { return qBlock(at, d); }
  return gBlock(at, d);
}

struct PdS {
  p: mat4x4<f32>,
  ds: mat4x4<f32>,
}

struct PdSCol {
  p: vec4<f32>,
  ds: vec4<f32>,
}

/** Column tt (a query) of Pᵀ and dSᵀ for the 4 keys s (vec4), those keys' visibility in keysOk. */
fn probsCol(x: vec4<f32>, dp: vec4<f32>, tt: u32, s: vec4<u32>, keysOk: vec4<bool>, base: u32) -> PdSCol {
  let T = params.T;
  let row = base + min(tt, T - 1u);
  let visible = keysOk & seen4(s, vec4(tt + params.S - T)) & vec4(tt < T);
  let p = select(vec4(0.0), exp(params.scale * x - stats[2u * row]), visible);
  return PdSCol(p, p * (dp - stats[2u * row + 1u]));
}

/** Pᵀ and dSᵀ of the 4 queries t .. t + 3 (columns) for the 4 keys s; base = (b·H + hq)·T. */
fn probsT(x: mat4x4<f32>, dp: mat4x4<f32>, t: u32, s: vec4<u32>, keysOk: vec4<bool>, base: u32) -> PdS {
  let c0 = probsCol(x[0], dp[0], t, s, keysOk, base);
  let c1 = probsCol(x[1], dp[1], t + 1u, s, keysOk, base);
  let c2 = probsCol(x[2], dp[2], t + 2u, s, keysOk, base);
  let c3 = probsCol(x[3], dp[3], t + 3u, s, keysOk, base);
  return PdS(mat4x4(c0.p, c1.p, c2.p, c3.p), mat4x4(c0.ds, c1.ds, c2.ds, c3.ds));
}

fn flashBlock(w: u32, tid: u32) {
  let kv = keyBlock(w);
  let T = params.T;
  let S = params.S;
  let H = params.H;
  let b = kv.b;
  let sFirst = kv.kb * BC + 4u * tid;
  if (sFirst >= S) { return; }
  let s = vec4(sFirst) + vec4(0u, 1u, 2u, 3u);
  let sc = min(s, vec4(S - 1u));
  let kAt = vec4(kv.kBase) + sc * kv.kvStride;
  var keysOk = s < vec4(S);
  if (params.hasMask != 0u) {
    let mb = b * S;
    keysOk &= vec4(keyMask[mb + sc[0]], keyMask[mb + sc[1]], keyMask[mb + sc[2]], keyMask[mb + sc[3]]) != vec4(0);
  }
  // The first query that sees key sFirst: t ≥ sFirst − (S − T).
  let tStart = select(0u, sFirst - kv.off, sFirst > kv.off);

  var dkAcc = array<mat4x4<f32>, NC>();
  var dvAcc = array<mat4x4<f32>, NC>();
  for (var g = 0u; g < kv.group; g++) {
    let hq = kv.kh * kv.group + g;
    let qRow0 = (b * T) * H + hq;  // element of (b, t, hq) = (qRow0 + t·H)·HD
    for (var t0 = tStart; t0 < T; t0 += 16u) {
      let r0 = rows4(qRow0, t0, T - 1u, H) * HD;
      let r1 = rows4(qRow0, t0 + 4u, T - 1u, H) * HD;
      let r2 = rows4(qRow0, t0 + 8u, T - 1u, H) * HD;
      let r3 = rows4(qRow0, t0 + 12u, T - 1u, H) * HD;
      let x = blockProducts(0u, kAt, r0, r1, r2, r3);
      let y = blockProducts(1u, kAt, r0, r1, r2, r3);
      let base = (b * H + hq) * T;
      let z0 = probsT(x.x0, y.x0, t0, s, keysOk, base);
      let z1 = probsT(x.x1, y.x1, t0 + 4u, s, keysOk, base);
      let z2 = probsT(x.x2, y.x2, t0 + 8u, s, keysOk, base);
      let z3 = probsT(x.x3, y.x3, t0 + 12u, s, keysOk, base);
      for (var c = 0u; c < NC; c++) {
        let d = 4u * c;
        let g0 = transpose(gBlock(r0, d));
        let g1 = transpose(gBlock(r1, d));
        let g2 = transpose(gBlock(r2, d));
        let g3 = transpose(gBlock(r3, d));
        dvAcc[c] += z0.p * g0 + z1.p * g1 + z2.p * g2 + z3.p * g3;
        let q0 = transpose(qBlock(r0, d));
        let q1 = transpose(qBlock(r1, d));
        let q2 = transpose(qBlock(r2, d));
        let q3 = transpose(qBlock(r3, d));
        dkAcc[c] += z0.ds * q0 + z1.ds * q1 + z2.ds * q2 + z3.ds * q3;
      }
    }
  }

  for (var i = 0u; i < 4u; i++) {
    if (s[i] < S) {
      for (var c = 0u; c < NC; c++) {
        let kc = dkAcc[c];
        let vc = dvAcc[c];
        for (var j = 0u; j < 4u; j++) {
          let d = 4u * c + j;
          if (d < HD) {
            dk[kAt[i] + d] += params.scale * kc[j][i];
            dv[kAt[i] + d] += vc[j][i];
          }
        }
      }
    }
  }
}
