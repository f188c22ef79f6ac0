// The entry point of the flash-attention kernels (the tiled and the register ones alike) and the block of work
// a workgroup owns. Workgroup w = x + y·nwg.x runs the kernel's
//   fn flashBlock(w: u32, tid: u32)
// when w < params.nWork (the grid may hold a few more, which do nothing); tid is local_invocation_index.
//   queryBlock (forward, dq): row block rb = nBlocks − 1 − w % nBlocks (the longest rows first) of head
//              (b, h) = w / nBlocks, which reads kv head kh = h / (H / Hkv);
//   keyBlock (dk/dv): key block kb = w % nBlocks (the earliest keys, seen by the most queries, first) of
//              (b, kv head kh) = w / nBlocks, shared by the `group` query heads kh·group ...
// Both give the offset of the queries among the keys (off = S − T: query t sees keys s ≤ t + off) and where
// the kv head's rows start: element (b, s, kh, d) of k and v is kBase + s·kvStride + d. HD is the kernel's
// head dim.
// Sliding-window attention (Gemma's local layers; SLIDING is a compile-time switch, params.window the width):
// key s is seen by the query whose last visible key is `last` (= t + S − T) when s ≤ last and, sliding,
// last − window < s (the window holds the query's own position and the window − 1 before it).
const SLIDING: bool = {{SLIDING}};

fn seen(s: u32, last: u32) -> bool {
  return s <= last && (!SLIDING || s + params.window > last);
}

fn seen4(s: vec4<u32>, last: vec4<u32>) -> vec4<bool> {
  return (s <= last) & (vec4(!SLIDING) | (s + vec4(params.window) > last));
}

struct QueryBlock {
  b: u32, h: u32, rb: u32,  // batch, query head, row block
  off: u32, kvStride: u32, kBase: u32,
}

struct KeyBlock {
  b: u32, kh: u32, kb: u32, group: u32,  // batch, kv head, key block, query heads per kv head
  off: u32, kvStride: u32, kBase: u32,
}

fn queryBlock(w: u32) -> QueryBlock {
  let nRB = params.nBlocks;
  let bh = w / nRB;
  let h = bh % params.H;
  let b = bh / params.H;
  let kh = h / (params.H / params.Hkv);
  let kvStride = params.Hkv * HD;
  return QueryBlock(b, h, nRB - 1u - w % nRB, params.S - params.T, kvStride, b * params.S * kvStride + kh * HD);
}

fn keyBlock(w: u32) -> KeyBlock {
  let nKB = params.nBlocks;
  let bkh = w / nKB;
  let kh = bkh % params.Hkv;
  let b = bkh / params.Hkv;
  let kvStride = params.Hkv * HD;
  return KeyBlock(b, kh, w % nKB, params.H / params.Hkv, params.S - params.T, kvStride, b * params.S * kvStride + kh * HD);
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) tid: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w < params.nWork) {
    flashBlock(w, tid);
  }
}
