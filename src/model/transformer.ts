// A decoder-only causal language model on the GPU — Llama, Qwen2, Qwen3 and GPT-2 as one pre-norm transformer
// (see config.ts for what differs) — written as llm.c writes GPT-2: a fixed sequence of paired ops, the forward
// saving what the backward needs, and the backward reading the forward in reverse.
//
// Per layer, with N = B·T tokens, H = hidden, nh/nkv = query/key-value heads, D = head dim, I = MLP width:
//   h1 = norm1(x);  q, k, v = linears of h1 (GPT-2: one fused c_attn, then split)
//   Qwen3: q, k = rmsnorm per head;  RoPE models: q, k = rope(q, k)
//   x2 = x + o(attention(q, k, v));  h2 = norm2(x2)
//   x3 = x2 + down(silu(gate(h2))·up(h2))      or GPT-2: x2 + c_proj(gelu_tanh(c_fc(h2)))
// then logits = lm_head(norm_f(x)). Every linear may carry a LoRA adapter (linear.ts).
// Adapters (adapters.ts): a forward runs with at most one — the one set with setAdapter, or ForwardOptions.adapter
// for that call — of any kind: LoRA on the linears, or bottleneck adapters (bottleneck.ts), which replace the
// attention output o (Houlsby) and the MLP output down (both placements) by o + up(act(down(o))) before the
// residual add. The base weights are never copied or changed.
//
// Training: forward(batch) → Activations; backward(acts, dLogits, grads) accumulates into the gradients that
// exist (gradients.ts: a missing name is frozen) and skips the layers below the lowest trainable one.
// Activation checkpointing (ForwardOptions.checkpoint) keeps only each layer's input and recomputes the layer's
// forward right before its backward (the same gradients, bit for bit; memory-plan.ts predicts the saving).
// LoRA dropout (ForwardOptions.loraDropout, PEFT's lora_dropout) masks each adapted linear's input on the
// adapter branch only; the activations keep each call's (p, seed, offset), and the backward regenerates the
// masks from them (linear.ts).
// Inference: createKvCache + forwardCached run new tokens against cached keys and values and read back the
// last position's logits only.
// Prompt tuning (an adapter of kind 'prompt', see prompt-tuning.ts): the embedding stage puts the n virtual-token embeddings in
// front of every row (positions 0 .. n + T − 1, mask 1 there), the layers run n + T positions, and only the
// real positions go on to the final norm: logits, hidden and dLogits keep the batch's [B·T] rows. The backward
// adds Σ_b dx[b, 0 .. n) into the gradient `prompt_embeddings`. Like every adapter it is one per forward,
// never combined with another.
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { add, addInPlace } from '../engine/ops/elementwise';
// The tiled (flash-style) attention: never holds the T×T scores; same semantics as ops/attention.ts.
import { flashAttentionBackward, flashAttentionForward } from '../engine/ops/flash-attention';
import { checkEmbeddingIds } from '../engine/ops/embedding';
import { geluBackward, geluForward } from '../engine/ops/gelu';
import { layernormBackward, layernormForward, rmsnormBackward, rmsnormForward } from '../engine/ops/norm';
import { createRopeTable, ropeBackward, ropeForward, type RopeTable } from '../engine/ops/rope';
import { swigluBackward, swigluForward } from '../engine/ops/swiglu';
import { dropoutParams } from '../engine/dropout-params';
import { copyBlock, sliceColumnsBackward, sliceColumnsForward, writeRows } from '../engine/ops/copy-block';
import type { ModelConfig } from './config';
import { prefixBatch, releaseBatch, type Batch } from './batch';
import { adapterKind, adapterParameters, asBottleneck, asLora, asPrompt, type ModelAdapter } from './adapters';
import {
  bottleneckBackward,
  bottleneckForward,
  bottleneckKey,
  bottleneckParamName,
  checkBottleneck,
  type BottleneckAdapter,
  type BottleneckSaved,
  type BottleneckSite,
} from './bottleneck';
import { Gradients } from './gradients';
import { GpuKvCache, type KvCache } from './kv-cache';
import { linearBackward, linearForward, type LinearDropout, type LinearGrads } from './linear';
import { loraParamName, loraScale, type LoraAdapter, type LoraModule } from './lora';
import {
  allParams,
  layerLinears,
  layerParams,
  loadParams,
  releaseParams,
  type LinearParams,
  type ModelParams,
  type NormParams,
  type ParamTensor,
  type WeightSource,
} from './params';
import { checkPromptAdapter, PROMPT_EMBEDDINGS, virtualTokens, type PromptAdapter } from './prompt-tuning';
import { assembleLogits, embedBackward, embedForward, lmHeadBackward, lmHeadForward, splitLogits, type LogitsChunk } from './vocab';

export type { Batch } from './batch';
export { uploadBatch, releaseBatch } from './batch';
export { Gradients } from './gradients';
export type { KvCache } from './kv-cache';
export type { LoraAdapter, LoraModule } from './lora';
export type { ModelAdapter } from './adapters';
export type { BottleneckAdapter } from './bottleneck';
export type { PromptAdapter } from './prompt-tuning';
export type { WeightSource, ParamTensor } from './params';
export type { LogitsChunk } from './vocab';

/** The default position capacity: a RoPE table for 131072 positions (Llama 3.2) would be wasted memory. */
export const DEFAULT_MAX_POSITIONS = 8192;

export interface CausalLMOptions {
  /**
   * The longest sequence (training) or KV cache (inference) this instance handles; sizes the RoPE table.
   * Default: min(config.json's max_position_embeddings, DEFAULT_MAX_POSITIONS); GPT-2 is capped by its wpe.
   */
  maxPositions?: number;
  /** Tensors larger than this many bytes are split by rows (default: the device's maxStorageBufferBindingSize). */
  maxBindingBytes?: number;
}

