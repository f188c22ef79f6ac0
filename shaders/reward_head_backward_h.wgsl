// The reward head's backward into the hidden states, accumulating: dHidden[rows[b], k] += coef[b] · w[k]
// (one invocation per (b, k); rows are distinct, so no two invocations write one element).
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  if (i >= params.n) {
    return;
  }
  let b = i / params.H;
  let k = i - b * params.H;
  let at = rows[b] * params.H + k;
  dHidden[at] += coef[b] * w[k];
}
