// The reward head's backward into its weight, accumulating: dW[k] += Σ_b coef[b] · hidden[rows[b], k]
// (one invocation per k; B is small, summed in order).
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let k = gid.x;
  if (k >= params.H) {
    return;
  }
  var s = 0.0;
  for (var b = 0u; b < params.B; b++) {
    s += coef[b] * hidden[rows[b] * params.H + k];
  }
  dW[k] += s;
}