export interface ForwardOptions {
  /**
   * 'full' (default): acts.logits is [N, V], assembled when the vocabulary is split. 'chunks': only
   * acts.logitChunks, one per vocabulary block (for chunked cross-entropy when [N, V] is too large to bind).
   * 'none': no lm_head at all (a head of its own reads acts.hidden, e.g. a reward model's score).
   */
  logits?: 'full' | 'chunks' | 'none';
  /**
   * false: keep nothing for a backward (evaluation, DPO's reference log-probs): each layer's tensors are freed
   * as soon as the next layer has run, and backward() refuses these activations. Default true.
   */
  saveForBackward?: boolean;
  /**
   * Activation checkpointing (with saveForBackward): keep only each layer's input [N, H]; the backward runs a
   * layer's forward again (the same kernels on the same input, adapter and dropout masks, so the same saved
   * tensors bit for bit) just before that layer's backward and frees them after it. Saves about
   * (L − 1)·(a layer's saved activations − N·H) of the step's peak for about one more forward pass.
   */
  checkpoint?: boolean;
  /**
   * PEFT's lora_dropout for this forward (training only: evaluation, generation and reference forwards leave
   * it out). Each linear with a LoRA module computes scale·(dropout(x)·Aᵀ)·Bᵀ, its base path x·Wᵀ unchanged.
   * Ignored without an adapter or with p = 0 (then nothing differs from a forward without it, bit for bit).
   */
  loraDropout?: LoraDropout;
  /**
   * The adapter for this forward only (null: the base model); undefined: the one set with setAdapter. Checked
   * against the model like setAdapter's.
   */
  adapter?: ModelAdapter | null;
}

/**
 * LoRA dropout for one forward: probability p ∈ [0, 1], and the Philox seed and first counter (integers).
 *
 * Counters: the adapted linears draw consecutive ranges from `offset`, in linearModules() order (layer by
 * layer; within a layer q, k, v (GPT-2: c_attn), o, gate, up, down — the order the forward runs them),
 * skipping modules without an adapter: with N = B·T tokens, module k masks its input [N, in_k] with counters
 * [offset + c_k, offset + c_k + N·in_k), c_k = Σ_{j<k} N·in_j. So q, k and v, which read the same input, get
 * independent masks, as PEFT's separate nn.Dropout modules do. One forward draws
 * CausalLM.loraDropoutCounters(N) counters in all; a following forward with the same seed must start at
 * offset + that count or later for its masks not to repeat.
 */
export interface LoraDropout {
  p: number;
  seed: number;
  offset: number;
}

/** A linear layer's module path and sizes, for making adapters (PEFT's target_modules match their last part). */
export interface LinearModuleInfo {
  module: string;
  inFeatures: number;
  outFeatures: number;
}

interface NormSaved {
  rstd: Tensor; // [rows]
  mean: Tensor | null; // [rows] (LayerNorm)
}

/** What one layer's forward saves for its backward. */
interface LayerSaved {
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
  x2: Tensor; // [N, H] x + attention branch
  h2: Tensor; // [N, H] norm2(x2)
  n2: NormSaved;
  gate: Tensor | null; // [N, I] (SwiGLU)
  up: Tensor; // [N, I]
  act: Tensor; // [N, I] silu(gate)·up or gelu(up)
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
type DropoutCalls = ReadonlyMap<string, LinearDropout>;

/** A forward with a prompt adapter: the adapter, and the batch widened by its virtual positions (owned). */
interface PromptRun {
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
function releaseLayerSaved(s: LayerSaved, keepInput: boolean): void {
  for (const [k, t] of Object.entries(s)) {
    if (k === 'x' && keepInput) continue;
    if (k === 'xa') for (const x of (t as Map<string, Tensor>).values()) x.release();
    else if (k === 'bottleneck') releaseBottleneckSaved(t as LayerSaved['bottleneck']);
    else if (k === 'n1' || k === 'n2') releaseNorm(t as NormSaved);
    else (t as Tensor | null)?.release();
  }
}

export function releaseActivations(acts: Activations): void {
  acts.release();
}

function releaseNorm(n: NormSaved): void {
  n.rstd.release();
  n.mean?.release();
}

/** How a layer's forward runs: the batch geometry, and for cached inference the cache and its length before. */
interface Step {
  B: number;
  T: number;
  positions: Tensor; // i32 [B·T]
  keyMask: Tensor | null;
  save: boolean;
  cache?: GpuKvCache;
  start: number;
}

export class CausalLM {
  private adapterNow: ModelAdapter | null = null;
  private disposed = false;
  /** Sequences (and KV caches) may span positions [0, maxPositions). */
  readonly maxPositions: number;

  private constructor(
    readonly ctx: GpuContext,
    readonly cfg: ModelConfig,
    readonly params: ModelParams,
    private readonly rope: RopeTable | null,
    maxPositions: number,
  ) {
    this.maxPositions = maxPositions;
  }

  /**
   * Uploads the weights (checked against the config; see params.ts) and builds the model. Throws a
   * ModelWeightsError naming the tensor when one is missing, mis-shaped or not a float tensor.
   */
  static create(ctx: GpuContext, cfg: ModelConfig, weights: WeightSource, opts: CausalLMOptions = {}): CausalLM {
    const want = opts.maxPositions ?? Math.min(cfg.maxPositions, DEFAULT_MAX_POSITIONS);
    if (!Number.isInteger(want) || want <= 0) throw new Error(`CausalLM: maxPositions ${want} must be a positive integer`);
    const maxPositions = cfg.positions === 'learned' ? Math.min(want, cfg.maxPositions) : want;
    const params = loadParams(ctx, cfg, weights, opts.maxBindingBytes);
    const rope = cfg.positions === 'rope' ? createRopeTable(ctx, cfg.headDim, maxPositions, cfg.ropeTheta, cfg.ropeScaling) : null;
    return new CausalLM(ctx, cfg, params, rope, maxPositions);
  }

  // ---- parameters, adapters, gradients -------------------------------------------------------------------

  /** Every distinct base parameter (a tied lm_head appears once, as the embedding). */
  parameters(): ParamTensor[] {
    return allParams(this.params);
  }

  /** A base parameter by its Hugging Face name. */
  param(name: string): ParamTensor | undefined {
    return this.parameters().find((p) => p.name === name);
  }

