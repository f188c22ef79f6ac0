// Flash attention backward, dk and dv, register-blocked variant (see flash_attention_register_forward.wgsl for
// why). Same contract as flash_attention_backward_dkdv.wgsl. No workgroup memory and no barriers: invocation
// tid owns the 4 keys s = kb·BC + 4·tid + i (BC = 4·WG) of (b, kv head kh), key block kb = w % nKeyBlocks
// (the earliest keys, seen by the most queries, first), (b, kh) = w / nKeyBlocks. For each query head of the
// group it walks the queries that see its first key in blocks of 16 (4 groups of 4):
//   Sᵀ_g = Kᵀ·Q_g, dPᵀ_g = Vᵀ·dOut_g (4 keys × 4 queries, column = query), Pᵀ_g = e^(scale·Sᵀ_g − lse) where
//   visible, dSᵀ_g = Pᵀ_g ⊙ (dPᵀ_g − Δ), dv += Σ_g Pᵀ_g·dOut_gᵀ, dk += Σ_g dSᵀ_g·Q_gᵀ
// (private arrays of 4×4 blocks, keys × 4 dims). dk gets the factor scale at the end. Each key row is written
// by exactly one invocation: no atomics.
const HD = {{HD}}u;
const NC = {{NC}}u;
const WG = {{WG}}u;
const BC = 4u * WG;

fn q4(at: u32, dim: u32) -> vec4<f32> {
  if (HD % 4u == 0u) { return vec4(q[at], q[at + 1u], q[at + 2u], q[at + 3u]); }
  return vec4(q[at], select(0.0, q[at + 1u], dim + 1u < HD), select(0.0, q[at + 2u], dim + 2u < HD), select(0.0, q[at + 3u], dim + 3u < HD));
}
fn g4(at: u32, dim: u32) -> vec4<f32> {
  if (HD % 4u == 0u) { return vec4(dOut[at], dOut[at + 1u], dOut[at + 2u], dOut[at + 3u]); }
  return vec4(dOut[at], select(0.0, dOut[at + 1u], dim + 1u < HD), select(0.0, dOut[at + 2u], dim + 2u < HD), select(0.0, dOut[at + 3u], dim + 3u < HD));
}
fn k4(at: u32, dim: u32) -> vec4<f32> {
  if (HD % 4u == 0u) { return vec4(k[at], k[at + 1u], k[at + 2u], k[at + 3u]); }
  return vec4(k[at], select(0.0, k[at + 1u], dim + 1u < HD), select(0.0, k[at + 2u], dim + 2u < HD), select(0.0, k[at + 3u], dim + 3u < HD));
}
fn v4(at: u32, dim: u32) -> vec4<f32> {
  if (HD % 4u == 0u) { return vec4(v[at], v[at + 1u], v[at + 2u], v[at + 3u]); }
  return vec4(v[at], select(0.0, v[at + 1u], dim + 1u < HD), select(0.0, v[at + 2u], dim + 2u < HD), select(0.0, v[at + 3u], dim + 3u < HD));
}

fn qBlock(at: vec4<u32>, d: u32) -> mat4x4<f32> {
  return mat4x4(q4(at[0] + d, d), q4(at[1] + d, d), q4(at[2] + d, d), q4(at[3] + d, d));
}
fn gBlock(at: vec4<u32>, d: u32) -> mat4x4<f32> {
  return mat4x4(g4(at[0] + d, d), g4(at[1] + d, d), g4(at[2] + d, d), g4(at[3] + d, d));
}
fn kBlock(at: vec4<u32>, d: u32) -> mat4x4<f32> {
  return mat4x4(k4(at[0] + d, d), k4(at[1] + d, d), k4(at[2] + d, d), k4(at[3] + d, d));
}
fn vBlock(at: vec4<u32>, d: u32) -> mat4x4<f32> {
  return mat4x4(v4(at[0] + d, d), v4(at[1] + d, d), v4(at[2] + d, d), v4(at[3] + d, d));
}

struct PdS {
  p: mat4x4<f32>,
  ds: mat4x4<f32>,
}

struct PdSCol {
  p: vec4<f32>,
  ds: vec4<f32>,
}

/** Column tt (a query) of Pᵀ and dSᵀ for the 4 keys s (vec4), those keys' visibility in keyOk. */
fn probsCol(x: vec4<f32>, dp: vec4<f32>, tt: u32, s: vec4<u32>, keyOk: vec4<bool>, base: u32) -> PdSCol {
  let T = params.T;
  let row = base + min(tt, T - 1u);
  let visible = keyOk & (s <= vec4(tt + params.S - T)) & vec4(tt < T);
  let p = select(vec4(0.0), exp(params.scale * x - stats[2u * row]), visible);
  return PdSCol(p, p * (dp - stats[2u * row + 1u]));
}

