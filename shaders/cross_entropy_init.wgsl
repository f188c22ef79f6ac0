// Cross-entropy, before the first vocabulary chunk: stats[t] = (running max, running Σ exp(logit − max))
// = (lowest finite f32, 0), the empty sum; targetLogit[t] = 0 until the chunk holding the target writes it.
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * {{WG}}u;
  if (t >= params.T) { return; }
  stats[2u * t] = -3.4028234e38;
  stats[2u * t + 1u] = 0.0;
  targetLogit[t] = 0.0;
}
