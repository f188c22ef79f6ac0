// Dispatch grids. WebGPU caps each grid dimension (65535 by default), so element-wise kernels over more
// elements spread their workgroups over x and y. Shaders recover the flat index as
//   let i = gid.x + gid.y * (nwg.x * WG);   // gid: global_invocation_id, nwg: num_workgroups
export function grid1d(count: number, workgroupSize: number, maxPerDim = 65535): [number, number, number] {
  const groups = Math.ceil(count / workgroupSize);
  if (groups <= maxPerDim) return [Math.max(groups, 1), 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}

/**
 * How a row kernel lays out a workgroup of WG threads: W lanes per row, R = WG / W rows per workgroup. W is the
 * smallest power of two ≥ C (at most WG), so short rows (per-head norms, C = 16) share a workgroup.
 */
export function rowLayout(C: number, WG: number): { W: number; R: number; WG: number } {
  let W = 1;
  while (W < C && W < WG) W *= 2;
  return { W, R: WG / W, WG };
}
