// Causal self-attention forward with grouped-query heads and a key padding mask; one workgroup per query
// row (b, h, t), row = (b·H + h)·T + t (the layout of lse [B, H, T]).
//   q, out [B, T, H, D]; k, v [B, S, Hkv, D]; query head h reads kv head h / (H / Hkv).
//   Query t sees the keys s < t + (S − T) + 1 whose keyMask[b, s] ≠ 0.
// Pass 1: each invocation runs an online max / sum of exp over its keys (s ≡ tid mod WG); combining the
// WG partial results gives lse = max + log(sum). Pass 2: in chunks of WG keys, each invocation computes one probability
// p = exp(score − lse) into workgroup memory, then the invocations accumulate Σ p·v: slot (g, d) of the
// G·D slots (G = max(1, WG / D) groups of D lanes) sums the chunk's keys j ≡ g mod G for dimension d.
// A row with no visible key writes out = 0 and lse = {{EMPTY_LSE}}.
const WG = {{WG}}u;
const NEG_BIG = -3.0e38;

var<workgroup> qRow: array<f32, {{MAXD}}>;
var<workgroup> redM: array<f32, {{WG}}>;
var<workgroup> redL: array<f32, {{WG}}>;
var<workgroup> pChunk: array<f32, {{WG}}>;
var<workgroup> acc: array<f32, {{SLOTS}}>;

fn keyVisible(b: u32, s: u32) -> bool {
  return params.hasMask == 0u || keyMask[b * params.S + s] != 0;
}

/** scale · q_row · k[kOff .. kOff + D) */
fn score(kOff: u32) -> f32 {
  var dot = 0.0;
  for (var d = 0u; d < params.D; d++) { dot += qRow[d] * k[kOff + d]; }
  return params.scale * dot;
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) tid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let T = params.T;
  let S = params.S;
  let H = params.H;
  let D = params.D;
  let t = row % T;
  let h = (row / T) % H;
  let b = row / (T * H);
  let kh = h / (H / params.Hkv);
  let qOff = ((b * T + t) * H + h) * D;
  let kvStride = params.Hkv * D;          // from key s to key s + 1
  let kBase = b * S * kvStride + kh * D;  // key s starts at kBase + s·kvStride
  let nKeys = t + (S - T) + 1u;           // causally visible keys: s < nKeys (S ≥ T)

  for (var d = tid; d < D; d += WG) { qRow[d] = q[qOff + d]; }
  workgroupBarrier();

  // Pass 1: log-sum-exp of the visible scores.
  var m = NEG_BIG;
  var l = 0.0;
  for (var s = tid; s < nKeys; s += WG) {
    if (keyVisible(b, s)) {
      let x = score(kBase + s * kvStride);
      let mNew = max(m, x);
      l = l * exp(m - mNew) + exp(x - mNew);
      m = mNew;
    }
  }
  redM[tid] = m;
  redL[tid] = l;
  workgroupBarrier();
  // Every invocation combines all WG partial (max, sum) pairs itself: one barrier instead of a tree's log2(WG).
  var mAll = NEG_BIG;
  for (var j = 0u; j < WG; j++) { mAll = max(mAll, redM[j]); }
  var lAll = 0.0;
  for (var j = 0u; j < WG; j++) { lAll += redL[j] * exp(redM[j] - mAll); }
  // With at least one visible key the largest contributes exp(0) = 1, so sum = 0 means none.
  let empty = lAll == 0.0;
  let lseRow = select(mAll + log(select(lAll, 1.0, empty)), {{EMPTY_LSE}}, empty);

  // Pass 2: out = Σ_s exp(score − lse) · v_s.
  let G = max(1u, WG / D);
  let nSlots = G * D;
  for (var slot = tid; slot < nSlots; slot += WG) { acc[slot] = 0.0; }
  for (var c = 0u; c < nKeys; c += WG) {
    let s = c + tid;
    var p = 0.0;
    if (s < nKeys && keyVisible(b, s)) { p = exp(score(kBase + s * kvStride) - lseRow); }
    pChunk[tid] = p;
    workgroupBarrier();
    let n = min(WG, nKeys - c);
    for (var slot = tid; slot < nSlots; slot += WG) {
      let g = slot / D;
      let d = slot % D;
      var a = acc[slot];
      for (var j = g; j < n; j += G) { a += pChunk[j] * v[kBase + (c + j) * kvStride + d]; }
      acc[slot] = a;
    }
    workgroupBarrier();
  }
  for (var d = tid; d < D; d += WG) {
    var o = 0.0;
    for (var g = 0u; g < G; g++) { o += acc[g * D + d]; }
    out[qOff + d] = o;
  }
  if (tid == 0u) { lse[row] = lseRow; }
}
