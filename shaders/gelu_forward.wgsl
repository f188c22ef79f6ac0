// GELU, tanh approximation (GPT-2's gelu_new, PyTorch approximate='tanh'):
//   gelu(x) = 0.5·x·(1 + tanh(u)),  u = sqrt(2/π)·(x + 0.044715·x³).
// 0.5·(1 + tanh(u)) = sigmoid(2u), so gelu(x) = x·s with s = 1/(1 + e), e = exp(−2u): no cancellation for
// negative x. x is clamped to [−10, 10] inside the sigmoid (beyond it s is 1 or < 2e−38 in f32), so neither
// x³ nor exp overflows; for x < −10 the output is exactly x·0.
{{include:gelu_tanh}}
{{include:elementwise}}

fn element(i: u32) {
  let v = x[i];
  let s = select(1.0 / (1.0 + geluExp(clamp(v, -10.0, 10.0))), 0.0, v < -10.0);
  out[i] = v * s;
}
