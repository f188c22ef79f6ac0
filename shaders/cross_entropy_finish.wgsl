// Cross-entropy after the last chunk: losses[t] = logsumexp_t − targetLogit[t] with
// logsumexp_t = m + log(s) from stats[t] = (m, s), written as (m − targetLogit) + log(s) so that a loss near 0
// does not lose its digits to a large m; 0 where targets[t] == −100. stats is left as it is, for the backward.
{{include:elementwise}}

fn element(t: u32) {
  if (targets[t] == -100) {
    losses[t] = 0.0;
    return;
  }
  losses[t] = (stats[2u * t] - targetLogit[t]) + log(stats[2u * t + 1u]);
}
