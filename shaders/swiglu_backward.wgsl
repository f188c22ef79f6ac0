// SwiGLU backward, accumulating: dGate += dOut · up · silu'(gate), dUp += dOut · silu(gate),
// silu'(g) = s · (1 + g · (1 − s)) with s = sigmoid(g).
{{include:elementwise}}

fn element(i: u32) {
  let g = gate[i];
  let s = 1.0 / (1.0 + exp(-g));
  let d = dOut[i];
  dGate[i] += d * up[i] * s * (1.0 + g * (1.0 - s));
  dUp[i] += d * g * s;
}
