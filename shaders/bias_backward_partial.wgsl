// Column sums of dOut [R, N] over a chunk of rows (first pass of dBias = Σ_rows dOut).
// Workgroup (gx, gy) of CW×RW threads sums columns c0 + gx·CW + lid.x over rows [gy·params.chunk, (gy+1)·chunk):
// each thread walks every RW-th row of the chunk (reads coalesced along the row), then the RW partial sums of
// a column are added in a workgroup tree. With params.accumulate = 1 (one chunk covers all rows) the sum goes
// straight into dst = dBias (dst[c] += sum); otherwise dst is the partial buffer [chunks, N] (dst[gy·N + c] = sum)
// that bias_backward_reduce.wgsl adds up.
const CW: u32 = {{CW}}u;
const RW: u32 = {{RW}}u;

var<workgroup> sums: array<f32, CW * RW>;

@compute @workgroup_size(CW, RW)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let N = params.N;
  let c = params.c0 + wid.x * CW + lid.x;
  let r0 = wid.y * params.chunk;
  let r1 = min(r0 + params.chunk, params.R);
  var s = 0.0;
  if (c < N) {
    for (var r = r0 + lid.y; r < r1; r += RW) {
      s += dOut[r * N + c];
    }
  }
  sums[lid.y * CW + lid.x] = s;
  for (var half = RW / 2u; half > 0u; half /= 2u) {
    workgroupBarrier();
    if (lid.y < half) {
      sums[lid.y * CW + lid.x] += sums[(lid.y + half) * CW + lid.x];
    }
  }
  if (lid.y == 0u && c < N) {
    let total = sums[lid.x];
    if (params.accumulate != 0u) {
      dst[c] += total;
    } else {
      dst[wid.y * N + c] = total;
    }
  }
}
