// acc[slot] += Σ x[0..n), one workgroup: a grid-stride sum per invocation, then workgroupSum's tree.
// NaN and Inf propagate. The training step adds each micro-batch's loss sum into its stats buffer with it, and
// copies the gradient norm next to it (n = 1 into a zeroed slot).
{{include:workgroup_total}}

fn sumTerm(i: u32, key: u32) -> f32 {
  return x[i];
}

@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  let total = workgroupTotal(lid.x, params.n, 0u);
  if (lid.x == 0u) {
    acc[params.slot] = acc[params.slot] + total;
  }
}
