// Embedding lookup: out[t, c] = table[ids[t], c], one invocation per output element (n = T·C).
// The kernel cannot report a bad id, so an id outside [0, V) yields a row of zeros; the CPU side rejects such
// ids where it sees them (buildEmbeddingGradIndex).
{{include:elementwise}}

fn element(i: u32) {
  let t = i / params.C;
  let c = i - t * params.C;
  let id = ids[t];
  if (id < 0 || u32(id) >= params.V) {
    out[i] = 0.0;
    return;
  }
  out[i] = table[u32(id) * params.C + c];
}
