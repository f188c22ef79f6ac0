// acc += x, element-wise over n values (acc is bound once, read_write).
{{include:elementwise}}

fn element(i: u32) {
  acc[i] += x[i];
}
