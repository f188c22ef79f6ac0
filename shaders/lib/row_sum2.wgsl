// rowSum2(row, valid, lid, arg): row_sum.wgsl's sum for two values at once (a vec2 per lane, one barrier), of
//   fn rowTerm2(i: u32, c: u32, arg: vec2<f32>) -> vec2<f32>
// which the kernel defines; `arg` passes it what the row needs (a mean, an rstd). Its workgroup array is its
// own, so it may follow a rowSum without a barrier between.
{{include:row_layout}}

var<workgroup> rowPartials2: array<vec2<f32>, {{WG}}>;

fn rowSum2(row: u32, valid: bool, lid: vec3u, arg: vec2<f32>) -> vec2<f32> {
  let C = params.C;
  let base = row * C;
  let slot = lid.y * {{W}}u;
  var acc = vec2<f32>(0.0, 0.0);
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      acc += rowTerm2(base + c, c, arg);
    }
  }
  rowPartials2[slot + lid.x] = acc;
  workgroupBarrier();
  var sums = vec2<f32>(0.0, 0.0);
  for (var k = 0u; k < {{W}}u; k++) {
    sums += rowPartials2[slot + k];
  }
  return sums;
}
