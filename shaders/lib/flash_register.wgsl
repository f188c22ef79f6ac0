// What the register-blocked flash kernels share (see flash_attention_register_forward.wgsl): their sizes, the
// loads of 4×4 blocks of q, k, v, the key visibility and the rows a block of queries works on.
{{include:flash_work}}

const HD = {{HD}}u;  // head dim
const NC = {{NC}}u;  // ceil(HD / 4) chunks of the head dim
const WG = {{WG}}u;

// 4 consecutive dims of a row from element `at` (dim `dim` on), dims past HD as 0 (they read the next row or
// past the end, harmlessly: the value is discarded).
fn headDims(x: vec4<f32>, dim: u32) -> vec4<f32> {
  if (HD % 4u == 0u) { return x; }
  return vec4(x.x, select(0.0, x.y, dim + 1u < HD), select(0.0, x.z, dim + 2u < HD), select(0.0, x.w, dim + 3u < HD));
}
fn q4(at: u32, dim: u32) -> vec4<f32> { return headDims(vec4(q[at], q[at + 1u], q[at + 2u], q[at + 3u]), dim); }
fn k4(at: u32, dim: u32) -> vec4<f32> { return headDims(vec4(k[at], k[at + 1u], k[at + 2u], k[at + 3u]), dim); }
fn v4(at: u32, dim: u32) -> vec4<f32> { return headDims(vec4(v[at], v[at + 1u], v[at + 2u], v[at + 3u]), dim); }

// 4 rows (column = row) whose elements start at `at`, dims d .. d + 3.
fn qBlock(at: vec4<u32>, d: u32) -> mat4x4<f32> { return mat4x4(q4(at[0] + d, d), q4(at[1] + d, d), q4(at[2] + d, d), q4(at[3] + d, d)); }
fn kBlock(at: vec4<u32>, d: u32) -> mat4x4<f32> { return mat4x4(k4(at[0] + d, d), k4(at[1] + d, d), k4(at[2] + d, d), k4(at[3] + d, d)); }
fn vBlock(at: vec4<u32>, d: u32) -> mat4x4<f32> { return mat4x4(v4(at[0] + d, d), v4(at[1] + d, d), v4(at[2] + d, d), v4(at[3] + d, d)); }

// The 4×4 blocks Σ_d rowsᵀ·cols over the head dim of 4 rows (elements at `at`) against 4 groups of 4 columns
// (at c0 .. c3): x_g = Σ_chunks transpose(rowBlock(op, at, d)) · colBlock(op, c_g, d), column = the group's
// column. The kernel defines rowBlock and colBlock; op picks their operands (forward, dq: 0 = q against k,
// 1 = dOut against v; dk/dv: 0 = k against q, 1 = v against dOut).
struct Blocks4 {
  x0: mat4x4<f32>,
  x1: mat4x4<f32>,
  x2: mat4x4<f32>,
  x3: mat4x4<f32>,
}

fn blockProducts(op: u32, at: vec4<u32>, c0: vec4<u32>, c1: vec4<u32>, c2: vec4<u32>, c3: vec4<u32>) -> Blocks4 {
  var x0 = mat4x4<f32>();
  var x1 = mat4x4<f32>();
  var x2 = mat4x4<f32>();
  var x3 = mat4x4<f32>();
  for (var c = 0u; c < NC; c++) {
    let d = 4u * c;
    let rt = transpose(rowBlock(op, at, d));
    x0 += rt * colBlock(op, c0, d);
    x1 += rt * colBlock(op, c1, d);
    x2 += rt * colBlock(op, c2, d);
    x3 += rt * colBlock(op, c3, d);
  }
  return Blocks4(x0, x1, x2, x3);
}

// The first elements of rows first .. first + 3 (clamped to `last`), rows `stride` apart from `base`.
fn rows4(base: u32, first: u32, last: u32, stride: u32) -> vec4<u32> {
  return vec4(base) + min(vec4(first) + vec4(0u, 1u, 2u, 3u), vec4(last)) * stride;
}

// Whether key s is unmasked (s < S).
fn keyOk(b: u32, s: u32) -> bool {
  return s < params.S && (params.hasMask == 0u || keyMask[b * params.S + min(s, params.S - 1u)] != 0);
}

// The 4 query rows t = rb·BR + 4·tid + i (i < 4, BR = 4·WG) of a query block (forward, dq): clamped to T − 1
// in tc, their first elements qAt in q and dOut, the last key each sees, and nKeys, the keys any of them sees.
struct QueryQuad {
  first: u32,
  t: vec4<u32>,
  tc: vec4<u32>,
  qAt: vec4<u32>,
  lastKey: vec4<u32>,
  nKeys: u32,
}

fn queryQuad(qb: QueryBlock, tid: u32) -> QueryQuad {
  let T = params.T;
  let first = qb.rb * 4u * WG + 4u * tid;
  let t = vec4(first) + vec4(0u, 1u, 2u, 3u);
  let tc = min(t, vec4(T - 1u));
  let qAt = ((vec4(qb.b * T) + tc) * params.H + vec4(qb.h)) * HD;
  return QueryQuad(first, t, tc, qAt, t + vec4(qb.off), min(first + 4u, T) + qb.off);
}
