// GELU's tanh approximation, shared by its forward and backward: gelu(x) = x·s, s = sigmoid(2u) = 1/(1 + e)
// with u = K·(x + C·x³) and e = exp(−2u), x clamped to [−10, 10] (see gelu_forward.wgsl).
const K: f32 = 0.7978845608028654; // sqrt(2/π)
const C: f32 = 0.044715;

// e = exp(−2u) of the clamped x.
fn geluExp(xc: f32) -> f32 {
  return exp(-2.0 * K * (xc + C * xc * xc * xc));
}
