// WGSL shared by several kernels: shaders/lib/<name>.wgsl, pulled into a kernel's source where it says
// `{{include:<name>}}` (see kernel.ts). Each file is imported here with `?raw`, as the kernels are, so the same
// table serves Vite (the app) and Node (tsx or the `graft` command with scripts/raw-loader.mjs).
import elementwise from '../../shaders/lib/elementwise.wgsl?raw';
import onlineSoftmax from '../../shaders/lib/online_softmax.wgsl?raw';
import philox from '../../shaders/lib/philox.wgsl?raw';
import rowLayout from '../../shaders/lib/row_layout.wgsl?raw';
import rowSum from '../../shaders/lib/row_sum.wgsl?raw';
import rowSum2 from '../../shaders/lib/row_sum2.wgsl?raw';
import workgroupSum from '../../shaders/lib/workgroup_sum.wgsl?raw';

export const SHADER_LIB: Readonly<Record<string, string>> = {
  elementwise,
  online_softmax: onlineSoftmax,
  philox,
  row_layout: rowLayout,
  row_sum: rowSum,
  row_sum2: rowSum2,
  workgroup_sum: workgroupSum,
};
