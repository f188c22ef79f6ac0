// acc[slot] += Σ x[0..n), one workgroup: a grid-stride sum per invocation, then workgroupSum's tree.
// NaN and Inf propagate. The training step adds each micro-batch's loss sum into its stats buffer with it, and
// copies the gradient norm next to it (n = 1 into a zeroed slot).
{{include:workgroup_sum}}
@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  for (var i = lid.x; i < params.n; i += {{WG}}u) {
    s += x[i];
  }
  let total = workgroupSum(lid.x, s);
  if (lid.x == 0u) {
    acc[params.slot] = acc[params.slot] + total;
  }
}
