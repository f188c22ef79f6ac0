// A reward model's head: out[b] = w · hidden[rows[b], :] (hidden [N, H], w [H]), one workgroup per sequence:
// a strided dot product per invocation, then workgroupSum's tree.
{{include:workgroup_sum}}
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let b = wid.x;
  let base = rows[b] * params.H;
  var s = 0.0;
  for (var k = lid.x; k < params.H; k += {{WG}}u) {
    s += hidden[base + k] * w[k];
  }
  let total = workgroupSum(lid.x, s);
  if (lid.x == 0u) {
    out[b] = total;
  }
}
