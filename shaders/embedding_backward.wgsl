// Embedding gradient without atomics: dTable[id, c] += Σ_{t : ids[t] = id} dOut[t, c].
// The CPU grouped the token positions by id: unique id g is uniqueIds[g], its positions are
// positions[offsets[g] .. offsets[g + 1]) in ascending order. One workgroup per unique id; its invocations
// stride over the C channels and each sums its channel over the positions in order, so the result does not
// depend on scheduling (deterministic), and no two workgroups write the same row.
@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= params.count) { return; }
  let row = u32(uniqueIds[g]) * params.C;
  let start = offsets[g];
  let end = offsets[g + 1u];
  for (var c = lid.x; c < params.C; c += {{WG}}u) {
    var s = 0.0;
    for (var k = start; k < end; k++) {
      s += dOut[positions[k] * params.C + c];
    }
    dTable[row + c] += s;
  }
}
