// The Llama decoder (LlamaForCausalLM) on the GPU, written as llm.c writes GPT-2: a fixed sequence of paired
// ops, the forward saving what the backward needs, and the backward reading the forward in reverse.
// Shapes use N = B·T tokens, H = hidden size, I = intermediate size, V = vocabulary,
// nh/nkv = query/key-value heads, D = head dim.
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { matmulNN, matmulNT, matmulTN } from '../engine/ops/matmul';
import { rmsnormBackward, rmsnormForward } from '../engine/ops/norm';
import { createRopeTable, ropeBackward, ropeForward, type RopeTable } from '../engine/ops/rope';
import { attentionBackward, attentionForward } from '../engine/ops/attention';
import { swigluBackward, swigluForward } from '../engine/ops/swiglu';
import { add } from '../engine/ops/elementwise';
import {
  buildEmbeddingGradIndex,
  embeddingBackward,
  embeddingForward,
  releaseEmbeddingGradIndex,
} from '../engine/ops/embedding';
import type { ModelConfig } from './config';
import type { SafetensorsFile } from './safetensors';

export interface LlamaLayer<T = Tensor> {
  inputNorm: T; // [H]
  q: T; // [nh·D, H]
  k: T; // [nkv·D, H]
  v: T; // [nkv·D, H]
  o: T; // [H, nh·D]
  postNorm: T; // [H]
  gate: T; // [I, H]
  up: T; // [I, H]
  down: T; // [H, I]
}

export interface LlamaParams<T = Tensor> {
  embed: T; // [V, H]
  layers: LlamaLayer<T>[];
  norm: T; // [H]
  /** The output projection [V, H]; the same tensor as `embed` when embeddings are tied. */
  lmHead: T;
}

const LAYER_NAMES: Record<keyof LlamaLayer, string> = {
  inputNorm: 'input_layernorm.weight',
  q: 'self_attn.q_proj.weight',
  k: 'self_attn.k_proj.weight',
  v: 'self_attn.v_proj.weight',
  o: 'self_attn.o_proj.weight',
  postNorm: 'post_attention_layernorm.weight',
  gate: 'mlp.gate_proj.weight',
  up: 'mlp.up_proj.weight',
  down: 'mlp.down_proj.weight',
};

/** Hugging Face tensor names, in the same structure as the parameters. */
export function llamaParamNames(cfg: ModelConfig): LlamaParams<string> {
  const layers = Array.from({ length: cfg.numLayers }, (_, l) => {
    const entries = Object.entries(LAYER_NAMES).map(([k, n]) => [k, `model.layers.${l}.${n}`]);
    return Object.fromEntries(entries) as LlamaLayer<string>;
  });
  return {
    embed: 'model.embed_tokens.weight',
    layers,
    norm: 'model.norm.weight',
    lmHead: cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight',
  };
}

/** Every distinct parameter as [HF name, value] pairs (a tied lm_head appears once, as the embedding). */
export function namedParams<T>(cfg: ModelConfig, p: LlamaParams<T>): [string, T][] {
  const names = llamaParamNames(cfg);
  const out: [string, T][] = [[names.embed, p.embed]];
  p.layers.forEach((layer, l) => {
    for (const key of Object.keys(LAYER_NAMES) as (keyof LlamaLayer)[]) out.push([names.layers[l]![key], layer[key]]);
  });
  out.push([names.norm, p.norm]);
  if (!cfg.tieWordEmbeddings) out.push([names.lmHead, p.lmHead]);
  return out;
}

function expectShape(name: string, got: readonly number[], want: readonly number[]): void {
  if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
    throw new Error(`Weight ${name} has shape [${got.join(', ')}], expected [${want.join(', ')}] from config.json`);
  }
}

export function llamaParamShapes(cfg: ModelConfig): LlamaParams<number[]> {
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: D, vocabSize: V } = cfg;
  const layer: LlamaLayer<number[]> = {
    inputNorm: [H],
    q: [nh * D, H],
    k: [nkv * D, H],
    v: [nkv * D, H],
    o: [H, nh * D],
    postNorm: [H],
    gate: [I, H],
    up: [I, H],
    down: [H, I],
  };
  return { embed: [V, H], layers: Array.from({ length: cfg.numLayers }, () => ({ ...layer })), norm: [H], lmHead: [V, H] };
}

