// SwiGLU: out = silu(gate) · up, silu(g) = g · sigmoid(g). Element-wise over n values.
{{include:elementwise}}

fn element(i: u32) {
  let g = gate[i];
  let s = 1.0 / (1.0 + exp(-g));
  out[i] = g * s * up[i];
}
