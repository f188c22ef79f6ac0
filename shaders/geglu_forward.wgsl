// GeGLU with GELU's tanh approximation (Gemma's MLP: gelu_pytorch_tanh): out = gelu_tanh(gate) · up, element-wise
// over n values. gelu_tanh(g) = g·s, s = sigmoid(2u), as gelu_forward.wgsl computes it (lib/gelu_tanh.wgsl).
{{include:gelu_tanh}}
{{include:elementwise}}

fn element(i: u32) {
  let g = gate[i];
  let s = select(1.0 / (1.0 + geluExp(clamp(g, -10.0, 10.0))), 0.0, g < -10.0);
  out[i] = g * s * up[i];
}
