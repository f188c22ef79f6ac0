// GELU, tanh approximation (GPT-2's gelu_new, PyTorch approximate='tanh'):
//   gelu(x) = 0.5·x·(1 + tanh(u)),  u = sqrt(2/π)·(x + 0.044715·x³).
// 0.5·(1 + tanh(u)) = sigmoid(2u), so gelu(x) = x·s with s = 1/(1 + e), e = exp(−2u): no cancellation for
// negative x. x is clamped to [−10, 10] inside the sigmoid (beyond it s is 1 or < 2e−38 in f32), so neither
// x³ nor exp overflows; for x < −10 the output is exactly x·0.
const K: f32 = 0.7978845608028654; // sqrt(2/π)
const C: f32 = 0.044715;

{{include:elementwise}}

fn element(i: u32) {
  let v = x[i];
  let xc = clamp(v, -10.0, 10.0);
  let e = exp(-2.0 * K * (xc + C * xc * xc * xc));
  let s = select(1.0 / (1.0 + e), 0.0, v < -10.0);
  out[i] = v * s;
}
