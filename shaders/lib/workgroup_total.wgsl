// workgroupTotal(lid, n, key): Σ_{i < n} sumTerm(i, key) over one workgroup: invocation lid sums the terms
// i ≡ lid (mod WG) in order, then workgroupSum's tree adds the partials; every invocation gets the total. The
// kernel defines
//   fn sumTerm(i: u32, key: u32) -> f32
// where `key` carries what the terms need (a row's first element, say). Uniform control flow, as workgroupSum.
{{include:workgroup_sum}}

fn workgroupTotal(lid: u32, n: u32, key: u32) -> f32 {
  var s = 0.0;
  for (var i = lid; i < n; i += {{WG}}u) {
    s += sumTerm(i, key);
  }
  return workgroupSum(lid, s);
}
