// A decoder-only causal language model on the GPU — Llama, Qwen2, Qwen3 and GPT-2 as one pre-norm transformer
// (config.ts says what differs) — written as llm.c writes GPT-2: paired ops, the forward saving what the backward
// needs, the backward reading the forward in reverse. The layer's ops, adapters, training, inference and prompt
// tuning's widened rows: docs/model.md ("The decoder").
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { add, addInPlace, scale as scaleOp } from '../engine/ops/elementwise';
// The tiled (flash-style) attention: never holds the T×T scores; same semantics as ops/attention.ts.
import { flashAttentionBackward, flashAttentionForward } from '../engine/ops/flash-attention';
import { checkEmbeddingIds } from '../engine/ops/embedding';
import { geluBackward, geluForward } from '../engine/ops/gelu';
import { layernormBackward, layernormForward, rmsnormBackward, rmsnormForward } from '../engine/ops/norm';
import { createRopeTable, ropeBackward, ropeForward, type RopeTable } from '../engine/ops/rope';
import { swigluBackward, swigluForward } from '../engine/ops/swiglu';
import { gegluBackward, gegluForward } from '../engine/ops/geglu';
import type { EmbeddingScale } from '../engine/ops/embedding';
import { f32ToBf16Bits, bf16BitsToF32, f32ToF16Bits, f16BitsToF32 } from '../engine/half';
import { dropoutParams } from '../engine/dropout-params';
import { sliceColumnsBackward, sliceColumnsForward } from '../engine/ops/copy-block';
import type { ModelConfig } from './config';
import { prefixBatch, type Batch } from './batch';
import { adapterParameters, asLora, asPrompt, type ModelAdapter } from './adapters';
import {
  accumulatePromptGradient,
  adapterTrainsLayer,
  bottleneckBackwardAt,
  bottleneckForwardAt,
  checkAdapterFits,
  loraModuleOf,
  realRows,
  realTokenIds,
  widenedRows,
  writePromptRows,
} from './adapter-hooks';
import { Activations, releaseLayerSaved, releaseNorm, type DropoutCalls, type LayerSaved, type NormSaved, type PromptRun } from './activations';
import { Gradients } from './gradients';
import type { ForwardOptions, LoraDropout } from './forward-options';
import { GpuKvCache, type KvCache } from './kv-cache';
import { appendToCache, decodeInput, lastRow, ownCache } from './kv-decode';
import { linearBackward, linearForward, type LinearDropout, type LinearGrads } from './linear';
import { loraParamName, loraScale, type LoraModule } from './lora';
import {
  allParams,
  f32Parts,
  layerLinears,
  layerParams,
  loadParams,
  releaseParams,
  type LinearParams,
  type ModelParams,
  type NormParams,
  type ParamTensor,
  type WeightOptions,
  type WeightSource,
} from './params';
import { PROMPT_EMBEDDINGS, virtualTokens, type PromptAdapter } from './prompt-tuning';
import { assembleLogits, embedBackward, embedForward, lmHeadBackward, lmHeadForward, splitLogits } from './vocab';

export { Activations, releaseActivations } from './activations';
export type { ForwardOptions, LoraDropout } from './forward-options';
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
  /** How weights are held on the GPU: their file precision (default), f32, or quantized linears (params.ts). */
  weights?: WeightOptions;
}

/** A linear layer's module path and sizes, for making adapters (PEFT's target_modules match their last part). */
export interface LinearModuleInfo {
  module: string;
  inFeatures: number;
  outFeatures: number;
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

/** The Step of a forward over a whole batch (no cache); save: keep what the backward needs. */
function batchStep(b: Batch, save: boolean): Step {
  return { B: b.B, T: b.T, positions: b.positions, keyMask: b.keyMask, save, start: 0 };
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
    /** Gemma 3: the RoPE table of the sliding-window layers (their own base); null: every layer uses `rope`. */
    private readonly ropeLocal: RopeTable | null = null,
  ) {
    this.maxPositions = maxPositions;
    this.embedScale = embeddingScale(cfg, params.embed);
  }

  /** Gemma: the scale of the token embeddings in the embedding's dtype (null: none). */
  private readonly embedScale: EmbeddingScale | null;