/** Pᵀ and dSᵀ of the 4 queries t .. t + 3 (columns) for the 4 keys s; base = (b·H + hq)·T. */
fn probsT(x: mat4x4<f32>, dp: mat4x4<f32>, t: u32, s: vec4<u32>, keyOk: vec4<bool>, base: u32) -> PdS {
  let c0 = probsCol(x[0], dp[0], t, s, keyOk, base);
  let c1 = probsCol(x[1], dp[1], t + 1u, s, keyOk, base);
  let c2 = probsCol(x[2], dp[2], t + 2u, s, keyOk, base);
  let c3 = probsCol(x[3], dp[3], t + 3u, s, keyOk, base);
  return PdS(mat4x4(c0.p, c1.p, c2.p, c3.p), mat4x4(c0.ds, c1.ds, c2.ds, c3.ds));
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) tid: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= params.nWork) { return; }
  let T = params.T;
  let S = params.S;
  let H = params.H;
  let Hkv = params.Hkv;
  let nKB = params.nBlocks;
  let kb = w % nKB;
  let bkh = w / nKB;
  let kh = bkh % Hkv;
  let b = bkh / Hkv;
  let group = H / Hkv;
  let off = S - T;
  let sFirst = kb * BC + 4u * tid;
  if (sFirst >= S) { return; }
  let s = vec4(sFirst) + vec4(0u, 1u, 2u, 3u);
  let sc = min(s, vec4(S - 1u));
  let kvStride = Hkv * HD;
  let kAt = vec4(b * S * kvStride + kh * HD) + sc * kvStride;
  var keyOk = s < vec4(S);
  if (params.hasMask != 0u) {
    let mb = b * S;
    keyOk &= vec4(keyMask[mb + sc[0]], keyMask[mb + sc[1]], keyMask[mb + sc[2]], keyMask[mb + sc[3]]) != vec4(0);
  }
  // The first query that sees key sFirst: t ≥ sFirst − (S − T).
  let tStart = select(0u, sFirst - off, sFirst > off);

  var dkAcc = array<mat4x4<f32>, NC>();
  var dvAcc = array<mat4x4<f32>, NC>();
  for (var g = 0u; g < group; g++) {
    let hq = kh * group + g;
    let qRow0 = (b * T) * H + hq;  // element of (b, t, hq) = (qRow0 + t·H)·HD
    for (var t0 = tStart; t0 < T; t0 += 16u) {
      let r0 = (vec4(qRow0) + min(vec4(t0) + vec4(0u, 1u, 2u, 3u), vec4(T - 1u)) * H) * HD;
      let r1 = (vec4(qRow0) + min(vec4(t0) + vec4(4u, 5u, 6u, 7u), vec4(T - 1u)) * H) * HD;
      let r2 = (vec4(qRow0) + min(vec4(t0) + vec4(8u, 9u, 10u, 11u), vec4(T - 1u)) * H) * HD;
      let r3 = (vec4(qRow0) + min(vec4(t0) + vec4(12u, 13u, 14u, 15u), vec4(T - 1u)) * H) * HD;
      var x0 = mat4x4<f32>();
      var x1 = mat4x4<f32>();
      var x2 = mat4x4<f32>();
      var x3 = mat4x4<f32>();
      var y0 = mat4x4<f32>();
      var y1 = mat4x4<f32>();
      var y2 = mat4x4<f32>();
      var y3 = mat4x4<f32>();
      for (var c = 0u; c < NC; c++) {
        let d = 4u * c;
        let kt = transpose(kBlock(kAt, d));
        let vt = transpose(vBlock(kAt, d));
        x0 += kt * qBlock(r0, d);
        x1 += kt * qBlock(r1, d);
        x2 += kt * qBlock(r2, d);
        x3 += kt * qBlock(r3, d);
        y0 += vt * gBlock(r0, d);
        y1 += vt * gBlock(r1, d);
        y2 += vt * gBlock(r2, d);
        y3 += vt * gBlock(r3, d);
      }
      let base = (b * H + hq) * T;
      let z0 = probsT(x0, y0, t0, s, keyOk, base);
      let z1 = probsT(x1, y1, t0 + 4u, s, keyOk, base);
      let z2 = probsT(x2, y2, t0 + 8u, s, keyOk, base);
      let z3 = probsT(x3, y3, t0 + 12u, s, keyOk, base);
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
