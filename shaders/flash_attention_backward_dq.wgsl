// Tiled (FlashAttention-2) attention backward, dq. Shapes and visibility as in flash_attention_forward.wgsl;
// stats [B·H·T, 2] holds (lse, Δ = dOut·out) per query row (b·H + h)·T + t.
// One workgroup per block of BR query rows of one (b, h) (the longest rows first); invocation
// tid = r·TPR + j works on row r, owns the dq dims d = j + TPR·i (i < DPT) in registers and computes the
// keys c = j + TPR·i (i < KPT) of each key block. Per key block of BC keys (blocks entirely above the
// causal diagonal are skipped):
//   1. load K, V (and which keys are unmasked) into workgroup memory;
//   2. p = exp(q·k − lse) (q pre-scaled), dp = dOut·v, ds = p·(dp − Δ) into dSs;
//   3. dq += Σ_c ds · k_c.
// dq += scale · (that sum) at the end. A row with no visible key adds nothing.
// Private arrays are zeroed explicitly (see flash_attention_forward.wgsl).
const HD = {{HD}}u;
const HDP = {{HDP}}u;
const BR = {{BR}}u;
const BC = {{BC}}u;
const TPR = {{TPR}}u;
const WG = {{WG}}u;
const DPT = {{DPT}}u;
const KPT = {{KPT}}u;
const PST = {{PST}}u;

var<workgroup> Qs: array<f32, {{BR}} * {{HDP}}>;
var<workgroup> dOs: array<f32, {{BR}} * {{HDP}}>;
var<workgroup> Ks: array<f32, {{BC}} * {{HDP}}>;
var<workgroup> Vs: array<f32, {{BC}} * {{HDP}}>;
var<workgroup> dSs: array<f32, {{BR}} * {{PST}}>;
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
  let nKeys = min(t0 + BR, T) + off;

  for (var e = tid; e < BR * HD; e += WG) {
    let rr = e / HD;
    let d = e % HD;
    let tt = t0 + rr;
    var x = 0.0;
    var g = 0.0;
    if (tt < T) {
      let at = ((b * T + tt) * H + h) * HD + d;
      x = q[at] * params.scale;
      g = dOut[at];
    }
    Qs[rr * HDP + d] = x;
    dOs[rr * HDP + d] = g;
  }
  let row = (b * H + h) * T + min(t, T - 1u);
  let lseRow = stats[2u * row];
  let delta = stats[2u * row + 1u];

  var acc = array<f32, DPT>();
  for (var s0 = 0u; s0 < nKeys; s0 += BC) {
    workgroupBarrier();
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

    var qk = array<f32, KPT>();
    var dp = array<f32, KPT>();
    for (var d = 0u; d < HD; d++) {
      let qd = Qs[r * HDP + d];
      let gd = dOs[r * HDP + d];
      for (var i = 0u; i < KPT; i++) {
        let at = (j + TPR * i) * HDP + d;
        qk[i] += qd * Ks[at];
        dp[i] += gd * Vs[at];
      }
    }
    for (var i = 0u; i < KPT; i++) {
      let c = j + TPR * i;
      let visible = t < T && kVis[c] != 0u && s0 + c <= t + off;
      let p = select(0.0, exp(qk[i] - lseRow), visible);
      dSs[r * PST + c] = p * (dp[i] - delta);
    }
    if (TPR > 1u) { workgroupBarrier(); }

    for (var c = 0u; c < BC; c++) {
      let ds = dSs[r * PST + c];
      for (var i = 0u; i < DPT; i++) { acc[i] += ds * Ks[c * HDP + j + TPR * i]; }
    }
  }

  if (t < T) {
    let base = ((b * T + t) * H + h) * HD;
    for (var i = 0u; i < DPT; i++) {
      let d = j + TPR * i;
      if (d < HD) { dq[base + d] += params.scale * acc[i]; }
    }
  }
}
