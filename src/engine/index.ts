export { GpuContext, type CompiledKernel, type ContextStats } from './context';
export { Tensor, numel, DTYPE_BYTES, type DType } from './tensor';
export { GpuError, type GpuErrorCode, formatBytes } from './errors';
export { type KernelSpec, type BindingSpec } from './kernel';
export { grid1d } from './grid';
export { type AdapterSummary } from './adapter-info';