  /**
   * Uploads the weights (checked against the config; see params.ts) and builds the model. Throws a
   * ModelWeightsError naming the tensor when one is missing, mis-shaped or not a float tensor.
   */
  static create(ctx: GpuContext, cfg: ModelConfig, weights: WeightSource, opts: CausalLMOptions = {}): CausalLM {
    const want = opts.maxPositions ?? Math.min(cfg.maxPositions, DEFAULT_MAX_POSITIONS);
    if (!Number.isInteger(want) || want <= 0) throw new Error(`CausalLM: maxPositions ${want} must be a positive integer`);
    const maxPositions = cfg.positions === 'learned' ? Math.min(want, cfg.maxPositions) : want;
    const params = loadParams(ctx, cfg, weights, opts.maxBindingBytes, opts.weights);
    const rope = cfg.positions === 'rope' ? createRopeTable(ctx, cfg.headDim, maxPositions, cfg.ropeTheta, cfg.ropeScaling) : null;
    const local = cfg.ropeLocalTheta !== undefined && cfg.layerTypes.includes('sliding') ? createRopeTable(ctx, cfg.headDim, maxPositions, cfg.ropeLocalTheta) : null;
    return new CausalLM(ctx, cfg, params, rope, maxPositions, local);
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
    checkAdapterFits(adapter, this.cfg, this.params.layers, this.maxPositions);
  }

