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
const HD = {{HD}}u;  // head dim
const NC = {{NC}}u;  // ceil(HD / 4) chunks of the head dim
const WG = {{WG}}u;
const BR = 4u * WG;
const NEG_BIG = -3.0e38;
const HIDDEN = -1.0e38;  // scores at or below this are not visible

// 4 consecutive dims of q / k / v from element `at`, dims past HD read as 0 (their index is `dim`).
fn q4(at: u32, dim: u32) -> vec4<f32> {
  if (HD % 4u == 0u) { return vec4(q[at], q[at + 1u], q[at + 2u], q[at + 3u]); }
  return vec4(q[at], select(0.0, q[at + 1u], dim + 1u < HD), select(0.0, q[at + 2u], dim + 2u < HD), select(0.0, q[at + 3u], dim + 3u < HD));
}
fn k4(at: u32, dim: u32) -> vec4<f32> {
  if (HD % 4u == 0u) { return vec4(k[at], k[at + 1u], k[at + 2u], k[at + 3u]); }
  return vec4(k[at], select(0.0, k[at + 1u], dim + 1u < HD), select(0.0, k[at + 2u], dim + 2u < HD), select(0.0, k[at + 3u], dim + 3u < HD));
}
fn v4(at: u32, dim: u32) -> vec4<f32> {
  if (HD % 4u == 0u) { return vec4(v[at], v[at + 1u], v[at + 2u], v[at + 3u]); }
  return vec4(v[at], select(0.0, v[at + 1u], dim + 1u < HD), select(0.0, v[at + 2u], dim + 2u < HD), select(0.0, v[at + 3u], dim + 3u < HD));
}

/** Whether key s is unmasked (s < S). */
fn keyOk(b: u32, s: u32) -> bool {
  return s < params.S && (params.hasMask == 0u || keyMask[b * params.S + min(s, params.S - 1u)] != 0);
}

/** Scaled scores of 4 keys s .. s + 3 (columns) for the 4 rows whose last visible key is lastKey (vec4 over rows). */
fn visibleScores(x: mat4x4<f32>, b: u32, s: u32, lastKey: vec4<u32>) -> mat4x4<f32> {
  let y = x * params.scale;
  return mat4x4(
    select(vec4(NEG_BIG), y[0], (vec4(s) <= lastKey) & vec4(keyOk(b, s))),
    select(vec4(NEG_BIG), y[1], (vec4(s + 1u) <= lastKey) & vec4(keyOk(b, s + 1u))),
    select(vec4(NEG_BIG), y[2], (vec4(s + 2u) <= lastKey) & vec4(keyOk(b, s + 2u))),
    select(vec4(NEG_BIG), y[3], (vec4(s + 3u) <= lastKey) & vec4(keyOk(b, s + 3u))));
}

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

/** 4 rows of 4 dims (column = row) starting at dim `d`, rows starting at elements `at`. */
fn qBlock(at: vec4<u32>, d: u32) -> mat4x4<f32> {
  return mat4x4(q4(at[0] + d, d), q4(at[1] + d, d), q4(at[2] + d, d), q4(at[3] + d, d));
}
/** 4 keys (column = key) whose rows start at elements `at`, dims d .. d + 3. */
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
  let lastKey = t + vec4(off);                 // row i sees keys s ≤ lastKey[i]
  let nKeys = min(tFirst + 4u, T) + off;       // keys any of the 4 rows sees
  let kvStride = params.Hkv * HD;
  let kBase = b * S * kvStride + kh * HD;

  var o = array<mat4x4<f32>, NC>();
  var m = vec4(NEG_BIG);
  var l = vec4(0.0);
  for (var s0 = 0u; s0 < nKeys; s0 += 16u) {
    // Keys past S (only in the last block) are clamped here and hidden by visibleScores.
    let a0 = vec4(kBase) + min(vec4(s0) + vec4(0u, 1u, 2u, 3u), vec4(S - 1u)) * kvStride;
    let a1 = vec4(kBase) + min(vec4(s0) + vec4(4u, 5u, 6u, 7u), vec4(S - 1u)) * kvStride;
    let a2 = vec4(kBase) + min(vec4(s0) + vec4(8u, 9u, 10u, 11u), vec4(S - 1u)) * kvStride;
    let a3 = vec4(kBase) + min(vec4(s0) + vec4(12u, 13u, 14u, 15u), vec4(S - 1u)) * kvStride;
    var x0 = mat4x4<f32>();
    var x1 = mat4x4<f32>();
    var x2 = mat4x4<f32>();
    var x3 = mat4x4<f32>();
    for (var c = 0u; c < NC; c++) {
      let d = 4u * c;
      let qt = transpose(qBlock(qAt, d));
      x0 += qt * kBlock(a0, d);
      x1 += qt * kBlock(a1, d);
      x2 += qt * kBlock(a2, d);
      x3 += qt * kBlock(a3, d);
    }
    x0 = visibleScores(x0, b, s0, lastKey);
    x1 = visibleScores(x1, b, s0 + 4u, lastKey);
    x2 = visibleScores(x2, b, s0 + 8u, lastKey);
    x3 = visibleScores(x3, b, s0 + 12u, lastKey);
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
    if (t[i] < T) {
      for (var c = 0u; c < NC; c++) {
        let oc = o[c];
        for (var j = 0u; j < 4u; j++) {
          let d = 4u * c + j;
          if (d < HD) { out[qAt[i] + d] = oc[j][i] * inv[i]; }
        }
      }
      lse[(b * H + h) * T + t[i]] = rowLse[i];
    }
  }
}
