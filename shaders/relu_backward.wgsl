// ReLU backward, accumulating: dx += dOut where x > 0 (PyTorch's threshold_backward: the gradient at 0 is 0).
{{include:elementwise}}

fn element(i: u32) {
  dx[i] += select(0.0, dOut[i], x[i] > 0.0);
}