  /** The token embedding rows of `ids`: a new persistent tensor [ids.length, hidden] (prompt tuning's TEXT init). */
  tokenEmbeddings(ids: readonly number[]): Tensor {
    this.checkAlive();
    checkEmbeddingIds(ids, this.cfg.vocabSize);
    const idsCpu = Int32Array.from(ids);
    const idsT = this.ctx.upload([ids.length], idsCpu, 'i32', { label: 'token ids' });
    const out = this.ctx.empty([ids.length, this.cfg.hiddenSize], 'f32', { persistent: true, label: 'token embeddings' });
    // As PEFT reads them through the model's embedding layer: Gemma's scaled.
    embedForward(this.ctx, out, idsT, idsCpu, this.params.embed, this.embedScale ?? undefined);
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

  // ---- forward -------------------------------------------------------------------------------------------

  private normForward(out: Tensor, x: Tensor, p: NormParams): NormSaved {
    const rows = x.size / x.shape[x.shape.length - 1]!;
    const rstd = this.ctx.empty([rows]);
    if (this.cfg.norm === 'rmsnorm') {
      rmsnormForward(this.ctx, out, rstd, x, f32Parts(p.weight)[0]!, this.cfg.normEps, { plusOne: this.cfg.normPlusOne });
      return { rstd, mean: null };
    }
    const mean = this.ctx.empty([rows]);
    layernormForward(this.ctx, out, mean, rstd, x, f32Parts(p.weight)[0]!, f32Parts(p.bias!)[0]!, this.cfg.normEps);
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
    embedForward(this.ctx, x, ids, idsCpu, this.params.embed, this.embedScale ?? undefined);
    if (prompt) writePromptRows(this.ctx, x, prompt, H);
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
      const s = linearForward(ctx, out, input, lin, loraModuleOf(lin, adapter), scale, save, dropouts.get(lin.module));
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
      rmsnormForward(ctx, q, qRstd, qPre, f32Parts(layer.qNorm)[0]!, cfg.normEps, { plusOne: cfg.normPlusOne });
      rmsnormForward(ctx, k, kRstd, kPre, f32Parts(layer.kNorm)[0]!, cfg.normEps, { plusOne: cfg.normPlusOne });
    }
    const rope = this.ropeOf(l);
    if (rope) {
      ropeForward(ctx, q, q, step.positions, rope);
      ropeForward(ctx, k, k, step.positions, rope);
    }
    let kAtt = k;
    let vAtt = v;
    if (step.cache) ({ k: kAtt, v: vAtt } = appendToCache(ctx, step.cache, l, k, v, step.start, T));
    const att = ctx.empty([B, T, nh, D]);
    const lse = ctx.empty([B, nh, T]);
    flashAttentionForward(ctx, att, lse, q, kAtt, vAtt, step.keyMask, cfg.attentionScale, undefined, this.windowOf(l));
    const o = ctx.empty([N, H]);
    linear(layer.o, o, att.view([N, nh * D]));
    const oOut = bottleneckForwardAt(ctx, l, 'attn', o, adapter, save, bottleneck);
    // Gemma 3: the attention branch is normed before the residual add (post_attention_layernorm).
    let attnOut: Tensor | null = null;
    let nAttn: NormSaved | null = null;
    let branch = oOut;
    if (layer.postAttnNorm) {
      branch = ctx.empty([N, H]);
      nAttn = this.normForward(branch, oOut, layer.postAttnNorm);
      attnOut = oOut;
    }
    const x2 = ctx.empty([N, H]);
    add(ctx, x2, x, branch);
    // o itself without an adapter; the adapter's output y otherwise (o stays saved or was freed); with a post norm
    // its output (its input is kept in attnOut).
    branch.release();

    const h2 = ctx.empty([N, H]);
    const n2 = this.normForward(h2, x2, layer.norm2);
    const up = ctx.empty([N, I]);
    const act = ctx.empty([N, I]);
    let gate: Tensor | null = null;
    if (layer.gate) {
      gate = ctx.empty([N, I]);
      linear(layer.gate, gate, h2);
      linear(layer.up, up, h2);
      if (cfg.mlp === 'geglu') gegluForward(ctx, act, gate, up);
      else swigluForward(ctx, act, gate, up);
    } else {
      linear(layer.up, up, h2);
      geluForward(ctx, act, up);
    }
    const down = ctx.empty([N, H]);
    linear(layer.down, down, act);
    const downOut = bottleneckForwardAt(ctx, l, 'mlp', down, adapter, save, bottleneck);
    // Gemma 3: the MLP branch is normed before the residual add (post_feedforward_layernorm).
    let mlpOut: Tensor | null = null;
    let nMlp: NormSaved | null = null;
    let mlpBranch = downOut;
    if (layer.postMlpNorm) {
      mlpBranch = ctx.empty([N, H]);
      nMlp = this.normForward(mlpBranch, downOut, layer.postMlpNorm);
      mlpOut = downOut;
    }
    const out = ctx.empty([N, H], 'f32', { label: 'residual stream' });
    add(ctx, out, x2, mlpBranch);
    mlpBranch.release();

    const saved: LayerSaved = { x, h1, n1, qPre, kPre, qRstd, kRstd, q, k, v, att, lse, attnOut, nAttn, x2, h2, n2, gate, up, act, mlpOut, nMlp, xa, bottleneck };
    if (save) return { out, saved };
    releaseLayerSaved(saved, true); // the input x is the caller's; xa and bottleneck hold nothing without save
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

  /** Layer l's RoPE table: Gemma 3's sliding layers have their own base. */
  private ropeOf(l: number): RopeTable | null {
    return this.ropeLocal && this.cfg.layerTypes[l] === 'sliding' ? this.ropeLocal : this.rope;
  }

  /** Layer l's attention window: the sliding window of Gemma 3's local layers, 0 (none) for the others. */
  private windowOf(l: number): number {
    return this.cfg.layerTypes[l] === 'sliding' ? this.cfg.slidingWindow : 0;
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
    const step = batchStep(geo, save && !checkpoint);
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
      // Only the real positions go on to the final norm.
      const real = realRows(ctx, x, batch, run.full, cfg.hiddenSize);
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
      rmsnormBackward(ctx, dx, target(p.weight), dOut, x, f32Parts(p.weight)[0]!, s.rstd, { plusOne: this.cfg.normPlusOne });
    } else {
      layernormBackward(ctx, dx, target(p.weight), target(p.bias), dOut, x, f32Parts(p.weight)[0]!, s.mean!, s.rstd);
    }
    for (const t of scratch) t.release();
  }

