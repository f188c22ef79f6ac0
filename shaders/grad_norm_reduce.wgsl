// Global gradient norm, pass 2 (one workgroup): norm[0] = sqrt(Σ partials[0..count)).
var<workgroup> sums: array<f32, {{WG}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  for (var i = lid.x; i < params.count; i += {{WG}}u) {
    s += partials[i];
  }
  sums[lid.x] = s;
  workgroupBarrier();
  for (var k = {{WG}}u / 2u; k > 0u; k >>= 1u) {
    if (lid.x < k) {
      sums[lid.x] += sums[lid.x + k];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    norm[0] = sqrt(sums[0]);
  }
}
