// The reward head's backward into the hidden states, accumulating: dHidden[rows[b], k] += coef[b] · w[k]
// (one invocation per (b, k); rows are distinct, so no two invocations write one element).
{{include:elementwise}}

fn element(i: u32) {
  let b = i / params.H;
  let k = i - b * params.H;
  let at = rows[b] * params.H + k;
  dHidden[at] += coef[b] * w[k];
}