  /** Every linear layer that can carry a LoRA adapter. */
  linearModules(): LinearModuleInfo[] {
    return this.params.layers.flatMap(layerLinears).map(({ module, inFeatures, outFeatures }) => ({ module, inFeatures, outFeatures }));
  }

  get adapter(): ModelAdapter | null {
    return this.adapterNow;
  }

  /**
   * Runs the model with an adapter from now on (null: the base model). The base weights are untouched, so
   * switching is free. The adapter's tensors stay the caller's. Throws (checkAdapter) for one that does not fit.
   * KV caches filled under another adapter must be reset.
   */
  setAdapter(adapter: ModelAdapter | null): void {
    if (adapter) this.checkAdapter(adapter);
    this.adapterNow = adapter;
  }

  /**
   * Throws an Error naming the problem when the adapter does not fit this model: a LoRA module that is not a
   * linear layer or A/B shapes that do not fit it; bottleneck sites or shapes other than its placement needs;
   * prompt embeddings that are not [n, hidden] or leave no position for the text.
   */
  checkAdapter(adapter: ModelAdapter): void {
    const kind = adapterKind(adapter);
    if (kind === 'prompt') {
      checkPromptAdapter(adapter as PromptAdapter, this.cfg.hiddenSize, this.maxPositions);
      return;
    }
    if (kind === 'bottleneck') {
      checkBottleneck(adapter as BottleneckAdapter, this.cfg.numLayers, this.cfg.hiddenSize);
      return;
    }
    const lora = adapter as LoraAdapter;
    const linears = new Map(this.params.layers.flatMap(layerLinears).map((l) => [l.module, l]));
    if (!(lora.r > 0) || !Number.isFinite(lora.alpha)) {
      throw new Error(`Adapter ${lora.name}: r ${lora.r} and lora_alpha ${lora.alpha} must be positive numbers`);
    }
    for (const [module, { a, b }] of lora.modules) {
      const lin = linears.get(module);
      if (!lin) {
        throw new Error(`Adapter ${lora.name} targets ${module}, which is not a linear layer of this ${this.cfg.architecture}`);
      }
      const okA = a.shape.length === 2 && a.shape[0] === lora.r && a.shape[1] === lin.inFeatures;
      const okB = b.shape.length === 2 && b.shape[0] === lin.outFeatures && b.shape[1] === lora.r;
      if (!okA || !okB) {
        throw new Error(
          `Adapter ${lora.name}: ${module} has lora_A [${a.shape.join(', ')}] and lora_B [${b.shape.join(', ')}]; expected [${lora.r}, ${lin.inFeatures}] and [${lin.outFeatures}, ${lora.r}]`,
        );
      }
    }
  }

  /** The token embedding rows of `ids`: a new persistent tensor [ids.length, hidden] (prompt tuning's TEXT init). */
  tokenEmbeddings(ids: readonly number[]): Tensor {
    this.checkAlive();
    checkEmbeddingIds(ids, this.cfg.vocabSize);
    const idsCpu = Int32Array.from(ids);
    const idsT = this.ctx.upload([ids.length], idsCpu, 'i32', { label: 'token ids' });
    const out = this.ctx.empty([ids.length, this.cfg.hiddenSize], 'f32', { persistent: true, label: 'token embeddings' });
    embedForward(this.ctx, out, idsT, idsCpu, this.params.embed);
    idsT.release();
    return out;
  }

  /** The longest sequence a batch may hold: maxPositions less the current prompt adapter's virtual tokens. */
  get maxSequenceLength(): number {
    return this.maxPositions - virtualTokens(asPrompt(this.adapterNow));
  }

  /**
   * Zeroed gradient buffers for the trainable parameters: 'all' base weights (full fine-tuning), the current
   * adapter's tensors ('adapter', or 'lora': the same, any kind of adapter), or those names (Hugging Face,
   * PEFT or bottleneck names) that `select` accepts (e.g. freezing: only the last layers). Everything else is
   * frozen and gets no buffer.
   */
  createGradients(select: 'all' | 'lora' | 'adapter' | ((name: string) => boolean)): Gradients {
    const grads = new Gradients(this.ctx);
    const base = this.parameters();
    const own = this.adapterNow ? adapterParameters(this.adapterNow) : [];
    const onlyAdapter = select === 'lora' || select === 'adapter';
    if (onlyAdapter && !this.adapterNow) throw new Error(`createGradients("${select}"): the model has no adapter; call setAdapter first`);
    const z = (shape: readonly number[], label: string) => this.ctx.zeros(shape, 'f32', { persistent: true, label });
    for (const p of base) {
      if (onlyAdapter || (select !== 'all' && !select(p.name))) continue;
      grads.set(p.name, p.parts.map((t) => z(t.shape, `gradient of ${p.name}`)));
    }
    for (const [name, t] of own) {
      if (select === 'all' || (!onlyAdapter && !select(name))) continue;
      grads.set(name, [z(t.shape, `gradient of ${name}`)]);
    }
    return grads;
  }

  private loraFor(lin: LinearParams, adapter: ModelAdapter | null): LoraModule | null {
    return asLora(adapter)?.modules.get(lin.module) ?? null;
  }

  /**
   * The bottleneck adapter at `site` of layer l over h [N, H]: returns y = h + up(act(down(h))) and keeps h
   * with the saved tensors in `saved` (or frees them when nothing is saved); without an adapter there, h.
   */
  private bottleneckAt(l: number, site: BottleneckSite, h: Tensor, adapter: ModelAdapter | null, save: boolean, saved: LayerSaved['bottleneck']): Tensor {
    const b = asBottleneck(adapter);
    const m = b?.modules.get(bottleneckKey(l, site));
    if (!b || !m) return h;
    const y = this.ctx.empty(h.shape, 'f32', { label: `layer ${l} ${site} adapter output` });
    const { z, a } = bottleneckForward(this.ctx, y, h, m, b.nonLinearity);
    if (save) saved.set(site, { h, z, a });
    else for (const t of [h, z, a]) t.release();
    return y;
  }

  // ---- forward -------------------------------------------------------------------------------------------

