// Global gradient norm, pass 2 (one workgroup): norm[0] = sqrt(Σ partials[0..count)).
{{include:workgroup_total}}

fn sumTerm(i: u32, key: u32) -> f32 {
  return partials[i];
}

@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  let total = workgroupTotal(lid.x, params.count, 0u);
  if (lid.x == 0u) {
    norm[0] = sqrt(total);
  }
}
