// acc[base + k] += Σ x[i] over i with seg[i] == k, one workgroup per segment k (seg −1: in no segment). A
// grid-stride pass per invocation, then workgroupSum's tree: no atomics, NaN and Inf propagate. The per-task
// loss sums of a multi-task step.
{{include:workgroup_sum}}
@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let k = i32(wid.x);
  var s = 0.0;
  for (var i = lid.x; i < params.n; i += {{WG}}u) {
    if (seg[i] == k) {
      s += x[i];
    }
  }
  let total = workgroupSum(lid.x, s);
  if (lid.x == 0u) {
    acc[params.base + wid.x] = acc[params.base + wid.x] + total;
  }
}