/** Uploads the weights of a safetensors file (checked against the config) as persistent f32 tensors. */
export function loadLlamaParams(ctx: GpuContext, cfg: ModelConfig, file: SafetensorsFile): LlamaParams {
  const names = llamaParamNames(cfg);
  const shapes = llamaParamShapes(cfg);
  const load = (name: string, shape: number[]): Tensor => {
    expectShape(name, file.info(name).shape, shape);
    return ctx.upload(shape, file.float32(name), 'f32', { persistent: true, label: name });
  };
  const embed = load(names.embed, shapes.embed);
  return {
    embed,
    layers: names.layers.map((ln, l) => {
      const entries = (Object.keys(LAYER_NAMES) as (keyof LlamaLayer)[]).map((k) => [k, load(ln[k], shapes.layers[l]![k])]);
      return Object.fromEntries(entries) as LlamaLayer;
    }),
    norm: load(names.norm, shapes.norm),
    lmHead: cfg.tieWordEmbeddings ? embed : load(names.lmHead, shapes.lmHead),
  };
}

/** Zeroed gradient buffers with the structure of the parameters (a tied lm_head shares the embedding's). */
export function zerosLikeParams(ctx: GpuContext, cfg: ModelConfig): LlamaParams {
  const s = llamaParamShapes(cfg);
  const z = (shape: number[]) => ctx.zeros(shape, 'f32', { persistent: true });
  const embed = z(s.embed);
  return {
    embed,
    layers: s.layers.map((ls) => Object.fromEntries(Object.entries(ls).map(([k, sh]) => [k, z(sh)])) as unknown as LlamaLayer),
    norm: z(s.norm),
    lmHead: cfg.tieWordEmbeddings ? embed : z(s.lmHead),
  };
}

export interface LlamaBatch {
  B: number;
  T: number;
  /** Token ids on the CPU, [B·T] (the embedding gradient groups positions by id on the CPU). */
  idsCpu: Int32Array;
  ids: Tensor; // i32 [B·T]
  positions: Tensor; // i32 [B·T]
  /** i32 [B·T], 1 for real tokens and 0 for padding; null when nothing is padded. */
  keyMask: Tensor | null;
}

/** Uploads a batch of token ids [B, T]; positions count from 0 in each row; attentionMask 0 marks padding. */
export function uploadBatch(ctx: GpuContext, ids: number[][], attentionMask?: number[][]): LlamaBatch {
  const B = ids.length;
  const T = ids[0]?.length ?? 0;
  if (B === 0 || T === 0 || ids.some((r) => r.length !== T)) throw new Error('uploadBatch: rows must be non-empty and of equal length');
  const idsCpu = Int32Array.from(ids.flat());
  const pos = new Int32Array(B * T).map((_, i) => i % T);
  const padded = attentionMask?.some((r) => r.some((m) => m === 0)) ?? false;
  return {
    B,
    T,
    idsCpu,
    ids: ctx.upload([B * T], idsCpu, 'i32'),
    positions: ctx.upload([B * T], pos, 'i32'),
    keyMask: padded ? ctx.upload([B * T], Int32Array.from(attentionMask!.flat()), 'i32') : null,
  };
}

export function releaseBatch(b: LlamaBatch): void {
  b.ids.release();
  b.positions.release();
  b.keyMask?.release();
}

/** What one layer's forward saves for its backward. */
interface LayerSaved {
  x: Tensor; // [N, H] layer input (residual stream)
  h1: Tensor; // [N, H] rmsnorm(x)
  rstd1: Tensor; // [N]
  q: Tensor; // [N, nh·D] after RoPE
  k: Tensor; // [N, nkv·D] after RoPE
  v: Tensor; // [N, nkv·D]
  att: Tensor; // [N, nh·D] attention output
  lse: Tensor; // [B, nh, T]
  x2: Tensor; // [N, H] x + attention branch
  h2: Tensor; // [N, H]
  rstd2: Tensor; // [N]
  gate: Tensor; // [N, I]
  up: Tensor; // [N, I]
  act: Tensor; // [N, I] silu(gate)·up
}

