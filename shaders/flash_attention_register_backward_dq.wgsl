// Flash attention backward, dq, register-blocked variant (see flash_attention_register_forward.wgsl for why
// and for the layout). Same contract as flash_attention_backward_dq.wgsl: stats [B·H·T, 2] holds (lse, Δ)
// per query row (b·H + h)·T + t; dq += scale · Σ_s ds · k_s with p = exp(scale·q·k − lse),
// ds = p·(dOut·v − Δ). No workgroup memory and no barriers: invocation tid owns the 4 query rows
// rb·BR + 4·tid + i (BR = 4·WG) of head (b, h) and walks its visible keys in blocks of 16 (4 groups of 4):
//   S_g = Qᵀ·K_g, dP_g = dOutᵀ·V_g (4 rows × 4 keys, column = key), P_g = e^(scale·S_g − lse) where visible,
//   dS_g = P_g ⊙ (dP_g − Δ), dq += Σ_g dS_g·K_gᵀ (a private array of 4×4 blocks, rows × 4 dims).
// A row with no visible key adds nothing.
const HD = {{HD}}u;
const NC = {{NC}}u;
const WG = {{WG}}u;
const BR = 4u * WG;

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

fn keyOk(b: u32, s: u32) -> bool {
  return s < params.S && (params.hasMask == 0u || keyMask[b * params.S + min(s, params.S - 1u)] != 0);
}

/** dS of 4 keys s .. s + 3 (columns) for 4 rows: P = e^(scale·x − lse) where visible, (dp − Δ)·P. */
fn dScores(x: mat4x4<f32>, dp: mat4x4<f32>, b: u32, s: u32, lastKey: vec4<u32>, rowLse: vec4<f32>, delta: vec4<f32>) -> mat4x4<f32> {
  let sc = params.scale;
  let p0 = select(vec4(0.0), exp(sc * x[0] - rowLse), (vec4(s) <= lastKey) & vec4(keyOk(b, s)));
  let p1 = select(vec4(0.0), exp(sc * x[1] - rowLse), (vec4(s + 1u) <= lastKey) & vec4(keyOk(b, s + 1u)));
  let p2 = select(vec4(0.0), exp(sc * x[2] - rowLse), (vec4(s + 2u) <= lastKey) & vec4(keyOk(b, s + 2u)));
  let p3 = select(vec4(0.0), exp(sc * x[3] - rowLse), (vec4(s + 3u) <= lastKey) & vec4(keyOk(b, s + 3u)));
  return mat4x4(p0 * (dp[0] - delta), p1 * (dp[1] - delta), p2 * (dp[2] - delta), p3 * (dp[3] - delta));
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

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) tid: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= params.nWork) { return; }
  let T = params.T;
  let S = params.S;
  let H = params.H;
  let nRB = params.nBlocks;
  let rb = nRB - 1u - w % nRB;
  let bh = w / nRB;
  let h = bh % H;
  let b = bh / H;
  let kh = h / (H / params.Hkv);
  let off = S - T;
  let tFirst = rb * BR + 4u * tid;
  if (tFirst >= T) { return; }
  let t = vec4(tFirst) + vec4(0u, 1u, 2u, 3u);
  let tc = min(t, vec4(T - 1u));
  let qAt = ((vec4(b * T) + tc) * H + vec4(h)) * HD;
  let lastKey = t + vec4(off);
  let nKeys = min(tFirst + 4u, T) + off;
  let kvStride = params.Hkv * HD;
  let kBase = b * S * kvStride + kh * HD;
  let row = vec4((b * H + h) * T) + tc;
  let rowLse = vec4(stats[2u * row[0]], stats[2u * row[1]], stats[2u * row[2]], stats[2u * row[3]]);
  let delta = vec4(stats[2u * row[0] + 1u], stats[2u * row[1] + 1u], stats[2u * row[2] + 1u], stats[2u * row[3] + 1u]);

  var acc = array<mat4x4<f32>, NC>();
  for (var s0 = 0u; s0 < nKeys; s0 += 16u) {
    let a0 = vec4(kBase) + min(vec4(s0) + vec4(0u, 1u, 2u, 3u), vec4(S - 1u)) * kvStride;
    let a1 = vec4(kBase) + min(vec4(s0) + vec4(4u, 5u, 6u, 7u), vec4(S - 1u)) * kvStride;
    let a2 = vec4(kBase) + min(vec4(s0) + vec4(8u, 9u, 10u, 11u), vec4(S - 1u)) * kvStride;
    let a3 = vec4(kBase) + min(vec4(s0) + vec4(12u, 13u, 14u, 15u), vec4(S - 1u)) * kvStride;
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
      let qt = transpose(qBlock(qAt, d));
      let gt = transpose(gBlock(qAt, d));
      x0 += qt * kBlock(a0, d);
      x1 += qt * kBlock(a1, d);
      x2 += qt * kBlock(a2, d);
      x3 += qt * kBlock(a3, d);
      y0 += gt * vBlock(a0, d);
      y1 += gt * vBlock(a1, d);
      y2 += gt * vBlock(a2, d);
      y3 += gt * vBlock(a3, d);
    }
    let z0 = dScores(x0, y0, b, s0, lastKey, rowLse, delta);
    let z1 = dScores(x1, y1, b, s0 + 4u, lastKey, rowLse, delta);
    let z2 = dScores(x2, y2, b, s0 + 8u, lastKey, rowLse, delta);
    let z3 = dScores(x3, y3, b, s0 + 12u, lastKey, rowLse, delta);
    for (var c = 0u; c < NC; c++) {
      let d = 4u * c;
      acc[c] += z0 * transpose(kBlock(a0, d)) + z1 * transpose(kBlock(a1, d))
        + z2 * transpose(kBlock(a2, d)) + z3 * transpose(kBlock(a3, d));
    }
  }

  for (var i = 0u; i < 4u; i++) {
    if (t[i] < T) {
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
