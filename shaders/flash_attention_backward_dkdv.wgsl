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
{{include:flash_tiled_queries}}

const QPT = {{QPT}}u;  // BR / TPR

var<workgroup> Ks: array<f32, {{BC}} * {{HDP}}>;
var<workgroup> Vs: array<f32, {{BC}} * {{HDP}}>;
var<workgroup> Ps: array<f32, {{BC}} * {{PST}}>;
var<workgroup> dSs: array<f32, {{BC}} * {{PST}}>;
var<workgroup> rowLse: array<f32, {{BR}}>;
var<workgroup> rowDelta: array<f32, {{BR}}>;

fn flashBlock(w: u32, tid: u32) {
  let kv = keyBlock(w);
  let T = params.T;
  let S = params.S;
  let H = params.H;
  let b = kv.b;
  let off = kv.off;
  let kvStride = kv.kvStride;
  let kBase = kv.kBase;
  let c = tid / TPR;
  let j = tid % TPR;
  let s0 = kv.kb * BC;
  let s = s0 + c;

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
  for (var g = 0u; g < kv.group; g++) {
    let hq = kv.kh * kv.group + g;
    for (var t0 = tFirst; t0 < T; t0 += BR) {
      workgroupBarrier();  // the previous block is consumed (and, the first time, Ks and Vs are written)
      loadQueryBlock(tid, b, hq, t0);
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
        let visible = keyOk && tt < T && seen(s, tt + off);
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
