// The tiled flash forward's and dq's walk over key blocks: a workgroup owns BR query rows of one (b, h);
// invocation tid = r·TPR + j works on row r and computes the scores of the keys c = j + TPR·i (i < KPT) of
// each block of BC keys, which loadKeyBlock brings into workgroup memory.
{{include:flash_tiled}}

const KPT = {{KPT}}u;  // BC / TPR

var<workgroup> Ks: array<f32, {{BC}} * {{HDP}}>;
var<workgroup> Vs: array<f32, {{BC}} * {{HDP}}>;
var<workgroup> kVis: array<u32, {{BC}}>;

// This invocation's row r and slice j, the block's first row t0 and its own row t.
struct QueryRow {
  r: u32,
  j: u32,
  t0: u32,
  t: u32,
}

fn queryRow(qb: QueryBlock, tid: u32) -> QueryRow {
  let r = tid / TPR;
  let t0 = qb.rb * BR;
  return QueryRow(r, tid % TPR, t0, t0 + r);
}

// The keys any row of the block sees: s < blockKeys(qb). (Apart from QueryRow, whose other fields differ per
// invocation: the key loop holds barriers, so its bound must be uniform.)
fn blockKeys(qb: QueryBlock) -> u32 {
  return min(qb.rb * BR + BR, params.T) + qb.off;
}

// Keys s0 .. s0 + BC into Ks and Vs (zeros from nKeys on), and whether each is unmasked into kVis. Every
// invocation takes part; the caller puts a barrier before it (the previous block is consumed) and after it.
fn loadKeyBlock(qb: QueryBlock, tid: u32, s0: u32, nKeys: u32) {
  for (var e = tid; e < BC * HD; e += WG) {
    let c = e / HD;
    let d = e % HD;
    let s = s0 + c;
    var kx = 0.0;
    var vx = 0.0;
    if (s < nKeys) {
      let at = qb.kBase + s * qb.kvStride + d;
      kx = k[at];
      vx = v[at];
    }
    Ks[c * HDP + d] = kx;
    Vs[c * HDP + d] = vx;
  }
  for (var c = tid; c < BC; c += WG) {
    let s = s0 + c;
    kVis[c] = select(0u, 1u, s < nKeys && (params.hasMask == 0u || keyMask[qb.b * params.S + s] != 0));
  }
}
