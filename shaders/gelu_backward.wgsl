// GELU (tanh approximation) backward, accumulating: dx += gelu'(x)·dOut.
// With s = sigmoid(2u), u = K·(x + C·x³): gelu(x) = x·s, so
//   gelu'(x) = s + x·2·s·(1 − s)·K·(1 + 3C·x²),  and s·(1 − s) = e·s² with e = exp(−2u) (no cancellation).
// Same clamping as the forward: for |x| > 10 the derivative is 1 (x > 0) or 0 (x < 0) to f32 precision.
{{include:gelu_tanh}}
{{include:elementwise}}

fn element(i: u32) {
  let v = x[i];
  let xc = clamp(v, -10.0, 10.0);
  let e = geluExp(xc);
  let s = 1.0 / (1.0 + e);
  var d = s + 2.0 * xc * (e * s * s) * K * (1.0 + 3.0 * C * xc * xc);
  if (v < -10.0) { d = 0.0; }
  dx[i] += d * dOut[i];
}
