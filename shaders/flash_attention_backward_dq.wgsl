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
{{include:flash_tiled_keys}}
{{include:flash_tiled_queries}}

var<workgroup> dSs: array<f32, {{BR}} * {{PST}}>;

fn flashBlock(w: u32, tid: u32) {
  let qb = queryBlock(w);
  let qr = queryRow(qb, tid);
  let nKeys = blockKeys(qb);
  let T = params.T;
  let r = qr.r;
  let j = qr.j;
  let t = qr.t;
  loadQueryBlock(tid, qb.b, qb.h, qr.t0);
  let row = (qb.b * params.H + qb.h) * T + min(t, T - 1u);
  let lseRow = stats[2u * row];
  let delta = stats[2u * row + 1u];

  var acc = array<f32, DPT>();
  for (var s0 = 0u; s0 < nKeys; s0 += BC) {
    workgroupBarrier();
    loadKeyBlock(qb, tid, s0, nKeys);
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
      let visible = t < T && kVis[c] != 0u && seen(s0 + c, t + qb.off);
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
    let base = ((qb.b * T + t) * params.H + qb.h) * HD;
    for (var i = 0u; i < DPT; i++) {
      let d = j + TPR * i;
      if (d < HD) { dq[base + d] += params.scale * acc[i]; }
    }
  }
}