  private normForward(out: Tensor, x: Tensor, p: NormParams): NormSaved {
    const rows = x.size / x.shape[x.shape.length - 1]!;
    const rstd = this.ctx.empty([rows]);
    if (this.cfg.norm === 'rmsnorm') {
      rmsnormForward(this.ctx, out, rstd, x, p.weight.parts[0]!, this.cfg.normEps);
      return { rstd, mean: null };
    }
    const mean = this.ctx.empty([rows]);
    layernormForward(this.ctx, out, mean, rstd, x, p.weight.parts[0]!, p.bias!.parts[0]!, this.cfg.normEps);
    return { rstd, mean };
  }

  /**
   * The token (and GPT-2 position) embeddings of ids [N]: x [N, H]. With `prompt`, ids are B rows of T, and
   * the first n rows of each are the prompt's embeddings instead (before the position embeddings are added).
   */
  private embed(ids: Tensor, idsCpu: Int32Array, positions: Tensor, positionsCpu: Int32Array, prompt?: { adapter: PromptAdapter; B: number; T: number }): Tensor {
    const N = idsCpu.length;
    const H = this.cfg.hiddenSize;
    const x = this.ctx.empty([N, H], 'f32', { label: 'residual stream' });
    embedForward(this.ctx, x, ids, idsCpu, this.params.embed);
    if (prompt) {
      const size = prompt.adapter.embeddings.size;
      for (let b = 0; b < prompt.B; b++) {
        copyBlock(this.ctx, x, prompt.adapter.embeddings, { rows: 1, cols: size, srcStride: size, srcOffset: 0, dstStride: size, dstOffset: b * prompt.T * H });
      }
    }
    if (this.params.positions) {
      const pe = this.ctx.empty([N, this.cfg.hiddenSize]);
      embedForward(this.ctx, pe, positions, positionsCpu, this.params.positions);
      addInPlace(this.ctx, x, pe);
      pe.release();
    }
    return x;
  }

  /** One layer over x [N, H]: returns the layer output and, when step.save, what the backward needs. */
  private layerForward(
    l: number,
    x: Tensor,
    step: Step,
    adapter: ModelAdapter | null,
    dropouts: DropoutCalls = new Map(),
  ): { out: Tensor; saved: LayerSaved | null } {
    const { ctx, cfg } = this;
    const layer = this.params.layers[l]!;
    const { B, T, save } = step;
    const N = B * T;
    const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: D } = cfg;
    const xa = new Map<string, Tensor>();
    const bottleneck: LayerSaved['bottleneck'] = new Map();
    const lora = asLora(adapter);
    const scale = lora ? loraScale(lora) : 1;
    const linear = (lin: LinearParams, out: Tensor, input: Tensor): void => {
      const s = linearForward(ctx, out, input, lin, this.loraFor(lin, adapter), scale, save, dropouts.get(lin.module));
      if (s) xa.set(lin.module, s);
    };

    const h1 = ctx.empty([N, H]);
    const n1 = this.normForward(h1, x, layer.norm1);
    let q = ctx.empty([B, T, nh, D]);
    let k = ctx.empty([B, T, nkv, D]);
    const v = ctx.empty([B, T, nkv, D]);
    if (layer.qkv) {
      const qkv = ctx.empty([N, (nh + 2 * nkv) * D]);
      linear(layer.qkv, qkv, h1);
      sliceColumnsForward(ctx, q.view([N, nh * D]), qkv, 0);
      sliceColumnsForward(ctx, k.view([N, nkv * D]), qkv, nh * D);
      sliceColumnsForward(ctx, v.view([N, nkv * D]), qkv, (nh + nkv) * D);
      qkv.release();
    } else {
      linear(layer.q!, q.view([N, nh * D]), h1);
      linear(layer.k!, k.view([N, nkv * D]), h1);
      linear(layer.v!, v.view([N, nkv * D]), h1);
    }
    let qPre: Tensor | null = null;
    let kPre: Tensor | null = null;
    let qRstd: Tensor | null = null;
    let kRstd: Tensor | null = null;
    if (layer.qNorm && layer.kNorm) {
      [qPre, kPre] = [q, k];
      q = ctx.empty(qPre.shape);
      k = ctx.empty(kPre.shape);
      qRstd = ctx.empty([N * nh]);
      kRstd = ctx.empty([N * nkv]);
      rmsnormForward(ctx, q, qRstd, qPre, layer.qNorm.parts[0]!, cfg.normEps);
      rmsnormForward(ctx, k, kRstd, kPre, layer.kNorm.parts[0]!, cfg.normEps);
    }
    if (this.rope) {
      ropeForward(ctx, q, q, step.positions, this.rope);
      ropeForward(ctx, k, k, step.positions, this.rope);
    }
    let kAtt = k;
    let vAtt = v;
    if (step.cache) {
      writeRows(ctx, step.cache.k[l]!, k.view([T, nkv, D]), step.start);
      writeRows(ctx, step.cache.v[l]!, v.view([T, nkv, D]), step.start);
      ({ k: kAtt, v: vAtt } = step.cache.layerView(l, step.start + T));
    }
    const att = ctx.empty([B, T, nh, D]);
    const lse = ctx.empty([B, nh, T]);
    flashAttentionForward(ctx, att, lse, q, kAtt, vAtt, step.keyMask, 1 / Math.sqrt(D));
    const o = ctx.empty([N, H]);
    linear(layer.o, o, att.view([N, nh * D]));
    const oOut = this.bottleneckAt(l, 'attn', o, adapter, save, bottleneck);
    const x2 = ctx.empty([N, H]);
    add(ctx, x2, x, oOut);
    oOut.release(); // o itself without an adapter; the adapter's output y otherwise (o stays saved or was freed)

