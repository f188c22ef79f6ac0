// SiLU: out = x · sigmoid(x). x is clamped to [−80, 80] inside the sigmoid so that exp never overflows
// (beyond it the sigmoid is 1 or < 2e−35 in f32); for x < −80 the output is exactly 0, as it is to f32 precision.
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  if (i >= params.n) { return; }
  let v = x[i];
  let s = 1.0 / (1.0 + exp(-clamp(v, -80.0, 80.0)));
  out[i] = select(v * s, 0.0, v < -80.0);
}
