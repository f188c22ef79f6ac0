// Cross-entropy, before the first vocabulary chunk: stats[t] = (running max, running Σ exp(logit − max))
// = (lowest finite f32, 0), the empty sum; targetLogit[t] = 0 until the chunk holding the target writes it.
{{include:elementwise}}

fn element(t: u32) {
  stats[2u * t] = -3.4028234e38;
  stats[2u * t + 1u] = 0.0;
  targetLogit[t] = 0.0;
}
