// Cross-entropy after the last chunk: losses[t] = logsumexp_t − targetLogit[t] with
// logsumexp_t = m + log(s) from stats[t] = (m, s), written as (m − targetLogit) + log(s) so that a loss near 0
// does not lose its digits to a large m; 0 where targets[t] == −100. stats is left as it is, for the backward.
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * {{WG}}u;
  if (t >= params.T) { return; }
  if (targets[t] == -100) {
    losses[t] = 0.0;
    return;
  }
  losses[t] = (stats[2u * t] - targetLogit[t]) + log(stats[2u * t + 1u]);
}
