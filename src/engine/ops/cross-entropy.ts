// Cross-entropy of next-token logits (ignore_index −100) over the vocabulary in chunks, so that the [T × V] logits
// never have to be resident at once; the call sequence and the running state: docs/kernels.md ("Cross-entropy over
// vocabulary chunks").
import type { GpuContext } from '../context';
import { grid1d, rowLayout } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import initSrc from '../../../shaders/cross_entropy_init.wgsl?raw';
import chunkSrc from '../../../shaders/cross_entropy_chunk.wgsl?raw';
import finishSrc from '../../../shaders/cross_entropy_finish.wgsl?raw';
import chunkBackwardSrc from '../../../shaders/cross_entropy_chunk_backward.wgsl?raw';

/** Threads per workgroup of the element-wise kernels. */
const EW = 256;
/** Threads per workgroup of the row kernel (see ops/norm.ts for why 64). */
const WG = 64;

/** The value of `targets` that marks a token without a label (PyTorch's ignore_index). */
export const IGNORE_INDEX = -100;

const initSpec: KernelSpec = {
  name: 'cross_entropy_init',
  source: initSrc,
  bindings: [rw('stats'), rw('targetLogit')],
  params: [['n', 'u32']],
  defines: { WG: EW },
};

const chunkSpec: KernelSpec = {
  name: 'cross_entropy_chunk',
  source: chunkSrc,
  bindings: [rw('stats'), rw('targetLogit'), ro('logits'), ro('targets', 'i32')],
  params: [
    ['rows', 'u32'],
    ['C', 'u32'],
    ['vocabStart', 'u32'],
  ],
  defines: { W: WG, R: 1, WG },
};

const finishSpec: KernelSpec = {
  name: 'cross_entropy_finish',
  source: finishSrc,
  bindings: [rw('losses'), ro('stats'), ro('targetLogit'), ro('targets', 'i32')],
  params: [['n', 'u32']],
  defines: { WG: EW },
};

const chunkBackwardSpec: KernelSpec = {
  name: 'cross_entropy_chunk_backward',
  source: chunkBackwardSrc,
  bindings: [rw('dLogits'), ro('logits'), ro('stats'), ro('targets', 'i32'), ro('dLoss')],
  params: [
    ['n', 'u32'],
    ['C', 'u32'],
    ['vocabStart', 'u32'],
  ],
  defines: { WG: EW },
};

// ---- shape checks ---------------------------------------------------------------------------------------


function expectDtype(op: string, name: string, t: Tensor, dtype: 'f32' | 'i32'): void {
  if (t.dtype !== dtype) throw new Error(`${op}: ${name} is ${t.dtype}, expected ${dtype}`);
}

/** Checks the per-token tensors: stats [T, 2], the others [T] (element counts; any shape). */
function tokenShapes(op: string, T: number, what: string, perToken: Record<string, Tensor>, stats?: Tensor): void {
  for (const [name, t] of Object.entries(perToken)) {
    if (t.size !== T) throw new Error(`${op}: ${name} ${shapeText(t)} should hold one value per token of ${what} (${T})`);
  }
  if (stats && stats.size !== 2 * T) {
    throw new Error(`${op}: stats ${shapeText(stats)} should be [${T}, 2] for ${what}`);
  }
}

/** T and C of logits [T, C] (any leading dims are tokens). */
function logitsShape(op: string, logits: Tensor): { T: number; C: number } {
  expectDtype(op, 'logits', logits, 'f32');
  const C = logits.shape[logits.shape.length - 1] ?? 1;
  return { T: C === 0 ? 0 : logits.size / C, C };
}

function checkVocabStart(op: string, vocabStart: number, C: number): void {
  if (!Number.isInteger(vocabStart) || vocabStart < 0 || vocabStart + C > 0x7fffffff) {
    throw new Error(`${op}: vocabStart ${vocabStart} is not a valid column offset for a chunk of ${C}`);
  }
}

function ewGrid(ctx: GpuContext, n: number): [number, number, number] {
  return grid1d(n, EW, ctx.limits.maxComputeWorkgroupsPerDimension);
}

// ---- wrappers -------------------------------------------------------------------------------------------

/** stats[T, 2] = (−3.4e38, 0) (the empty log-sum-exp), targetLogit[T] = 0. Call before the first chunk. */
export function crossEntropyInit(ctx: GpuContext, stats: Tensor, targetLogit: Tensor): void {
  const op = 'crossEntropyInit';
  expectDtype(op, 'stats', stats, 'f32');
  expectDtype(op, 'targetLogit', targetLogit, 'f32');
  const T = targetLogit.size;
  tokenShapes(op, T, `targetLogit ${shapeText(targetLogit)}`, {}, stats);
  if (T === 0) return;
  ctx.dispatch(ctx.kernel(initSpec), { stats, targetLogit }, { n: T }, ewGrid(ctx, T));
}

