// out[row] = Σ_t x[row·T + t], one workgroup per row: a strided sum per invocation, then workgroupSum's tree.
// The per-sequence sums of the per-token NLL (the preference objectives' S = −NLL).
{{include:workgroup_total}}

// key: the row's first element
fn sumTerm(t: u32, key: u32) -> f32 {
  return x[key + t];
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.x;
  let total = workgroupTotal(lid.x, params.T, row * params.T);
  if (lid.x == 0u) {
    out[row] = total;
  }
}
