// SiLU: out = x · sigmoid(x). x is clamped to [−80, 80] inside the sigmoid so that exp never overflows
// (beyond it the sigmoid is 1 or < 2e−35 in f32); for x < −80 the output is exactly 0, as it is to f32 precision.
{{include:elementwise}}

fn element(i: u32) {
  let v = x[i];
  let s = 1.0 / (1.0 + exp(-clamp(v, -80.0, 80.0)));
  out[i] = select(v * s, 0.0, v < -80.0);
}
