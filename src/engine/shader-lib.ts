// WGSL shared by several kernels: shaders/lib/<name>.wgsl, pulled into a kernel's source where it says
// `{{include:<name>}}` (see kernel.ts). Each file is imported here with `?raw`, as the kernels are, so the same
// table serves Vite (the app) and Node (tsx or the `graft` command with scripts/raw-loader.mjs).
import philox from '../../shaders/lib/philox.wgsl?raw';
import workgroupSum from '../../shaders/lib/workgroup_sum.wgsl?raw';

export const SHADER_LIB: Readonly<Record<string, string>> = {
  philox,
  workgroup_sum: workgroupSum,
};
