// out = alpha · x, element-wise over n values.
{{include:elementwise}}

fn element(i: u32) {
  out[i] = params.alpha * x[i];
}
