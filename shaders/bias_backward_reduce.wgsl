// Second pass of dBias = Σ_rows dOut: dBias[c] += Σ_s partial[s, c] over the chunks' column sums [S, N].
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x + gid.y * nwg.x * {{WG}}u;
  if (c >= params.N) { return; }
  var s = 0.0;
  for (var i = 0u; i < params.S; i++) {
    s += partial[i * params.N + c];
  }
  dBias[c] += s;
}
