// Dropout forward: out = x / (1 − p) where kept, 0 where dropped; the mask is recomputed from
// (seed, offset + i), never stored.
{{include:philox}}

{{include:elementwise}}

fn element(i: u32) {
  out[i] = select(0.0, x[i] * params.keepScale, dropoutKeep(i));
}
