// The fused matmul's epilogue hooks (appended to matmul_quad.wgsl / matmul_tiled.wgsl), which make it
//   out[m, n] = alpha · (Σ_k A(m, k)·B(k, n) + scale2 · Σ_j A2(m, j)·B2(j, n)) + bias[n]   (+ out when accumulate)
// A second, short K segment j in [0, K2) runs after the main one in the same accumulators (LoRA's rank-r
// product: y = x·Wᵀ + s·xa·Bᵀ, dx = dy·W + s·t·A), and the bias is added as the outputs are stored, so the
// output is written once instead of three times.
// A2 holds [M, K2] row-major (j contiguous); TRANS_B2 = true: b2 holds [N, K2] (j contiguous), false:
// [K2, N] (n contiguous). HAS_BIAS = false leaves the bias binding unread. scale2 multiplies A2 as it is
// loaded (the caller passes its scale divided by alpha). Rows and columns past the edge are read clamped
// (never written), j past K2 as zero.
const TRANS_B2: bool = {{TRANS_B2}};
const HAS_BIAS: bool = {{HAS_BIAS}};

fn seg2K() -> u32 { return params.K2; }

// Column i holds scale2 · A2(row r[i], k..k+3) (the quad kernel's aBlock layout).
fn a2Block(r: vec4<u32>, k: u32) -> mat4x4<f32> {
  let K2 = params.K2;
  let o = min(r, vec4(params.M - 1u)) * K2;
  let kv = vec4(k, k + 1u, k + 2u, k + 3u);
  let v = kv < vec4(K2);
  let kk = min(kv, vec4(K2 - 1u));
  let s = params.scale2;
  return mat4x4(
    select(vec4(0.0), s * vec4(a2[o.x + kk.x], a2[o.x + kk.y], a2[o.x + kk.z], a2[o.x + kk.w]), v),
    select(vec4(0.0), s * vec4(a2[o.y + kk.x], a2[o.y + kk.y], a2[o.y + kk.z], a2[o.y + kk.w]), v),
    select(vec4(0.0), s * vec4(a2[o.z + kk.x], a2[o.z + kk.y], a2[o.z + kk.z], a2[o.z + kk.w]), v),
    select(vec4(0.0), s * vec4(a2[o.w + kk.x], a2[o.w + kk.y], a2[o.w + kk.z], a2[o.w + kk.w]), v));
}

// Column t holds B2(k + t, columns c) (the quad kernel's bBlock layout).
fn b2Block(c: vec4<u32>, k: u32) -> mat4x4<f32> {
  let K2 = params.K2;
  let cc = min(c, vec4(params.N - 1u));
  let p = select(cc, cc * K2, TRANS_B2);
  let sk = select(params.N, 1u, TRANS_B2);
  let kk = min(vec4(k, k + 1u, k + 2u, k + 3u), vec4(K2 - 1u)) * sk;
  return mat4x4(
    select(vec4(0.0), vec4(b2[p.x + kk.x], b2[p.y + kk.x], b2[p.z + kk.x], b2[p.w + kk.x]), k < K2),
    select(vec4(0.0), vec4(b2[p.x + kk.y], b2[p.y + kk.y], b2[p.z + kk.y], b2[p.w + kk.y]), k + 1u < K2),
    select(vec4(0.0), vec4(b2[p.x + kk.z], b2[p.y + kk.z], b2[p.z + kk.z], b2[p.w + kk.z]), k + 2u < K2),
    select(vec4(0.0), vec4(b2[p.x + kk.w], b2[p.y + kk.w], b2[p.z + kk.w], b2[p.w + kk.w]), k + 3u < K2));
}

// scale2 · A2(rows m..m+3, j = k), k < K2 (the tiled kernel's 4 rows of one thread).
fn a2Vec(m: u32, k: u32) -> vec4<f32> {
  let o = min(vec4(m, m + 1u, m + 2u, m + 3u), vec4(params.M - 1u)) * params.K2 + k;
  return params.scale2 * vec4(a2[o.x], a2[o.y], a2[o.z], a2[o.w]);
}

// B2(j = k, columns n..n+3), k < K2.
fn b2Vec(k: u32, n: u32) -> vec4<f32> {
  let c = min(vec4(n, n + 1u, n + 2u, n + 3u), vec4(params.N - 1u));
  let o = select(c + k * params.N, c * params.K2 + k, TRANS_B2);
  return vec4(b2[o.x], b2[o.y], b2[o.z], b2[o.w]);
}

// bias[n..n+3] (columns past N read clamped; they are never written).
fn biasAt(n: u32) -> vec4<f32> {
  if (!HAS_BIAS) { return vec4(0.0); }
  let c = min(vec4(n, n + 1u, n + 2u, n + 3u), vec4(params.N - 1u));
  return vec4(bias[c.x], bias[c.y], bias[c.z], bias[c.w]);
}
