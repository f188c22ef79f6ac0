// AdamW over the trainable parameters (torch.optim.AdamW semantics, through the engine's adamwStep): one
// first and second moment per parameter block, created lazily zero like PyTorch's state, and one step count for
// the whole optimizer (every parameter is updated at every step, so PyTorch's per-parameter counts agree).
// Weight decay applies to the parameters whose `decay` is set (Hugging Face's rule, see methods.ts); a parameter's
// `lrScale` multiplies the step's learning rate (LoRA+'s faster lora_B, see methods.ts), as a PyTorch parameter
// group whose lr is learning_rate × lrScale under the same LambdaLR schedule.
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { adamwStep } from '../engine/ops/adamw';
import type { Gradients } from '../model/gradients';
import type { TrainableParam } from './methods';

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** Moments of one parameter on the CPU (the blocks joined), for checkpoints. */
export interface AdamWParamState {
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

export interface AdamWState {
  /** Optimizer updates done (PyTorch's state['step']); skipped steps do not count. */
  step: number;
  params: Map<string, AdamWParamState>;
}

interface Slot {
  param: TrainableParam;
  m: Tensor[];
  v: Tensor[];
}

export class AdamW {
  /** Updates applied so far. */
  stepCount = 0;
  private readonly slots: Slot[];

  constructor(
    private readonly ctx: GpuContext,
    params: readonly TrainableParam[],
    readonly settings: AdamWSettings,
  ) {
    const z = (t: Tensor, what: string) => ctx.zeros(t.shape, 'f32', { persistent: true, label: what });
    this.slots = params.map((param) => ({
      param,
      m: param.parts.map((t) => z(t, `exp_avg of ${param.name}`)),
      v: param.parts.map((t) => z(t, `exp_avg_sq of ${param.name}`)),
    }));
  }

  /**
   * One update of every parameter with learning rate `lr`; the gradient of each is read as grad · gradScale[0]
   * when gradScale is given (the clipping coefficient, on the GPU). Recorded, not submitted.
   */
  step(grads: Gradients, lr: number, gradScale?: Tensor): void {
    this.record(grads, lr, gradScale);
    this.stepCount++;
  }

  /**
   * The next update, done on the GPU only where gate[0] ≠ 0 (adamwStep's gate): the step count stays until the
   * caller knows the gate's value and calls applied(). Recorded, not submitted.
   */
  gatedStep(grads: Gradients, lr: number, gradScale: Tensor, gate: Tensor): void {
    this.record(grads, lr, gradScale, gate);
  }

  /** Counts the update of gatedStep as applied (its gate was 1). */
  applied(): void {
    this.stepCount++;
  }

  private record(grads: Gradients, lr: number, gradScale?: Tensor, gate?: Tensor): void {
    const step = this.stepCount + 1;
    for (const { param, m, v } of this.slots) {
      const g = grads.get(param.name);
      if (!g || g.length !== param.parts.length) throw new Error(`AdamW: no gradient for ${param.name}`);
      const h = {
        lr: lr * (param.lrScale ?? 1),
        beta1: this.settings.beta1,
        beta2: this.settings.beta2,
        eps: this.settings.eps,
        weightDecay: param.decay ? this.settings.weightDecay : 0,
        step,
      };
      param.parts.forEach((p, i) => adamwStep(this.ctx, p, g[i]!, m[i]!, v[i]!, h, gradScale, gate));
    }
  }

  /** Reads the moments back (one readback per block), for a checkpoint. */
  async exportState(): Promise<AdamWState> {
    const params = new Map<string, AdamWParamState>();
    for (const { param, m, v } of this.slots) {
      params.set(param.name, { expAvg: await readJoined(this.ctx, m), expAvgSq: await readJoined(this.ctx, v) });
    }
    return { step: this.stepCount, params };
  }

  /** Restores moments and the step count written by exportState. Throws when a parameter is missing or mis-sized. */
  importState(state: AdamWState): void {
    for (const { param, m, v } of this.slots) {
      const s = state.params.get(param.name);
      if (!s) throw new Error(`the checkpoint has no optimizer state for ${param.name}`);
      writeJoined(this.ctx, m, s.expAvg, `exp_avg of ${param.name}`);
      writeJoined(this.ctx, v, s.expAvgSq, `exp_avg_sq of ${param.name}`);
    }
    this.stepCount = state.step;
  }

  release(): void {
    for (const { m, v } of this.slots) for (const t of [...m, ...v]) t.release();
  }
}

/** The blocks of a tensor read back and joined (row blocks are contiguous in the full tensor). */
export async function readJoined(ctx: GpuContext, parts: readonly Tensor[]): Promise<Float32Array> {
  if (parts.length === 1) return ctx.readF32(parts[0]!);
  const total = parts.reduce((s, t) => s + t.size, 0);
  const out = new Float32Array(total);
  let at = 0;
  for (const t of parts) {
    out.set(await ctx.readF32(t), at);
    at += t.size;
  }
  return out;
}

/** Writes a full tensor's values into its row blocks. */
export function writeJoined(ctx: GpuContext, parts: readonly Tensor[], data: Float32Array, what: string): void {
  const total = parts.reduce((s, t) => s + t.size, 0);
  if (data.length !== total) throw new Error(`${what}: the checkpoint holds ${data.length} values, the model needs ${total}`);
  let at = 0;
  for (const t of parts) {
    ctx.write(t, data.subarray(at, at + t.size));
    at += t.size;
  }
}
