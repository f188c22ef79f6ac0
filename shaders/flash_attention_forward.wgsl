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
{{include:flash_tiled_keys}}

// Private arrays are zeroed with an explicit `array<f32, N>()`: Dawn on SwiftShader does not re-zero a
// `var a: array<f32, N>;` declared inside a loop on each iteration (it keeps the previous iteration's values).
const NEG_BIG = -3.0e38;
const HIDDEN = -1.0e38;  // scores at or below this are not visible

var<workgroup> Qs: array<f32, {{BR}} * {{HDP}}>;
var<workgroup> Ss: array<f32, {{BR}} * {{PST}}>;

fn flashBlock(w: u32, tid: u32) {
  let qb = queryBlock(w);
  let qr = queryRow(qb, tid);
  let nKeys = blockKeys(qb);
  let T = params.T;
  let H = params.H;
  let b = qb.b;
  let h = qb.h;
  let r = qr.r;
  let j = qr.j;
  let t0 = qr.t0;
  let t = qr.t;

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
    loadKeyBlock(qb, tid, s0, nKeys);
    workgroupBarrier();

    var acc = array<f32, KPT>();
    for (var d = 0u; d < HD; d++) {
      let qd = Qs[r * HDP + d];
      for (var i = 0u; i < KPT; i++) { acc[i] += qd * Ks[(j + TPR * i) * HDP + d]; }
    }
    for (var i = 0u; i < KPT; i++) {
      let c = j + TPR * i;
      let visible = kVis[c] != 0u && seen(s0 + c, t + qb.off);
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
