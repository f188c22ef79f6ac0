// The second pass of a split-K matmul: out[i] = alpha · Σ_s part[s, i]  (+ out[i] when params.accumulate = 1),
// over n = M·N outputs and params.chunks partial products (part is [chunks, n]; the sum runs in chunk order).
{{include:elementwise}}

fn element(i: u32) {
  var s = 0.0;
  for (var c = 0u; c < params.chunks; c++) {
    s += part[c * params.n + i];
  }
  if (params.accumulate != 0u) {
    out[i] = out[i] + params.alpha * s;
  } else {
    out[i] = params.alpha * s;
  }
}
