// A reward model's head: out[b] = w · hidden[rows[b], :] (hidden [N, H], w [H]), one workgroup per sequence:
// a strided dot product per invocation, then workgroupSum's tree.
{{include:workgroup_total}}

// key: the first element of the sequence's row of hidden
fn sumTerm(k: u32, key: u32) -> f32 {
  return hidden[key + k] * w[k];
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let b = wid.x;
  let total = workgroupTotal(lid.x, params.H, rows[b] * params.H);
  if (lid.x == 0u) {
    out[b] = total;
  }
}
