// Global gradient norm, pass 2 (one workgroup): norm[0] = sqrt(Σ partials[0..count)).
{{include:workgroup_sum}}

@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  for (var i = lid.x; i < params.count; i += {{WG}}u) {
    s += partials[i];
  }
  let total = workgroupSum(lid.x, s);
  if (lid.x == 0u) {
    norm[0] = sqrt(total);
  }
}
