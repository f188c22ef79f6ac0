// rowSum(row, valid, lid): Σ_c rowTerm(row·C + c, c) over the row's C = params.C columns, in every lane of the
// row. Each lane sums its columns, then after one barrier every lane adds the row's W partials itself, in lane
// order (one barrier instead of a log₂ W tree; the reads are broadcasts). The kernel defines
//   fn rowTerm(i: u32, c: u32) -> f32     (i: the element, c: its column)
// Call it from uniform control flow, once per kernel (row_sum2.wgsl has a second array for a second sum).
{{include:row_layout}}

var<workgroup> rowPartials: array<f32, {{WG}}>;

fn rowSum(row: u32, valid: bool, lid: vec3u) -> f32 {
  let C = params.C;
  let base = row * C;
  let slot = lid.y * {{W}}u;
  var acc = 0.0;
  if (valid) {
    for (var c = lid.x; c < C; c += {{W}}u) {
      acc += rowTerm(base + c, c);
    }
  }
  rowPartials[slot + lid.x] = acc;
  workgroupBarrier();
  var sum = 0.0;
  for (var k = 0u; k < {{W}}u; k++) {
    sum += rowPartials[slot + k];
  }
  return sum;
}
