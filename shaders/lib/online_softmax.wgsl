// The online softmax of a row (softmax, cross-entropy): each lane keeps a running (max m, Σ exp(x − m)) over
// its columns c ≡ lid.x mod W, then the row's W partials are merged in lane order. The kernel defines
//   fn rowValue(i: u32) -> f32     (element i of the row's input)
// laneMaxSum(row, valid, lid) runs the lanes' pass and stores the partials, then a barrier (call it from
// uniform control flow); rowMaxSum(lid) merges them into the row's (max, Σ exp(x − max)), in any lane.
{{include:row_layout}}

const NEG_BIG = -3.4028234e38;

var<workgroup> redM: array<f32, {{WG}}>;
var<workgroup> redS: array<f32, {{WG}}>;

fn laneMaxSum(row: u32, valid: bool, lid: vec3u) {
  let C = params.C;
  let base = row * C;
  let slot = lid.y * {{W}}u;
  var m = NEG_BIG;
  var s = 0.0;
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      let v = rowValue(base + c);
      if (v > m) {
        s = s * exp(m - v) + 1.0;
        m = v;
      } else {
        s += exp(v - m);
      }
    }
  }
  redM[slot + lid.x] = m;
  redS[slot + lid.x] = s;
  workgroupBarrier();
}

fn rowMaxSum(lid: vec3u) -> vec2<f32> {
  let slot = lid.y * {{W}}u;
  var rowMax = NEG_BIG;
  for (var k = 0u; k < {{W}}u; k++) {
    rowMax = max(rowMax, redM[slot + k]);
  }
  var sum = 0.0;
  for (var k = 0u; k < {{W}}u; k++) {
    sum += redS[slot + k] * exp(redM[slot + k] - rowMax);
  }
  return vec2(rowMax, sum);
}
