// Attention backward, step 2: dq. One workgroup per query row (b, h, t), row = (b·H + h)·T + t:
//   p = exp(scale·q·k_s − lse),  dp = dOut·v_s,  ds = p·(dp − Δ),  dq += scale · Σ_s ds · k_s
// over the visible keys s (causal and unmasked). In chunks of WG keys: one ds per invocation into workgroup
// memory, then slot (g, d) of G·D slots (G = max(1, WG / D)) sums the chunk's keys j ≡ g mod G for dim d.
// A row with no visible key adds nothing.
const WG = {{WG}}u;

var<workgroup> qRow: array<f32, {{MAXD}}>;
var<workgroup> doRow: array<f32, {{MAXD}}>;
var<workgroup> dsChunk: array<f32, {{WG}}>;
var<workgroup> acc: array<f32, {{SLOTS}}>;

fn keyVisible(b: u32, s: u32) -> bool {
  return params.hasMask == 0u || keyMask[b * params.S + s] != 0;
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
  let kvStride = params.Hkv * D;
  let kBase = b * S * kvStride + kh * D;
  let nKeys = t + (S - T) + 1u;
  let lseRow = stats[2u * row];
  let delta = stats[2u * row + 1u];

  for (var d = tid; d < D; d += WG) {
    qRow[d] = q[qOff + d];
    doRow[d] = dOut[qOff + d];
  }
  let G = max(1u, WG / D);
  let nSlots = G * D;
  for (var slot = tid; slot < nSlots; slot += WG) { acc[slot] = 0.0; }
  workgroupBarrier();

  for (var c = 0u; c < nKeys; c += WG) {
    let s = c + tid;
    var ds = 0.0;
    if (s < nKeys && keyVisible(b, s)) {
      let kOff = kBase + s * kvStride;
      var qk = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < D; d++) {
        qk += qRow[d] * k[kOff + d];
        dp += doRow[d] * v[kOff + d];
      }
      let p = exp(params.scale * qk - lseRow);
      ds = p * (dp - delta);
    }
    dsChunk[tid] = ds;
    workgroupBarrier();
    let n = min(WG, nKeys - c);
    for (var slot = tid; slot < nSlots; slot += WG) {
      let g = slot / D;
      let d = slot % D;
      var a = acc[slot];
      for (var j = g; j < n; j += G) { a += dsChunk[j] * k[kBase + (c + j) * kvStride + d]; }
      acc[slot] = a;
    }
    workgroupBarrier();
  }
  for (var d = tid; d < D; d += WG) {
    var a = 0.0;
    for (var g = 0u; g < G; g++) { a += acc[g * D + d]; }
    dq[qOff + d] += params.scale * a;
  }
}
