// workgroupSum(lid, s): the sum of one value per invocation over a workgroup of {{WG}} invocations (a power
// of two), as a tree in workgroup memory; every invocation gets the total. Call it from uniform control flow
// (it holds barriers). The order of additions is fixed (pairs k apart, k = WG/2, WG/4, ...), so results are
// deterministic. To call it again in the same kernel, put a workgroupBarrier() between the calls: the next
// call overwrites the sums that slower invocations may still be reading.
var<workgroup> workgroupSums: array<f32, {{WG}}>;

fn workgroupSum(lid: u32, s: f32) -> f32 {
  workgroupSums[lid] = s;
  workgroupBarrier();
  for (var k = {{WG}}u / 2u; k > 0u; k >>= 1u) {
    if (lid < k) {
      workgroupSums[lid] += workgroupSums[lid + k];
    }
    workgroupBarrier();
  }
  return workgroupSums[0];
}
