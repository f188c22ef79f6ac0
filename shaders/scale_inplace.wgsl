// x *= alpha, element-wise over n values (x is bound once, read_write).
{{include:elementwise}}

fn element(i: u32) {
  x[i] = params.alpha * x[i];
}
