// Attention backward, step 3: dk and dv. One workgroup per key row (b, kv head kh, s),
// row = (b·Hkv + kh)·S + s, summing over the pairs (query head hq of the group, query t that sees s):
//   p = exp(scale·q·k_s − lse),  ds = p·(dOut·v_s − Δ),  dk_s += scale · Σ ds · q,  dv_s += Σ p · dOut.
// The queries that see key s are t ≥ s − (S − T); a masked key gets nothing. In chunks of WG pairs: one
// (p, ds, offset of the pair's q/dOut row) per invocation into workgroup memory, then slot (g, d) of G·D
// slots (G = max(1, WG / D)) sums the chunk's pairs j ≡ g mod G for dim d. No atomics: each dk/dv row
// is written by one workgroup.
const WG = {{WG}}u;

var<workgroup> kRow: array<f32, {{MAXD}}>;
var<workgroup> vRow: array<f32, {{MAXD}}>;
var<workgroup> pChunk: array<f32, {{WG}}>;
var<workgroup> dsChunk: array<f32, {{WG}}>;
var<workgroup> offChunk: array<u32, {{WG}}>;
var<workgroup> accK: array<f32, {{SLOTS}}>;
var<workgroup> accV: array<f32, {{SLOTS}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) tid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let T = params.T;
  let S = params.S;
  let H = params.H;
  let D = params.D;
  let s = row % S;
  let kh = (row / S) % params.Hkv;
  let b = row / (S * params.Hkv);
  let group = H / params.Hkv;
  let kOff = ((b * S + s) * params.Hkv + kh) * D;
  let t0 = select(0u, s + T - S, s + T > S);  // first query that sees key s
  let nT = T - t0;
  let visible = params.hasMask == 0u || keyMask[b * S + s] != 0;
  let nPairs = select(0u, group * nT, visible);

  for (var d = tid; d < D; d += WG) {
    kRow[d] = k[kOff + d];
    vRow[d] = v[kOff + d];
  }
  let G = max(1u, WG / D);
  let nSlots = G * D;
  for (var slot = tid; slot < nSlots; slot += WG) {
    accK[slot] = 0.0;
    accV[slot] = 0.0;
  }
  workgroupBarrier();

  for (var c = 0u; c < nPairs; c += WG) {
    let i = c + tid;
    var p = 0.0;
    var ds = 0.0;
    var off = 0u;
    if (i < nPairs) {
      let hq = kh * group + i / nT;
      let t = t0 + i % nT;
      off = ((b * T + t) * H + hq) * D;
      let lrow = (b * H + hq) * T + t;
      var qk = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < D; d++) {
        qk += q[off + d] * kRow[d];
        dp += dOut[off + d] * vRow[d];
      }
      p = exp(params.scale * qk - stats[2u * lrow]);
      ds = p * (dp - stats[2u * lrow + 1u]);
    }
    pChunk[tid] = p;
    dsChunk[tid] = ds;
    offChunk[tid] = off;
    workgroupBarrier();
    let n = min(WG, nPairs - c);
    for (var slot = tid; slot < nSlots; slot += WG) {
      let g = slot / D;
      let d = slot % D;
      var ak = accK[slot];
      var av = accV[slot];
      for (var j = g; j < n; j += G) {
        let o = offChunk[j] + d;
        ak += dsChunk[j] * q[o];
        av += pChunk[j] * dOut[o];
      }
      accK[slot] = ak;
      accV[slot] = av;
    }
    workgroupBarrier();
  }
  for (var d = tid; d < D; d += WG) {
    var ak = 0.0;
    var av = 0.0;
    for (var g = 0u; g < G; g++) {
      ak += accK[g * D + d];
      av += accV[g * D + d];
    }
    dk[kOff + d] += params.scale * ak;
    dv[kOff + d] += av;
  }
}
