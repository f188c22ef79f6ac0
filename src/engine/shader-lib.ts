// WGSL shared by several kernels: shaders/lib/<name>.wgsl, pulled into a kernel's source where it says
// `{{include:<name>}}` (see kernel.ts). Each file is imported here with `?raw`, as the kernels are, so the same
// table serves Vite (the app) and Node (tsx or the `graft` command with scripts/raw-loader.mjs).
import columnBlocks from '../../shaders/lib/column_blocks.wgsl?raw';
import elementwise from '../../shaders/lib/elementwise.wgsl?raw';
import flashRegister from '../../shaders/lib/flash_register.wgsl?raw';
import flashRegisterDout from '../../shaders/lib/flash_register_dout.wgsl?raw';
import flashTiled from '../../shaders/lib/flash_tiled.wgsl?raw';
import flashTiledKeys from '../../shaders/lib/flash_tiled_keys.wgsl?raw';
import flashTiledQueries from '../../shaders/lib/flash_tiled_queries.wgsl?raw';
import flashWork from '../../shaders/lib/flash_work.wgsl?raw';
import geluTanh from '../../shaders/lib/gelu_tanh.wgsl?raw';
import matmulBlocks from '../../shaders/lib/matmul_blocks.wgsl?raw';
import onlineSoftmax from '../../shaders/lib/online_softmax.wgsl?raw';
import philox from '../../shaders/lib/philox.wgsl?raw';
import rowLayout from '../../shaders/lib/row_layout.wgsl?raw';
import rowSum from '../../shaders/lib/row_sum.wgsl?raw';
import rowSum2 from '../../shaders/lib/row_sum2.wgsl?raw';
import workgroupSum from '../../shaders/lib/workgroup_sum.wgsl?raw';
import workgroupTotal from '../../shaders/lib/workgroup_total.wgsl?raw';
import weightF32 from '../../shaders/lib/weight_f32.wgsl?raw';
import weightF32x4 from '../../shaders/lib/weight_f32x4.wgsl?raw';
import weightF16 from '../../shaders/lib/weight_f16.wgsl?raw';
import weightBf16 from '../../shaders/lib/weight_bf16.wgsl?raw';
import weightNf4 from '../../shaders/lib/weight_nf4.wgsl?raw';
import weightFp4 from '../../shaders/lib/weight_fp4.wgsl?raw';
import weightInt8 from '../../shaders/lib/weight_int8.wgsl?raw';

export const SHADER_LIB: Readonly<Record<string, string>> = {
  column_blocks: columnBlocks,
  elementwise,
  flash_register: flashRegister,
  flash_register_dout: flashRegisterDout,
  flash_tiled: flashTiled,
  flash_tiled_keys: flashTiledKeys,
  flash_tiled_queries: flashTiledQueries,
  flash_work: flashWork,
  gelu_tanh: geluTanh,
  matmul_blocks: matmulBlocks,
  online_softmax: onlineSoftmax,
  philox,
  row_layout: rowLayout,
  row_sum: rowSum,
  row_sum2: rowSum2,
  workgroup_sum: workgroupSum,
  workgroup_total: workgroupTotal,
  weight_f32: weightF32,
  weight_f32x4: weightF32x4,
  weight_f16: weightF16,
  weight_bf16: weightBf16,
  weight_nf4: weightNf4,
  weight_fp4: weightFp4,
  weight_int8: weightInt8,
};