    const h2 = ctx.empty([N, H]);
    const n2 = this.normForward(h2, x2, layer.norm2);
    const up = ctx.empty([N, I]);
    const act = ctx.empty([N, I]);
    let gate: Tensor | null = null;
    if (layer.gate) {
      gate = ctx.empty([N, I]);
      linear(layer.gate, gate, h2);
      linear(layer.up, up, h2);
      swigluForward(ctx, act, gate, up);
    } else {
      linear(layer.up, up, h2);
      geluForward(ctx, act, up);
    }
    const down = ctx.empty([N, H]);
    linear(layer.down, down, act);
    const downOut = this.bottleneckAt(l, 'mlp', down, adapter, save, bottleneck);
    const out = ctx.empty([N, H], 'f32', { label: 'residual stream' });
    add(ctx, out, x2, downOut);
    downOut.release();

    const saved: LayerSaved = { x, h1, n1, qPre, kPre, qRstd, kRstd, q, k, v, att, lse, x2, h2, n2, gate, up, act, xa, bottleneck };
    if (save) return { out, saved };
    for (const [key, t] of Object.entries(saved)) {
      if (key === 'x' || key === 'xa' || key === 'bottleneck') continue;
      if (key === 'n1' || key === 'n2') releaseNorm(t as NormSaved);
      else (t as Tensor | null)?.release();
    }
    return { out, saved: null };
  }

  private checkPositions(count: number, what: string): void {
    if (count > this.maxPositions) {
      throw new Error(
        `${what} spans ${count} positions, more than this model instance holds (${this.maxPositions}); create it with a larger opts.maxPositions${this.cfg.positions === 'learned' ? ` (at most n_positions ${this.cfg.maxPositions})` : ''}`,
      );
    }
  }

  private checkAlive(): void {
    if (this.disposed) throw new Error('The model was disposed');
  }

  /**
   * The forward pass over a batch; everything the backward needs stays in the returned activations. With a
   * prompt adapter the layers run over the virtual positions too; logits and hidden hold the batch's rows.
   */
  forward(batch: Batch, opts: ForwardOptions = {}): Activations {
    this.checkAlive();
    const { ctx, cfg, params } = this;
    const adapter = this.adapterFor(opts.adapter);
    const prompt = asPrompt(adapter);
    const nv = virtualTokens(prompt);
    this.checkPositions(batch.T + nv, nv ? `A batch of sequence length ${batch.T} after the prompt adapter's ${nv} virtual tokens` : `A batch of sequence length ${batch.T}`);
    checkEmbeddingIds(batch.idsCpu, cfg.vocabSize);
    const N = batch.B * batch.T;
    const save = opts.saveForBackward ?? true;
    const run: PromptRun | null = prompt ? { adapter: prompt, full: prefixBatch(ctx, batch, nv) } : null;
    const geo = run?.full ?? batch;
    const dropouts = this.dropoutCalls(adapter, geo.B * geo.T, opts.loraDropout);
    let x = this.embed(geo.ids, geo.idsCpu, geo.positions, geo.positionsCpu, run ? { adapter: run.adapter, B: geo.B, T: geo.T } : undefined);
    const checkpoint = save && opts.checkpoint === true;
    const step: Step = { B: geo.B, T: geo.T, positions: geo.positions, keyMask: geo.keyMask, save: save && !checkpoint, start: 0 };
    const layers: LayerSaved[] = [];
    const inputs: Tensor[] | null = checkpoint ? [] : null;
    for (let l = 0; l < cfg.numLayers; l++) {
      const { out, saved } = this.layerForward(l, x, step, adapter, dropouts);
      if (saved) layers.push(saved);
      else if (inputs) inputs.push(x);
      else x.release();
      x = out;
    }
    if (run) {
      // Only the real positions go on: rows b·(n + T) + n .. of each sequence, as B blocks of T·H values.
      const H = cfg.hiddenSize;
      const real = ctx.empty([N, H], 'f32', { label: 'residual stream (real positions)' });
      copyBlock(ctx, real, x, { rows: batch.B, cols: batch.T * H, srcStride: geo.T * H, srcOffset: nv * H, dstStride: batch.T * H, dstOffset: 0 });
      x.release();
      x = real;
    }
    const hFinal = ctx.empty([N, cfg.hiddenSize]);
    const nFinal = this.normForward(hFinal, x, params.finalNorm);
    const chunks = opts.logits === 'none' ? [] : lmHeadForward(ctx, hFinal, params.lmHead);
    const full = chunks.length > 1 && (opts.logits ?? 'full') === 'full' ? assembleLogits(ctx, chunks, cfg.vocabSize) : null;
    const dropout = dropouts.size > 0 ? { ...opts.loraDropout! } : null;
    return new Activations(batch, adapter, layers, x, hFinal, nFinal, chunks, full, dropout, dropouts, run, inputs);
  }

  /** The adapter of one call: `given` (checked) when not undefined, else the current one. */
  private adapterFor(given: ModelAdapter | null | undefined): ModelAdapter | null {
    if (given === undefined) return this.adapterNow;
    if (given !== null && given !== this.adapterNow) this.checkAdapter(given);
    return given;
  }

  /** The LoRA-adapted linears in the order they draw dropout counters (linearModules() order). */
  private adaptedLinears(adapter: ModelAdapter | null): LinearParams[] {
    const lora = asLora(adapter);
    return lora ? this.params.layers.flatMap(layerLinears).filter((lin) => lora.modules.has(lin.module)) : [];
  }

  /**
   * How many dropout counters a forward over `tokens` (= B·T) tokens draws with the current adapter:
   * tokens · Σ in_features over the adapted linears (0 without an adapter). See LoraDropout.
   */
  loraDropoutCounters(tokens: number): number {
    return this.adaptedLinears(this.adapterNow).reduce((n, lin) => n + tokens * lin.inFeatures, 0);
  }

  /** Each adapted linear's (p, seed, offset) for a forward over N tokens; empty when nothing is dropped. */
  private dropoutCalls(adapter: ModelAdapter | null, N: number, d: LoraDropout | undefined): DropoutCalls {
    const calls = new Map<string, LinearDropout>();
    if (!d) return calls;
    dropoutParams('forward: loraDropout', d.p, d.seed, d.offset); // checks p, seed and offset
    if (!asLora(adapter) || d.p === 0) return calls;
    let next = d.offset;
    for (const lin of this.adaptedLinears(adapter)) {
      calls.set(lin.module, { p: d.p, seed: d.seed, offset: next });
      next += N * lin.inFeatures;
    }
    if (!Number.isSafeInteger(next)) {
      throw new Error(`forward: loraDropout offset ${d.offset} + ${next - d.offset} counters passes 2^53; start from a smaller offset`);
    }
    return calls;
  }