export interface LlamaActivations {
  batch: LlamaBatch;
  layers: LayerSaved[];
  xFinal: Tensor; // [N, H] residual stream after the last layer
  hFinal: Tensor; // [N, H] final rmsnorm
  rstdFinal: Tensor; // [N]
  logits: Tensor; // [N, V]
}

export class Llama {
  readonly rope: RopeTable;
  constructor(
    readonly ctx: GpuContext,
    readonly cfg: ModelConfig,
    readonly params: LlamaParams,
  ) {
    this.rope = createRopeTable(ctx, cfg.headDim, cfg.maxPositions, cfg.ropeTheta, cfg.ropeScaling);
  }

  /** The forward pass over a batch; everything the backward needs stays in the returned activations. */
  forward(batch: LlamaBatch): LlamaActivations {
    const { ctx, cfg, params } = this;
    const N = batch.B * batch.T;
    const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: D, vocabSize: V } = cfg;
    const scale = 1 / Math.sqrt(D);

    let x = ctx.empty([N, H]);
    embeddingForward(ctx, x, batch.ids, params.embed);
    const layers: LayerSaved[] = [];
    for (const w of params.layers) {
      const h1 = ctx.empty([N, H]);
      const rstd1 = ctx.empty([N]);
      rmsnormForward(ctx, h1, rstd1, x, w.inputNorm, cfg.rmsNormEps);
      const qLin = ctx.empty([batch.B, batch.T, nh, D]);
      const kLin = ctx.empty([batch.B, batch.T, nkv, D]);
      const v = ctx.empty([batch.B, batch.T, nkv, D]);
      matmulNT(ctx, qLin.view([N, nh * D]), h1, w.q);
      matmulNT(ctx, kLin.view([N, nkv * D]), h1, w.k);
      matmulNT(ctx, v.view([N, nkv * D]), h1, w.v);
      const q = ctx.empty(qLin.shape);
      const k = ctx.empty(kLin.shape);
      ropeForward(ctx, q, qLin, batch.positions, this.rope);
      ropeForward(ctx, k, kLin, batch.positions, this.rope);
      qLin.release();
      kLin.release();
      const att = ctx.empty([batch.B, batch.T, nh, D]);
      const lse = ctx.empty([batch.B, nh, batch.T]);
      attentionForward(ctx, att, lse, q, k, v, batch.keyMask, scale);
      const o = ctx.empty([N, H]);
      matmulNT(ctx, o, att.view([N, nh * D]), w.o);
      const x2 = ctx.empty([N, H]);
      add(ctx, x2, x, o);
      o.release();
      const h2 = ctx.empty([N, H]);
      const rstd2 = ctx.empty([N]);
      rmsnormForward(ctx, h2, rstd2, x2, w.postNorm, cfg.rmsNormEps);
      const gate = ctx.empty([N, I]);
      const up = ctx.empty([N, I]);
      matmulNT(ctx, gate, h2, w.gate);
      matmulNT(ctx, up, h2, w.up);
      const act = ctx.empty([N, I]);
      swigluForward(ctx, act, gate, up);
      const down = ctx.empty([N, H]);
      matmulNT(ctx, down, act, w.down);
      const x3 = ctx.empty([N, H]);
      add(ctx, x3, x2, down);
      down.release();
      layers.push({ x, h1, rstd1, q, k, v, att, lse, x2, h2, rstd2, gate, up, act });
      x = x3;
    }
    const hFinal = ctx.empty([N, H]);
    const rstdFinal = ctx.empty([N]);
    rmsnormForward(ctx, hFinal, rstdFinal, x, params.norm, cfg.rmsNormEps);
    const logits = ctx.empty([N, V]);
    matmulNT(ctx, logits, hFinal, params.lmHead);
    return { batch, layers, xFinal: x, hFinal, rstdFinal, logits };
  }

  /**
   * The backward pass: accumulates the gradient of every parameter into `grads` (zeroed by the caller, or
   * holding earlier micro-batches' gradients), given dLogits [N, V].
   */
  backward(acts: LlamaActivations, dLogits: Tensor, grads: LlamaParams): void {
    const { ctx, cfg, params } = this;
    const { batch } = acts;
    const N = batch.B * batch.T;
    const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: D } = cfg;
    const scale = 1 / Math.sqrt(D);

    // logits = hFinal · lmHeadᵀ
    matmulTN(ctx, grads.lmHead, dLogits, acts.hFinal, { accumulate: true });
    const dh = ctx.empty([N, H]);
    matmulNN(ctx, dh, dLogits, params.lmHead);
    // dx: the gradient of the residual stream, accumulated by every branch that reads it.
    const dx = ctx.zeros([N, H]);
    rmsnormBackward(ctx, dx, grads.norm, dh, acts.xFinal, params.norm, acts.rstdFinal);

    for (let l = cfg.numLayers - 1; l >= 0; l--) {
      const w = params.layers[l]!;
      const g = grads.layers[l]!;
      const s = acts.layers[l]!;
      // MLP branch: x3 = x2 + down(silu(gate(h2))·up(h2))
      matmulTN(ctx, g.down, dx, s.act, { accumulate: true });
      const dAct = ctx.empty([N, I]);
      matmulNN(ctx, dAct, dx, w.down);
      const dGate = ctx.zeros([N, I]);
      const dUp = ctx.zeros([N, I]);
      swigluBackward(ctx, dGate, dUp, dAct, s.gate, s.up);
      dAct.release();
      matmulTN(ctx, g.gate, dGate, s.h2, { accumulate: true });
      matmulTN(ctx, g.up, dUp, s.h2, { accumulate: true });
      matmulNN(ctx, dh, dGate, w.gate);
      matmulNN(ctx, dh, dUp, w.up, { accumulate: true });
      dGate.release();
      dUp.release();
      rmsnormBackward(ctx, dx, g.postNorm, dh, s.x2, w.postNorm, s.rstd2);

      // Attention branch: x2 = x + o(attention(rope(q(h1)), rope(k(h1)), v(h1)))
      matmulTN(ctx, g.o, dx, s.att.view([N, nh * D]), { accumulate: true });
      const dAtt = ctx.empty([batch.B, batch.T, nh, D]);
      matmulNN(ctx, dAtt.view([N, nh * D]), dx, w.o);
      const dq = ctx.zeros(s.q.shape);
      const dk = ctx.zeros(s.k.shape);
      const dv = ctx.zeros(s.v.shape);
      attentionBackward(ctx, dq, dk, dv, dAtt, s.q, s.k, s.v, s.att, s.lse, batch.keyMask, scale);
      dAtt.release();
      const dqLin = ctx.zeros(s.q.shape);
      const dkLin = ctx.zeros(s.k.shape);
      ropeBackward(ctx, dqLin, dq, batch.positions, this.rope);
      ropeBackward(ctx, dkLin, dk, batch.positions, this.rope);
      dq.release();
      dk.release();
      const dq2 = dqLin.view([N, nh * D]);
      const dk2 = dkLin.view([N, nkv * D]);
      const dv2 = dv.view([N, nkv * D]);
      matmulTN(ctx, g.q, dq2, s.h1, { accumulate: true });
      matmulTN(ctx, g.k, dk2, s.h1, { accumulate: true });
      matmulTN(ctx, g.v, dv2, s.h1, { accumulate: true });
      matmulNN(ctx, dh, dq2, w.q);
      matmulNN(ctx, dh, dk2, w.k, { accumulate: true });
      matmulNN(ctx, dh, dv2, w.v, { accumulate: true });
      dqLin.release();
      dkLin.release();
      dv.release();
      rmsnormBackward(ctx, dx, g.inputNorm, dh, s.x, w.inputNorm, s.rstd1);
    }
    const index = buildEmbeddingGradIndex(ctx, batch.idsCpu, cfg.vocabSize);
    embeddingBackward(ctx, grads.embed, dx, index);
    releaseEmbeddingGradIndex(index);
    dx.release();
    dh.release();
  }
}

export function releaseActivations(acts: LlamaActivations): void {
  for (const s of acts.layers) for (const t of Object.values(s)) t.release();
  acts.xFinal.release();
  acts.hFinal.release();
  acts.rstdFinal.release();
  acts.logits.release();
}
