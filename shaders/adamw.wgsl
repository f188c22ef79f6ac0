// One AdamW step, PyTorch semantics (torch.optim.AdamW, amsgrad=False, maximize=False), element-wise:
//   g = grad · gradScale                       (gradScale: the clipping coefficient, or 1)
//   param *= 1 − lr·weightDecay                (decoupled weight decay, applied before the update)
//   m = β1·m + (1 − β1)·g;   v = β2·v + (1 − β2)·g²
//   param −= (lr / (1 − β1^step)) · m / (sqrt(v) / sqrt(1 − β2^step) + eps)
// The bias corrections and 1 − β are computed on the CPU in float64 and passed in. The gated variant first
// reads gate[0] (step_gate.wgsl) and leaves param, m and v untouched when it is 0: a skipped step, decided on
// the GPU so that the trainer can record the update before the step's statistics are read back.
{{include:elementwise}}

fn element(i: u32) {
  {{GATE}}
  let g = grad[i] * {{GRAD_SCALE}};
  let mi = params.beta1 * m[i] + params.oneMinusBeta1 * g;
  let vi = params.beta2 * v[i] + params.oneMinusBeta2 * (g * g);
  m[i] = mi;
  v[i] = vi;
  let p = param[i] * params.decay;
  param[i] = p - params.stepSize * mi / (sqrt(vi) / params.bc2Sqrt + params.eps);
}
