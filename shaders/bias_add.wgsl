// In-place bias: out[row, c] += bias[c] for every row of out [rows, N]. Element-wise over n = rows·N values.
{{include:elementwise}}

fn element(i: u32) {
  out[i] += bias[i % params.N];
}
