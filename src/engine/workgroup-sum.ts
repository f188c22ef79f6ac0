// A WGSL function for kernels that sum one value per invocation over a workgroup (a tree in workgroup memory):
// append WORKGROUP_SUM_WGSL to a kernel's source (it needs the {{WG}} define, a power of two) and call
//
//   let total = workgroupSum(lid.x, s);
//
// from uniform control flow in every invocation of the workgroup (it holds barriers); every invocation gets
// the total. The order of additions is fixed (pairs k apart, k = WG/2, WG/4, ...), so results are deterministic.
export const WORKGROUP_SUM_WGSL = /* wgsl */ `
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
`;
