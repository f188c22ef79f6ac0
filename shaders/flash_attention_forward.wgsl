// Tiled (FlashAttention-2) causal attention forward with grouped-query heads and a key padding mask.
//   q, out [B, T, H, D]; k, v [B, S, Hkv, D]; lse [B, H, T]. Query head h reads kv head h / (H / Hkv).
//   Query t (the last T of S positions) sees the keys s ≤ t + (S − T) whose keyMask[b, s] ≠ 0.
// One workgroup per block of BR query rows t0 .. t0 + BR of one (b, h); workgroup w = x + y·nwg.x is row
// block nRowBlocks − 1 − w % nRowBlocks (the longest rows first) of head (b, h) = w / nRowBlocks.
// Invocation tid = r·TPR + j works on row r; it owns the output dims d = j + TPR·i (i < DPT) in registers
// and computes the scores of the keys c = j + TPR·i (i < KPT) of each key block.
// The workgroup walks the key blocks of BC keys up to the last key its last row sees (blocks entirely above
// the causal diagonal are never loaded), each through workgroup memory:
//   1. load K, V of the block (and which keys are unmasked);
//   2. scores q·k (q pre-scaled) into Ss, the causally hidden and masked ones as NEG_BIG;
//   3. online softmax per row: m' = max(m, scores), l = l·e^(m−m') + Σ e^(s−m'), o = o·e^(m−m') + Σ e^(s−m')·v.
// At the end out = o / l and lse = m + log l; a row with no visible key writes out = 0, lse = {{EMPTY_LSE}}.
const HD = {{HD}}u;    // head dim
const HDP = {{HDP}}u;  // row stride of Qs, Ks, Vs (≥ DPT·TPR, odd against bank conflicts)
const BR = {{BR}}u;
const BC = {{BC}}u;
const TPR = {{TPR}}u;  // invocations per query row
const WG = {{WG}}u;    // BR·TPR
const DPT = {{DPT}}u;  // ceil(HD / TPR)
const KPT = {{KPT}}u;  // BC / TPR
const PST = {{PST}}u;  // row stride of Ss
// Private arrays are zeroed with an explicit `array<f32, N>()`: Dawn on SwiftShader does not re-zero a
// `var a: array<f32, N>;` declared inside a loop on each iteration (it keeps the previous iteration's values).
const NEG_BIG = -3.0e38;
const HIDDEN = -1.0e38;  // scores at or below this are not visible

var<workgroup> Qs: array<f32, {{BR}} * {{HDP}}>;
var<workgroup> Ks: array<f32, {{BC}} * {{HDP}}>;
var<workgroup> Vs: array<f32, {{BC}} * {{HDP}}>;
var<workgroup> Ss: array<f32, {{BR}} * {{PST}}>;
var<workgroup> kVis: array<u32, {{BC}}>;

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
  let r = tid / TPR;
  let j = tid % TPR;
  let t0 = rb * BR;
  let t = t0 + r;
  let kvStride = params.Hkv * HD;
  let kBase = b * S * kvStride + kh * HD;
  // Keys any row of the block sees: s < nKeys.
  let nKeys = min(t0 + BR, T) + off;

  for (var e = tid; e < BR * HD; e += WG) {
    let rr = e / HD;
    let d = e % HD;
    let tt = t0 + rr;
    var x = 0.0;
    if (tt < T) { x = q[((b * T + tt) * H + h) * HD + d] * params.scale; }
    Qs[rr * HDP + d] = x;
  }

  var o = array<f32, DPT>();
  var m = NEG_BIG;
  var l = 0.0;
  for (var s0 = 0u; s0 < nKeys; s0 += BC) {
    workgroupBarrier();  // the previous block is consumed (and, the first time, Qs is written)
    for (var e = tid; e < BC * HD; e += WG) {
      let c = e / HD;
      let d = e % HD;
      let s = s0 + c;
      var kx = 0.0;
      var vx = 0.0;
      if (s < nKeys) {
        let at = kBase + s * kvStride + d;
        kx = k[at];
        vx = v[at];
      }
      Ks[c * HDP + d] = kx;
      Vs[c * HDP + d] = vx;
    }
    for (var c = tid; c < BC; c += WG) {
      let s = s0 + c;
      kVis[c] = select(0u, 1u, s < nKeys && (params.hasMask == 0u || keyMask[b * S + s] != 0));
    }
    workgroupBarrier();

    var acc = array<f32, KPT>();
    for (var d = 0u; d < HD; d++) {
      let qd = Qs[r * HDP + d];
      for (var i = 0u; i < KPT; i++) { acc[i] += qd * Ks[(j + TPR * i) * HDP + d]; }
    }
    for (var i = 0u; i < KPT; i++) {
      let c = j + TPR * i;
      let visible = kVis[c] != 0u && s0 + c <= t + off;
      Ss[r * PST + c] = select(NEG_BIG, acc[i], visible);
    }
    if (TPR > 1u) { workgroupBarrier(); }

    var mNew = m;
    for (var c = 0u; c < BC; c++) { mNew = max(mNew, Ss[r * PST + c]); }
    let alpha = exp(m - mNew);
    l *= alpha;
    for (var i = 0u; i < DPT; i++) { o[i] *= alpha; }
    for (var c = 0u; c < BC; c++) {
      let sc = Ss[r * PST + c];
      let p = select(0.0, exp(sc - mNew), sc > HIDDEN);
      l += p;
      for (var i = 0u; i < DPT; i++) { o[i] += p * Vs[c * HDP + j + TPR * i]; }
    }
    m = mNew;
  }

  if (t < T) {
    let empty = l == 0.0;
    let inv = select(1.0 / l, 0.0, empty);
    let oBase = ((b * T + t) * H + h) * HD;
    for (var i = 0u; i < DPT; i++) {
      let d = j + TPR * i;
      if (d < HD) { out[oBase + d] = o[i] * inv; }
    }
    if (j == 0u) { lse[(b * H + h) * T + t] = select(m + log(select(l, 1.0, empty)), {{EMPTY_LSE}}, empty); }
  }
}
