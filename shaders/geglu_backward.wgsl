// GeGLU backward, accumulating: dGate += dOut · up · gelu_tanh'(gate), dUp += dOut · gelu_tanh(gate), with
// gelu_tanh'(g) = s + 2·g·e·s²·K·(1 + 3C·g²) as in gelu_backward.wgsl (same clamping).
{{include:gelu_tanh}}
{{include:elementwise}}

fn element(i: u32) {
  let g = gate[i];
  let gc = clamp(g, -10.0, 10.0);
  let e = geluExp(gc);
  let s = select(1.0 / (1.0 + e), 0.0, g < -10.0);
  var dg = s + 2.0 * gc * (e * s * s) * K * (1.0 + 3.0 * C * gc * gc);
  if (g < -10.0) { dg = 0.0; }
  let d = dOut[i];
  dGate[i] += d * up[i] * dg;
  dUp[i] += d * g * s;
}
