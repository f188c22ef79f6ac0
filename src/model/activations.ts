// What a forward keeps for its backward (CausalLM.forward → Activations → CausalLM.backward): per layer the
// tensors its backward reads (LayerSaved), or with activation checkpointing only each layer's input (the
// backward runs the layer's forward again); the final norm's input, output and statistics; the logits; and the
// adapter, LoRA dropout calls and prompt widening the forward ran with, which the backward must see again.
import type { Tensor } from '../engine/tensor';
import type { ModelAdapter } from './adapters';
import { releaseBatch, type Batch } from './batch';
import type { BottleneckSaved, BottleneckSite } from './bottleneck';
import type { LoraDropout } from './forward-options';
import type { LinearDropout } from './linear';
import type { PromptAdapter } from './prompt-tuning';
import type { LogitsChunk } from './vocab';

export interface NormSaved {
  rstd: Tensor; // [rows]
  mean: Tensor | null; // [rows] (LayerNorm)
}

/** What one layer's forward saves for its backward. */
export interface LayerSaved {
  x: Tensor; // [N, H] layer input (residual stream)
  h1: Tensor; // [N, H] norm1(x)
  n1: NormSaved;
  qPre: Tensor | null; // [B, T, nh, D] q before the per-head norm (Qwen3)
  kPre: Tensor | null;
  qRstd: Tensor | null; // [N·nh]
  kRstd: Tensor | null;
  q: Tensor; // [B, T, nh, D] as attention read it (normed, rotated)
  k: Tensor; // [B, T, nkv, D]
  v: Tensor; // [B, T, nkv, D]
  att: Tensor; // [B, T, nh, D]
  lse: Tensor; // [B, nh, T]
  /** Gemma 3: the attention branch's output before its post-attention norm ([N, H]) and that norm's statistics. */
  attnOut: Tensor | null;
  nAttn: NormSaved | null;
  x2: Tensor; // [N, H] x + attention branch
  h2: Tensor; // [N, H] norm2(x2)
  n2: NormSaved;
  gate: Tensor | null; // [N, I] (SwiGLU)
  up: Tensor; // [N, I]
  act: Tensor; // [N, I] silu(gate)·up, gelu_tanh(gate)·up or gelu(up)
  /** Gemma 3: the MLP branch's output before its post-feed-forward norm ([N, H]) and that norm's statistics. */
  mlpOut: Tensor | null;
  nMlp: NormSaved | null;
  /** x·Aᵀ of each linear with a LoRA module, by module path. */
  xa: Map<string, Tensor>;
  /** Each bottleneck adapter's input h (o or down's output) and saved z, a, by site. */
  bottleneck: Map<BottleneckSite, BottleneckSaved & { h: Tensor }>;
}

function releaseBottleneckSaved(m: Map<BottleneckSite, BottleneckSaved & { h: Tensor }>): void {
  for (const b of m.values()) for (const t of [b.h, b.z, b.a]) t.release();
  m.clear();
}

/** Each adapted linear's dropout call in one forward, by module path (empty without dropout). */
export type DropoutCalls = ReadonlyMap<string, LinearDropout>;

/** A forward with a prompt adapter: the adapter, and the batch widened by its virtual positions (owned). */
export interface PromptRun {
  adapter: PromptAdapter;
  /** [B, n + T]: what the layers ran over. */
  full: Batch;
}

/** The forward's saved tensors and logits. Release them after the backward. */
export class Activations {
  constructor(
    readonly batch: Batch,
    /** The adapter the forward ran with (the backward uses it too). */
    readonly adapter: ModelAdapter | null,
    /** @internal */ readonly layers: LayerSaved[],
    /** @internal */ readonly xFinal: Tensor,
    /** @internal */ readonly hFinal: Tensor,
    /** @internal */ readonly nFinal: NormSaved,
    /** The logits by vocabulary block (one block unless the lm_head is split). */
    readonly logitChunks: LogitsChunk[],
    private readonly full: Tensor | null,
    /** The LoRA dropout the forward ran with (null: none); the backward regenerates its masks. */
    readonly loraDropout: LoraDropout | null = null,
    /** @internal Each adapted linear's mask (p, seed, offset), by module path. */
    readonly dropoutCalls: DropoutCalls = new Map(),
    /** The prompt adapter the forward ran with and its widened batch; null without one. */
    readonly prompt: PromptRun | null = null,
    /** @internal With checkpointing: each layer's input (layers is then empty; the backward recomputes). */
    readonly layerInputs: Tensor[] | null = null,
  ) {}

  /** The final hidden states after the final norm, [N, H] (what the lm_head, or a reward head, reads). */
  get hidden(): Tensor {
    return this.hFinal;
  }

  /** logits [N, V] (N = B·T, row b·T + t). */
  get logits(): Tensor {
    if (this.full) return this.full;
    if (this.logitChunks.length === 1) return this.logitChunks[0]!.logits;
    throw new Error('The forward ran with { logits: "chunks" } over a split vocabulary; read acts.logitChunks');
  }

  release(): void {
    for (const s of this.layers) releaseLayerSaved(s, false);
    for (const x of this.layerInputs ?? []) x.release();
    this.xFinal.release();
    this.hFinal.release();
    releaseNorm(this.nFinal);
    for (const c of this.logitChunks) c.logits.release();
    this.full?.release();
    if (this.prompt) releaseBatch(this.prompt.full);
  }
}

/** Releases what a layer's forward saved; keepInput: all but its input x (a checkpoint, owned elsewhere). */
export function releaseLayerSaved(s: LayerSaved, keepInput: boolean): void {
  for (const [k, t] of Object.entries(s)) {
    if (k === 'x' && keepInput) continue;
    if (k === 'xa') for (const x of (t as Map<string, Tensor>).values()) x.release();
    else if (k === 'bottleneck') releaseBottleneckSaved(t as LayerSaved['bottleneck']);
    else if (k === 'n1' || k === 'n2' || k === 'nAttn' || k === 'nMlp') {
      if (t) releaseNorm(t as NormSaved);
    }
    else (t as Tensor | null)?.release();
  }
}

export function releaseActivations(acts: Activations): void {
  acts.release();
}

export function releaseNorm(n: NormSaved): void {
  n.rstd.release();
  n.mean?.release();
}