  /** The lowest layer with a trainable parameter (0 when the embeddings or a prompt train; numLayers when none does). */
  private lowestTrainableLayer(grads: Gradients, adapter: ModelAdapter | null): number {
    const { params } = this;
    if (grads.has(params.embed.name) || (params.positions && grads.has(params.positions.name)) || grads.has(PROMPT_EMBEDDINGS)) return 0;
    for (let l = 0; l < params.layers.length; l++) {
      const layer = params.layers[l]!;
      if (layerParams(layer).some((p) => grads.has(p.name)) || adapterTrainsLayer(l, layer, adapter, grads)) return l;
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
      const dxAll = widenedRows(ctx, dx, batch, geo, H);
      dx.release();
      dx = dxAll;
    }

    const lowest = this.lowestTrainableLayer(grads, adapter);
    for (let l = cfg.numLayers - 1; l >= lowest; l--) {
      const saved = acts.layerInputs ? this.recomputeLayer(l, acts) : acts.layers[l]!;
      this.layerBackward(l, dx, acts, grads, saved);
      if (acts.layerInputs) releaseLayerSaved(saved, true); // a recomputed layer's tensors go as soon as its backward ran
    }

    if (lowest === 0) {
      const dEmbed = grads.get(params.embed.name);
      // The virtual rows did not read the token table: id −1 leaves them out of its gradient.
      const ids = acts.prompt ? realTokenIds(geo, nv) : batch.idsCpu;
      if (dEmbed) {
        // Gemma: x = scale · E[id], so dE[id] += scale · dx (the rounding of the scaled row passes the gradient through).
        const dScaled = this.embedScale ? ctx.empty(dx.shape, 'f32', { label: 'scaled embedding gradient' }) : dx;
        if (this.embedScale) scaleOp(ctx, dScaled, dx, this.embedScale.scale);
        embedBackward(ctx, dEmbed, dScaled, ids, params.embed);
        if (dScaled !== dx) dScaled.release();
      }
      const dPos = params.positions ? grads.get(params.positions.name) : undefined;
      if (dPos) embedBackward(ctx, dPos, dx, geo.positionsCpu, params.positions!);
      const dPrompt = acts.prompt ? grads.get(PROMPT_EMBEDDINGS)?.[0] : undefined;
      if (dPrompt) accumulatePromptGradient(ctx, dPrompt, dx, geo, nv, H);
    }
    dx.release();
  }

  /**
   * Activation checkpointing: layer l's forward again from its saved input, with the forward's adapter and
   * LoRA dropout calls, so it saves the same tensors bit for bit; the caller releases them (not the input).
   */
  private recomputeLayer(l: number, acts: Activations): LayerSaved {
    const geo = acts.prompt?.full ?? acts.batch;
    const { out, saved } = this.layerForward(l, acts.layerInputs![l]!, batchStep(geo, true), acts.adapter, acts.dropoutCalls);
    out.release();
    return saved!;
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
      const lora = loraModuleOf(lin, adapter);
      const xa = s.xa.get(lin.module) ?? null;
      linearBackward(ctx, dIn, this.linearGrads(grads, lin, lora), dOut, input, xa, lin, lora, scale, acts.dropoutCalls.get(lin.module));
    };

