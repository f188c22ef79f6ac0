// ReLU: out = max(x, 0). Element-wise over n values.
{{include:elementwise}}

fn element(i: u32) {
  out[i] = max(x[i], 0.0);
}
