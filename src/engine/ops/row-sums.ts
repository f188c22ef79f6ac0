// Per-row sums and their backward, for objectives that score whole sequences (DPO's S = −Σ NLL of a sequence):
//   rowSums     out[R] = Σ_t x[R, T]           one workgroup per row, workgroupSum's tree
//   expandRows  out[R, T] = coef[R] per row    the backward of rowSums: the upstream gradient of each row
//                                              copied to its positions (written, not accumulated: the caller
//                                              hands it to crossEntropyChunkBackward as per-token weights)
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import type { Tensor } from '../tensor';
import rowSumsSrc from '../../../shaders/row_sums.wgsl?raw';
import expandSrc from '../../../shaders/expand_rows.wgsl?raw';

const WG = 64;

const rowSumsSpec: KernelSpec = {
  name: 'row_sums',
  source: rowSumsSrc,
  bindings: [rw('out'), ro('x')],
  params: [['T', 'u32']],
  defines: { WG },
};

const expandSpec: KernelSpec = {
  name: 'expand_rows',
  source: expandSrc,
  bindings: [rw('out'), ro('coef')],
  params: [
    ['n', 'u32'],
    ['T', 'u32'],
  ],
  defines: { WG },
};

/** out[R] = row sums of x [R, T] (one workgroup per row). */
export function rowSums(ctx: GpuContext, out: Tensor, x: Tensor, T: number): void {
  const R = out.size;
  if (x.size !== R * T) throw new Error(`rowSums: x holds ${x.size} values, not ${R} rows of ${T}`);
  if (R === 0) return;
  ctx.dispatch(ctx.kernel(rowSumsSpec), { out, x }, { T }, [R]);
}

/** out[R·T] = coef[R] at every position of the row (writes out). */
export function expandRows(ctx: GpuContext, out: Tensor, coef: Tensor, T: number): void {
  const n = coef.size * T;
  if (out.size !== n) throw new Error(`expandRows: out holds ${out.size} values, not ${coef.size} rows of ${T}`);
  if (n === 0) return;
  ctx.dispatch(ctx.kernel(expandSpec), { out, coef }, { n, T }, grid1d(n, WG, ctx.limits.maxComputeWorkgroupsPerDimension));
}
