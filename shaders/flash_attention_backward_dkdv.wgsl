// Tiled (FlashAttention-2) attention backward, dk and dv. Shapes and visibility as in
// flash_attention_forward.wgsl; stats [B·H·T, 2] holds (lse, Δ = dOut·out) per query row (b·H + h)·T + t.
// One workgroup per block of BC keys s0 .. s0 + BC of one (b, kv head kh): workgroup w = x + y·nwg.x is key
// block w % nKeyBlocks (the earliest keys, seen by the most queries, first) of (b, kh) = w / nKeyBlocks.
// Invocation tid = c·TPR + j works on key c; it owns the dk and dv dims d = j + TPR·i (i < DPT) in registers
// and computes the queries rr = j + TPR·i (i < QPT) of each query block. The workgroup walks the query heads
// of the group and, for each, the query blocks of BR rows from the first query that sees key s0 on
// (blocks that see none of its keys are never loaded):
//   1. load q (pre-scaled), dOut, lse and Δ of the block into workgroup memory;
//   2. p = exp(q·k − lse) (0 where hidden or masked), dp = dOut·v, ds = p·(dp − Δ) into Ps, dSs;
//   3. dv += Σ_rr p · dOut_rr,  dk += Σ_rr ds · q_rr.
// Each key row is written by exactly one workgroup (it sums all the query heads that share it): no atomics.
// Private arrays are zeroed explicitly (see flash_attention_forward.wgsl).
const HD = {{HD}}u;
const HDP = {{HDP}}u;
const BR = {{BR}}u;
const BC = {{BC}}u;
const TPR = {{TPR}}u;  // invocations per key
const WG = {{WG}}u;    // BC·TPR
const DPT = {{DPT}}u;
const QPT = {{QPT}}u;  // BR / TPR
const PST = {{PST}}u;  // row stride of Ps, dSs (≥ BR)

var<workgroup> Ks: array<f32, {{BC}} * {{HDP}}>;
var<workgroup> Vs: array<f32, {{BC}} * {{HDP}}>;
var<workgroup> Qs: array<f32, {{BR}} * {{HDP}}>;
var<workgroup> dOs: array<f32, {{BR}} * {{HDP}}>;
var<workgroup> Ps: array<f32, {{BC}} * {{PST}}>;
var<workgroup> dSs: array<f32, {{BC}} * {{PST}}>;
var<workgroup> rowLse: array<f32, {{BR}}>;
var<workgroup> rowDelta: array<f32, {{BR}}>;

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
  let c = tid / TPR;
  let j = tid % TPR;
  let s0 = kb * BC;
  let s = s0 + c;
  let kvStride = Hkv * HD;
  let kBase = b * S * kvStride + kh * HD;

  for (var e = tid; e < BC * HD; e += WG) {
    let cc = e / HD;
    let d = e % HD;
    var kx = 0.0;
    var vx = 0.0;
    if (s0 + cc < S) {
      let at = kBase + (s0 + cc) * kvStride + d;
      kx = k[at];
      vx = v[at];
    }
    Ks[cc * HDP + d] = kx;
    Vs[cc * HDP + d] = vx;
  }
  let keyOk = s < S && (params.hasMask == 0u || keyMask[b * S + min(s, S - 1u)] != 0);
  // The first query that sees key s0: t ≥ s0 − (S − T).
  let tFirst = select(0u, s0 - off, s0 > off);

  var dkAcc = array<f32, DPT>();
  var dvAcc = array<f32, DPT>();
  for (var g = 0u; g < group; g++) {
    let hq = kh * group + g;
    for (var t0 = tFirst; t0 < T; t0 += BR) {
      workgroupBarrier();  // the previous block is consumed (and, the first time, Ks and Vs are written)
      for (var e = tid; e < BR * HD; e += WG) {
        let rr = e / HD;
        let d = e % HD;
        let tt = t0 + rr;
        var x = 0.0;
        var gd = 0.0;
        if (tt < T) {
          let at = ((b * T + tt) * H + hq) * HD + d;
          x = q[at] * params.scale;
          gd = dOut[at];
        }
        Qs[rr * HDP + d] = x;
        dOs[rr * HDP + d] = gd;
      }
      for (var rr = tid; rr < BR; rr += WG) {
        let row = (b * H + hq) * T + min(t0 + rr, T - 1u);
        rowLse[rr] = stats[2u * row];
        rowDelta[rr] = stats[2u * row + 1u];
      }
      workgroupBarrier();

      var qk = array<f32, QPT>();
      var dp = array<f32, QPT>();
      for (var d = 0u; d < HD; d++) {
        let kd = Ks[c * HDP + d];
        let vd = Vs[c * HDP + d];
        for (var i = 0u; i < QPT; i++) {
          let at = (j + TPR * i) * HDP + d;
          qk[i] += Qs[at] * kd;
          dp[i] += dOs[at] * vd;
        }
      }
      for (var i = 0u; i < QPT; i++) {
        let rr = j + TPR * i;
        let tt = t0 + rr;
        let visible = keyOk && tt < T && s <= tt + off;
        let p = select(0.0, exp(qk[i] - rowLse[rr]), visible);
        Ps[c * PST + rr] = p;
        dSs[c * PST + rr] = p * (dp[i] - rowDelta[rr]);
      }
      if (TPR > 1u) { workgroupBarrier(); }

      for (var rr = 0u; rr < BR; rr++) {
        let p = Ps[c * PST + rr];
        let ds = dSs[c * PST + rr];
        for (var i = 0u; i < DPT; i++) {
          let at = rr * HDP + j + TPR * i;
          dvAcc[i] += p * dOs[at];
          dkAcc[i] += ds * Qs[at];
        }
      }
    }
  }

  if (s < S) {
    let base = kBase + s * kvStride;
    for (var i = 0u; i < DPT; i++) {
      let d = j + TPR * i;
      if (d < HD) {
        dk[base + d] += dkAcc[i];
        dv[base + d] += dvAcc[i];
      }
    }
  }
}