  // ---- backward ------------------------------------------------------------------------------------------

  private one(grads: Gradients, p: ParamTensor | null): Tensor | undefined {
    return p ? grads.get(p.name)?.[0] : undefined;
  }

  private linearGrads(grads: Gradients, lin: LinearParams, lora: LoraModule | null): LinearGrads {
    return {
      dW: this.one(grads, lin.weight),
      dBias: this.one(grads, lin.bias),
      dA: lora ? grads.get(loraParamName(lin.module, 'A'))?.[0] : undefined,
      dB: lora ? grads.get(loraParamName(lin.module, 'B'))?.[0] : undefined,
    };
  }

  /** dx += the norm's input gradient; its weight (and bias) gradients when trainable, else into scratch. */
  private normBackward(grads: Gradients, dx: Tensor, dOut: Tensor, x: Tensor, p: NormParams, s: NormSaved): void {
    const { ctx } = this;
    const C = p.weight.shape[0]!;
    const scratch: Tensor[] = [];
    const target = (q: ParamTensor | null): Tensor => {
      const g = this.one(grads, q);
      if (g) return g;
      const t = ctx.empty([C], 'f32', { label: 'frozen norm gradient (discarded)' });
      scratch.push(t);
      return t;
    };
    if (this.cfg.norm === 'rmsnorm') {
      rmsnormBackward(ctx, dx, target(p.weight), dOut, x, p.weight.parts[0]!, s.rstd);
    } else {
      layernormBackward(ctx, dx, target(p.weight), target(p.bias), dOut, x, p.weight.parts[0]!, s.mean!, s.rstd);
    }
    for (const t of scratch) t.release();
  }

  /** The lowest layer with a trainable parameter (0 when the embeddings or a prompt train; numLayers when none does). */
  private lowestTrainableLayer(grads: Gradients, adapter: ModelAdapter | null): number {
    const { params } = this;
    if (grads.has(params.embed.name) || (params.positions && grads.has(params.positions.name)) || grads.has(PROMPT_EMBEDDINGS)) return 0;
    const lora = asLora(adapter);
    const bottleneck = asBottleneck(adapter);
    for (let l = 0; l < params.layers.length; l++) {
      const layer = params.layers[l]!;
      if (layerParams(layer).some((p) => grads.has(p.name))) return l;
      for (const lin of layerLinears(layer)) {
        if (lora?.modules.has(lin.module) && (grads.has(loraParamName(lin.module, 'A')) || grads.has(loraParamName(lin.module, 'B')))) {
          return l;
        }
      }
      for (const site of ['attn', 'mlp'] as const) {
        const key = bottleneckKey(l, site);
        if (!bottleneck?.modules.has(key)) continue;
        for (const proj of ['down', 'up'] as const) for (const what of ['weight', 'bias'] as const) if (grads.has(bottleneckParamName(key, proj, what))) return l;
      }
    }
    return params.layers.length;
  }

  /**
   * The backward pass: accumulates into every gradient in `grads` (zeroed by the caller, or holding earlier
   * micro-batches'), given dLogits [N, V], or one tensor [N, size] per acts.logitChunks block. `dHidden` [N, H]:
   * a gradient of acts.hidden from another head (a reward model's score), added to the lm_head's; with it,
   * dLogits may be [] (a forward with { logits: 'none' }).
   */
  backward(acts: Activations, dLogits: Tensor | readonly Tensor[], grads: Gradients, dHidden?: Tensor): void {
    this.checkAlive();
    const { ctx, cfg, params } = this;
    const { batch, adapter } = acts;
    if (acts.layers.length !== cfg.numLayers && !acts.layerInputs) throw new Error('backward: the forward ran with saveForBackward: false');
    const N = batch.B * batch.T;
    const H = cfg.hiddenSize;
    const chunks = acts.logitChunks;
    const split = Array.isArray(dLogits) ? null : chunks.length > 1 ? splitLogits(ctx, dLogits as Tensor, chunks) : null;
    const dParts: readonly Tensor[] = Array.isArray(dLogits) ? dLogits : (split ?? [dLogits as Tensor]);

    const dh = ctx.zeros([N, H]);
    if (!(dHidden && dParts.length === 0)) lmHeadBackward(ctx, dh, grads.get(params.lmHead.name), dParts, acts.hFinal, params.lmHead);
    if (dHidden) addInPlace(ctx, dh, dHidden);
    for (const t of split ?? []) t.release();
    // dx: the gradient of the residual stream, accumulated by every branch that reads it.
    let dx = ctx.zeros([N, H], 'f32', { label: 'residual stream gradient' });
    this.normBackward(grads, dx, dh, acts.xFinal, params.finalNorm, acts.nFinal);
    dh.release();
    const geo = acts.prompt?.full ?? batch;
    const nv = geo.T - batch.T;
    if (acts.prompt) {
      // Back to all n + T positions: the virtual rows' outputs reached no loss, their gradient starts at zero.
      const dxAll = ctx.zeros([geo.B * geo.T, H], 'f32', { label: 'residual stream gradient' });
      copyBlock(ctx, dxAll, dx, { rows: batch.B, cols: batch.T * H, srcStride: batch.T * H, srcOffset: 0, dstStride: geo.T * H, dstOffset: nv * H });
      dx.release();
      dx = dxAll;
    }

    const lowest = this.lowestTrainableLayer(grads, adapter);
    for (let l = cfg.numLayers - 1; l >= lowest; l--) {
      if (!acts.layerInputs) {
        this.layerBackward(l, dx, acts, grads, acts.layers[l]!);
        continue;
      }
      // Checkpointed: the layer's forward again, from its saved input, then its backward.
      const step: Step = { B: geo.B, T: geo.T, positions: geo.positions, keyMask: geo.keyMask, save: true, start: 0 };
      const { out, saved } = this.layerForward(l, acts.layerInputs[l]!, step, adapter, acts.dropoutCalls);
      out.release();
      this.layerBackward(l, dx, acts, grads, saved!);
      releaseLayerSaved(saved!, true);
    }

    if (lowest === 0) {
      const dEmbed = grads.get(params.embed.name);
      // The virtual rows did not read the token table: id −1 leaves them out of its gradient.
      const ids = acts.prompt ? geo.idsCpu.map((id, i) => (i % geo.T < nv ? -1 : id)) : batch.idsCpu;
      if (dEmbed) embedBackward(ctx, dEmbed, dx, ids, params.embed);
      const dPos = params.positions ? grads.get(params.positions.name) : undefined;
      if (dPos) embedBackward(ctx, dPos, dx, geo.positionsCpu, params.positions!);
      const dPrompt = acts.prompt ? grads.get(PROMPT_EMBEDDINGS)?.[0] : undefined;
      if (dPrompt) {
        // dP += dx[b, 0 .. n) for each sequence b, one accumulating copy after another (no float atomics).
        const size = nv * H;
        for (let b = 0; b < geo.B; b++) {
          copyBlock(ctx, dPrompt, dx, { rows: 1, cols: size, srcStride: size, srcOffset: b * geo.T * H, dstStride: size, dstOffset: 0, accumulate: true });
        }
      }
    }
    dx.release();
  }