    // MLP branch: x3 = x2 + down(act(h2)), or x2 + adapter(down(act(h2))); Gemma 3: x2 + norm(that).
    const dAct = ctx.zeros([N, I]);
    const dMlpOut = this.postNormBackward(grads, dx, layer.postMlpNorm, s.mlpOut, s.nMlp, N);
    const dDown = bottleneckBackwardAt(ctx, l, 'mlp', dMlpOut ?? dx, s, adapter, grads);
    linear(dAct, layer.down, dDown ?? dMlpOut ?? dx, s.act);
    dDown?.release();
    dMlpOut?.release();
    const dUp = ctx.zeros([N, I]);
    const dh2 = ctx.zeros([N, H]);
    if (layer.gate) {
      const dGate = ctx.zeros([N, I]);
      if (this.cfg.mlp === 'geglu') gegluBackward(ctx, dGate, dUp, dAct, s.gate!, s.up);
      else swigluBackward(ctx, dGate, dUp, dAct, s.gate!, s.up);
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

    // Attention branch: x2 = x + o(attention(q, k, v)); Gemma 3: x + norm(o(...)).
    const dAtt = ctx.zeros([batch.B, batch.T, nh, D]);
    const dAttnOut = this.postNormBackward(grads, dx, layer.postAttnNorm, s.attnOut, s.nAttn, N);
    const dO = bottleneckBackwardAt(ctx, l, 'attn', dAttnOut ?? dx, s, adapter, grads);
    linear(dAtt.view([N, nh * D]), layer.o, dO ?? dAttnOut ?? dx, s.att.view([N, nh * D]));
    dO?.release();
    dAttnOut?.release();
    let dq = ctx.zeros(s.q.shape);
    let dk = ctx.zeros(s.k.shape);
    const dv = ctx.zeros(s.v.shape);
    flashAttentionBackward(ctx, dq, dk, dv, dAtt, s.q, s.k, s.v, s.att, s.lse, batch.keyMask, cfg.attentionScale, undefined, this.windowOf(l));
    dAtt.release();
    const replace = (old: Tensor, next: Tensor): Tensor => {
      old.release();
      return next;
    };
    const rope = this.ropeOf(l);
    if (rope) {
      const dqPre = ctx.zeros(s.q.shape);
      const dkPre = ctx.zeros(s.k.shape);
      ropeBackward(ctx, dqPre, dq, batch.positions, rope);
      ropeBackward(ctx, dkPre, dk, batch.positions, rope);
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
   * Gemma 3's post-branch norms: given dx (the gradient of the layer's residual sum, which the branch's norm
   * output reaches unchanged), a new [N, H] tensor with the gradient of the norm's input; null without the norm.
   */
  private postNormBackward(grads: Gradients, dx: Tensor, p: NormParams | null, input: Tensor | null, saved: NormSaved | null, N: number): Tensor | null {
    if (!p) return null;
    const d = this.ctx.zeros([N, this.cfg.hiddenSize], 'f32', { label: 'post-norm input gradient' });
    this.normBackward(grads, d, dx, input!, p, saved!);
    return d;
  }

  /** RMSNorm backward for Qwen3's per-head norms (always RMSNorm, whatever the model's norm). */
  private normBackwardRms(grads: Gradients, dx: Tensor, dOut: Tensor, x: Tensor, p: NormParams, rstd: Tensor): void {
    const g = this.one(grads, p.weight);
    const dW = g ?? this.ctx.empty(p.weight.shape, 'f32', { label: 'frozen norm gradient (discarded)' });
    rmsnormBackward(this.ctx, dx, dW, dOut, x, f32Parts(p.weight)[0]!, rstd, { plusOne: this.cfg.normPlusOne });
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
    const gpuCache = ownCache(cache, this);
    const { ctx, cfg, params } = this;
    const start = gpuCache.length;
    if (ids.length === 0) throw new Error('forwardCached: no tokens given');
    const use = this.adapterFor(adapter);
    const prompt = start === 0 ? asPrompt(use) : null;
    const input = decodeInput(ctx, ids, gpuCache, virtualTokens(prompt), cfg.vocabSize);
    const { T, ids: idsT, positions } = input;
    let x = this.embed(idsT, input.idsCpu, positions, input.positionsCpu, prompt ? { adapter: prompt, B: 1, T } : undefined);
    const step: Step = { B: 1, T, positions, keyMask: null, save: false, cache: gpuCache, start };
    for (let l = 0; l < cfg.numLayers; l++) {
      const { out } = this.layerForward(l, x, step, use);
      x.release();
      x = out;
    }
    gpuCache.advance(T);
    const H = cfg.hiddenSize;
    const last = lastRow(ctx, x, T, H);
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
    for (const t of [this.rope, this.ropeLocal]) {
      t?.cos.release();
      t?.sin.release();
    }
  }
}

/**
 * Gemma's embedding scale √hidden_size as transformers applies it: in the embedding's dtype (a bf16 checkpoint
 * multiplies by bf16(√H) and rounds each product to bf16), whatever the GPU holds (f32 when the embedding trains).
 */
function embeddingScale(cfg: ModelConfig, embed: ParamTensor): EmbeddingScale | null {
  if (cfg.embedScale === undefined) return null;
  const v = cfg.embedScale;
  if (embed.fileDtype === 'BF16') return { scale: bf16BitsToF32(f32ToBf16Bits(v)), round: 'bf16' };
  if (embed.fileDtype === 'F16') return { scale: f16BitsToF32(f32ToF16Bits(v)), round: 'f16' };
  return { scale: Math.fround(v) };
}
