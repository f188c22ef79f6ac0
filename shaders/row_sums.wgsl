// out[row] = Σ_t x[row·T + t], one workgroup per row: a strided sum per invocation, then workgroupSum's tree.
// The per-sequence sums of the per-token NLL (the preference objectives' S = −NLL).
{{include:workgroup_sum}}
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.x;
  var s = 0.0;
  for (var t = lid.x; t < params.T; t += {{WG}}u) {
    s += x[row * params.T + t];
  }
  let total = workgroupSum(lid.x, s);
  if (lid.x == 0u) {
    out[row] = total;
  }
}