  /** dx holds the gradient of layer l's output; on return, that of its input. */
  private layerBackward(l: number, dx: Tensor, acts: Activations, grads: Gradients, s: LayerSaved): void {
    const { ctx, cfg } = this;
    const layer = this.params.layers[l]!;
    const { adapter } = acts;
    const batch = acts.prompt?.full ?? acts.batch; // the positions the layers ran over
    const N = batch.B * batch.T;
    const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: D } = cfg;
    const lora = asLora(adapter);
    const scale = lora ? loraScale(lora) : 1;
    const linear = (dIn: Tensor, lin: LinearParams, dOut: Tensor, input: Tensor): void => {
      const lora = this.loraFor(lin, adapter);
      const xa = s.xa.get(lin.module) ?? null;
      linearBackward(ctx, dIn, this.linearGrads(grads, lin, lora), dOut, input, xa, lin, lora, scale, acts.dropoutCalls.get(lin.module));
    };

    // MLP branch: x3 = x2 + down(act(h2)), or x2 + adapter(down(act(h2)))
    const dAct = ctx.zeros([N, I]);
    const dDown = this.bottleneckBackwardAt(l, 'mlp', dx, s, adapter, grads);
    linear(dAct, layer.down, dDown ?? dx, s.act);
    dDown?.release();
    const dUp = ctx.zeros([N, I]);
    const dh2 = ctx.zeros([N, H]);
    if (layer.gate) {
      const dGate = ctx.zeros([N, I]);
      swigluBackward(ctx, dGate, dUp, dAct, s.gate!, s.up);
      linear(dh2, layer.gate, dGate, s.h2);
      dGate.release();
    } else {
      geluBackward(ctx, dUp, dAct, s.up);
    }
    dAct.release();
    linear(dh2, layer.up, dUp, s.h2);
    dUp.release();
    this.normBackward(grads, dx, dh2, s.x2, layer.norm2, s.n2);
    dh2.release();

    // Attention branch: x2 = x + o(attention(q, k, v))
    const dAtt = ctx.zeros([batch.B, batch.T, nh, D]);
    const dO = this.bottleneckBackwardAt(l, 'attn', dx, s, adapter, grads);
    linear(dAtt.view([N, nh * D]), layer.o, dO ?? dx, s.att.view([N, nh * D]));
    dO?.release();
    let dq = ctx.zeros(s.q.shape);
    let dk = ctx.zeros(s.k.shape);
    const dv = ctx.zeros(s.v.shape);
    flashAttentionBackward(ctx, dq, dk, dv, dAtt, s.q, s.k, s.v, s.att, s.lse, batch.keyMask, 1 / Math.sqrt(D));
    dAtt.release();
    const replace = (old: Tensor, next: Tensor): Tensor => {
      old.release();
      return next;
    };
    if (this.rope) {
      const dqPre = ctx.zeros(s.q.shape);
      const dkPre = ctx.zeros(s.k.shape);
      ropeBackward(ctx, dqPre, dq, batch.positions, this.rope);
      ropeBackward(ctx, dkPre, dk, batch.positions, this.rope);
      dq = replace(dq, dqPre);
      dk = replace(dk, dkPre);
    }
    if (layer.qNorm && layer.kNorm) {
      const dqPre = ctx.zeros(s.q.shape);
      const dkPre = ctx.zeros(s.k.shape);
      const qn = { weight: layer.qNorm, bias: null };
      const kn = { weight: layer.kNorm, bias: null };
      this.normBackwardRms(grads, dqPre, dq, s.qPre!, qn, s.qRstd!);
      this.normBackwardRms(grads, dkPre, dk, s.kPre!, kn, s.kRstd!);
      dq = replace(dq, dqPre);
      dk = replace(dk, dkPre);
    }
    const dh1 = ctx.zeros([N, H]);
    const dq2 = dq.view([N, nh * D]);
    const dk2 = dk.view([N, nkv * D]);
    const dv2 = dv.view([N, nkv * D]);
    if (layer.qkv) {
      const dqkv = ctx.zeros([N, (nh + 2 * nkv) * D]);
      sliceColumnsBackward(ctx, dqkv, dq2, 0);
      sliceColumnsBackward(ctx, dqkv, dk2, nh * D);
      sliceColumnsBackward(ctx, dqkv, dv2, (nh + nkv) * D);
      linear(dh1, layer.qkv, dqkv, s.h1);
      dqkv.release();
    } else {
      linear(dh1, layer.q!, dq2, s.h1);
      linear(dh1, layer.k!, dk2, s.h1);
      linear(dh1, layer.v!, dv2, s.h1);
    }
    dq.release();
    dk.release();
    dv.release();
    this.normBackward(grads, dx, dh1, s.x, layer.norm1, s.n1);
    dh1.release();
  }

