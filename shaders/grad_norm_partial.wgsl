// Global gradient norm, pass 1 (one dispatch per gradient tensor): workgroup g of params.groups sums the squares
// of its grid-stride share of src[0..n) and writes the sum to partials[base + g]. A tree in workgroup memory,
// no atomics; NaN and Inf propagate through the sums.
{{include:workgroup_sum}}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let stride = params.groups * {{WG}}u;
  var s = 0.0;
  for (var i = wid.x * {{WG}}u + lid.x; i < params.n; i += stride) {
    let x = src[i];
    s += x * x;
  }
  let total = workgroupSum(lid.x, s);
  if (lid.x == 0u) {
    partials[params.base + wid.x] = total;
  }
}
