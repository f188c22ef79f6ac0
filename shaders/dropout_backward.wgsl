// Dropout backward, accumulating: dx += mask · dOut / (1 − p), with the forward's mask regenerated from
// (seed, offset + i).
{{include:philox}}

{{include:elementwise}}

fn element(i: u32) {
  if (dropoutKeep(i)) {
    dx[i] += dOut[i] * params.keepScale;
  }
}