  /**
   * The gradient of the bottleneck adapter's input at `site` of layer l, given dy (that of its output);
   * accumulates its trainable tensors' gradients. null when no adapter sits there (the input's gradient is dy).
   */
  private bottleneckBackwardAt(l: number, site: BottleneckSite, dy: Tensor, s: LayerSaved, adapter: ModelAdapter | null, grads: Gradients): Tensor | null {
    const b = asBottleneck(adapter);
    const key = bottleneckKey(l, site);
    const m = b?.modules.get(key);
    const saved = s.bottleneck.get(site);
    if (!b || !m) return null;
    if (!saved) throw new Error(`backward: the forward saved nothing for the adapter at ${key}`);
    const g = (proj: 'down' | 'up', what: 'weight' | 'bias') => grads.get(bottleneckParamName(key, proj, what))?.[0];
    const dh = this.ctx.zeros(dy.shape, 'f32', { label: `${key} input gradient` });
    const bg = { downWeight: g('down', 'weight'), downBias: g('down', 'bias'), upWeight: g('up', 'weight'), upBias: g('up', 'bias') };
    bottleneckBackward(this.ctx, dh, bg, dy, saved.h, saved, m, b.nonLinearity);
    return dh;
  }

  /** RMSNorm backward for Qwen3's per-head norms (always RMSNorm, whatever the model's norm). */
  private normBackwardRms(grads: Gradients, dx: Tensor, dOut: Tensor, x: Tensor, p: NormParams, rstd: Tensor): void {
    const g = this.one(grads, p.weight);
    const dW = g ?? this.ctx.empty(p.weight.shape, 'f32', { label: 'frozen norm gradient (discarded)' });
    rmsnormBackward(this.ctx, dx, dW, dOut, x, p.weight.parts[0]!, rstd);
    if (!g) dW.release();
  }

  // ---- inference with a KV cache ---------------------------------------------------------------------------

  /**
   * A KV cache for up to maxTokens positions (batch 1); with a prompt adapter (`adapter`, default the current
   * one), room for its virtual tokens as well (maxTokens + n in all). Release it when done.
   */
  createKvCache(maxTokens: number, adapter?: ModelAdapter | null): KvCache {
    this.checkAlive();
    const nv = virtualTokens(asPrompt(this.adapterFor(adapter)));
    if (!Number.isInteger(maxTokens) || maxTokens <= 0) throw new Error(`createKvCache: maxTokens ${maxTokens} must be a positive integer`);
    this.checkPositions(maxTokens + nv, nv ? `A KV cache of ${maxTokens} tokens after the prompt adapter's ${nv} virtual tokens` : `A KV cache of ${maxTokens} tokens`);
    const { numLayers, numKvHeads, headDim } = this.cfg;
    return new GpuKvCache(this.ctx, this, maxTokens + nv, numLayers, numKvHeads, headDim);
  }

  /**
   * Runs `ids` at positions cache.length.. and appends their keys/values; returns the logits of the LAST
   * position (read back, [V]). Uses `adapter` (default: the current one; null: the base model); a cache must
   * be filled under one adapter throughout. A prompt adapter's virtual tokens go in first when the cache is
   * empty (so cache.length counts them).
   */
  async forwardCached(ids: number[], cache: KvCache, adapter?: ModelAdapter | null): Promise<Float32Array> {
    this.checkAlive();
    if (!(cache instanceof GpuKvCache) || cache.owner !== this) throw new Error('forwardCached: the cache was made by another model');
    if (cache.isReleased) throw new Error('forwardCached: the cache was released');
    const { ctx, cfg, params } = this;
    const start = cache.length;
    if (ids.length === 0) throw new Error('forwardCached: no tokens given');
    const use = this.adapterFor(adapter);
    const prompt = start === 0 ? asPrompt(use) : null;
    const lead = virtualTokens(prompt);
    const T = lead + ids.length;
    if (start + T > cache.maxTokens) {
      const virtual = lead ? ` (${lead} of them the prompt adapter's virtual tokens)` : '';
      throw new Error(`forwardCached: ${start} cached + ${T} new tokens${virtual} exceed the cache's ${cache.maxTokens}; create a larger cache`);
    }
    checkEmbeddingIds(ids, cfg.vocabSize);
    const idsCpu = Int32Array.from({ length: T }, (_, i) => (i < lead ? 0 : ids[i - lead]!));
    const positionsCpu = Int32Array.from({ length: T }, (_, i) => start + i);
    const idsT = ctx.upload([T], idsCpu, 'i32', { label: 'decode ids' });
    const positions = ctx.upload([T], positionsCpu, 'i32', { label: 'decode positions' });
    let x = this.embed(idsT, idsCpu, positions, positionsCpu, prompt ? { adapter: prompt, B: 1, T } : undefined);
    const step: Step = { B: 1, T, positions, keyMask: null, save: false, cache, start };
    for (let l = 0; l < cfg.numLayers; l++) {
      const { out } = this.layerForward(l, x, step, use);
      x.release();
      x = out;
    }
    cache.advance(T);
    const H = cfg.hiddenSize;
    const last = ctx.empty([1, H]);
    copyBlock(ctx, last, x, { rows: 1, cols: H, srcStride: H, srcOffset: (T - 1) * H, dstStride: H, dstOffset: 0 });
    const h = ctx.empty([1, H]);
    const n = this.normForward(h, last, params.finalNorm);
    const chunks = lmHeadForward(ctx, h, params.lmHead);
    const logits = chunks.length === 1 ? chunks[0]!.logits : assembleLogits(ctx, chunks, cfg.vocabSize);
    try {
      return await ctx.readF32(logits);
    } finally {
      for (const t of [idsT, positions, x, last, h, logits, ...chunks.map((c) => c.logits)]) t.release();
      releaseNorm(n);
    }
  }

  /** Frees the weights and tables (not the adapter, which belongs to its maker). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    releaseParams(this.params);
    this.rope?.cos.release();
    this.rope?.sin.release();
  }
}
