// RMSNorm dWeight, second pass, accumulating: dWeight[c] += Σ_b partial[b, c] (column c of n values).
// Also used for LayerNorm's dWeight and dBias, whose partials are laid out as [blocks, 2·C].
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x + gid.y * nwg.x * {{WG}}u;
  if (c >= params.n) { return; }
  var acc = 0.0;
  for (var b = 0u; b < params.blocks; b++) {
    acc += partial[b * params.stride + params.offset + c];
  }
  dWeight[c] += acc;
}