/**
 * Folds vocabulary columns [vocabStart, vocabStart + C) into the running state: stats[T, 2] (max, Σ exp)
 * and targetLogit[T] (written for tokens whose target lies in this chunk). logits [T, C], targets i32 [T].
 */
export function crossEntropyChunk(
  ctx: GpuContext,
  stats: Tensor,
  targetLogit: Tensor,
  logits: Tensor,
  targets: Tensor,
  vocabStart: number,
): void {
  const op = 'crossEntropyChunk';
  const { T, C } = logitsShape(op, logits);
  expectDtype(op, 'stats', stats, 'f32');
  expectDtype(op, 'targetLogit', targetLogit, 'f32');
  expectDtype(op, 'targets', targets, 'i32');
  tokenShapes(op, T, `logits ${shapeText(logits)}`, { targetLogit, targets }, stats);
  checkVocabStart(op, vocabStart, C);
  if (T === 0 || C === 0) return;
  const L = rowLayout(C, WG);
  ctx.dispatch(
    ctx.kernel(chunkSpec, L),
    { stats, targetLogit, logits, targets },
    { rows: T, C, vocabStart },
    grid1d(Math.ceil(T / L.R), 1, ctx.limits.maxComputeWorkgroupsPerDimension),
  );
}

/**
 * losses[T] = logsumexp − targetLogit for labelled tokens, 0 where targets == −100. stats[T, 2] and
 * targetLogit[T] come from the chunks; stats is left unchanged for crossEntropyChunkBackward.
 */
export function crossEntropyFinish(ctx: GpuContext, losses: Tensor, stats: Tensor, targetLogit: Tensor, targets: Tensor): void {
  const op = 'crossEntropyFinish';
  expectDtype(op, 'losses', losses, 'f32');
  expectDtype(op, 'stats', stats, 'f32');
  expectDtype(op, 'targetLogit', targetLogit, 'f32');
  expectDtype(op, 'targets', targets, 'i32');
  const T = targets.size;
  tokenShapes(op, T, `targets ${shapeText(targets)}`, { losses, targetLogit }, stats);
  if (T === 0) return;
  ctx.dispatch(ctx.kernel(finishSpec), { losses, stats, targetLogit, targets }, { n: T }, ewGrid(ctx, T));
}

/**
 * dLogits[T, C] += dLoss[t] · (softmax(logits)[t, c] − [c + vocabStart == targets[t]]) for the chunk
 * [vocabStart, vocabStart + C) (accumulates; zero dLogits first). Rows with target −100 get nothing.
 * stats[T, 2] is the forward's (after every chunk); dLoss[T] is a per-token weight, e.g. 1/(labelled tokens).
 */
export function crossEntropyChunkBackward(
  ctx: GpuContext,
  dLogits: Tensor,
  logits: Tensor,
  stats: Tensor,
  targets: Tensor,
  dLoss: Tensor,
  vocabStart: number,
): void {
  const op = 'crossEntropyChunkBackward';
  const { T, C } = logitsShape(op, logits);
  expectDtype(op, 'dLogits', dLogits, 'f32');
  expectDtype(op, 'stats', stats, 'f32');
  expectDtype(op, 'targets', targets, 'i32');
  expectDtype(op, 'dLoss', dLoss, 'f32');
  if (dLogits.size !== logits.size || (dLogits.shape[dLogits.shape.length - 1] ?? 1) !== C) {
    throw new Error(`${op}: dLogits ${shapeText(dLogits)} does not match logits ${shapeText(logits)}`);
  }
  tokenShapes(op, T, `logits ${shapeText(logits)}`, { targets, dLoss }, stats);
  checkVocabStart(op, vocabStart, C);
  const n = T * C;
  if (n === 0) return;
  ctx.dispatch(ctx.kernel(chunkBackwardSpec), { dLogits, logits, stats, targets, dLoss }, { n, C, vocabStart }, ewGrid(ctx, n));
}

/** The whole vocabulary as one chunk: losses[T], stats[T, 2], targetLogit[T] from logits [T, V], targets i32 [T]. */
export function crossEntropyForward(
  ctx: GpuContext,
  losses: Tensor,
  stats: Tensor,
  targetLogit: Tensor,
  logits: Tensor,
  targets: Tensor,
): void {
  crossEntropyInit(ctx, stats, targetLogit);
  crossEntropyChunk(ctx, stats, targetLogit, logits, targets, 0);
  crossEntropyFinish(ctx, losses, stats, targetLogit, targets);
}
