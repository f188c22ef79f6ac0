// SiLU backward, accumulating: dx += silu'(x) · dOut, silu'(x) = s · (1 + x · (1 − s)), s = sigmoid(x).
// Same clamp as the forward; for x < −80 the derivative is 0 to f32 precision.
{{include:elementwise}}

fn element(i: u32) {
  let v = x[i];
  let s = 1.0 / (1.0 + exp(-clamp(v, -80.0, 80.0)));
  let d = select(s * (1.0 + v * (1.0 - s)), 0.0, v < -80.0);
  dx[i] += d * dOut[i];
}
