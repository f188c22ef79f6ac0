// out = a + b, element-wise over n values (the residual add).
{{include:elementwise}}

fn element(i: u32) {
  out[i] = a[i] + b[i];
}
