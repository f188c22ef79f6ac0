// The memory planner: the GPU bytes one SFT training step holds at its peak, predicted tensor by tensor as the code
// allocates them, and the longest sequence that fits a budget. Where the peak is and what is counted: docs/model.md
// ("The memory planner").
import { sizeClass, UPLOAD_CHUNK } from '../engine/context';
import { weightBytes, type WeightFormat } from '../engine/weight';
import type { ModelConfig } from './config';
import { rowsPerBlock } from './params';

/**
 * How the frozen base is held on the GPU (src/model/params.ts): every weight f32; matrices 16-bit (an F16/BF16
 * checkpoint's own precision, Graft's default for it); or the blocks' linear layers quantized to 8 or 4 bits
 * (quantization_bit) with the other matrices 16-bit. Norm weights and biases are f32 in all of them; what
 * trains is f32 (full fine-tuning: every weight).
 */
export type PlanPrecision = 'f32' | '16-bit' | '8-bit' | '4-bit';

export const PLAN_PRECISIONS: readonly PlanPrecision[] = ['f32', '16-bit', '8-bit', '4-bit'];

/** The shape facts the plan needs (ModelConfig has them all; see planShape). */
export interface PlanShape {
  layers: number;
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  /** SwiGLU (gate, up, down) or GPT-2's two matrices. */
  gatedMlp: boolean;
  norm: 'rmsnorm' | 'layernorm';
  /** GPT-2: one c_attn linear for q, k and v. */
  fusedQkv: boolean;
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  /** Qwen3's (and Gemma 3's) per-head RMSNorm of q and k. */
  qkNorm: boolean;
  /** Gemma 3: norms on the attention and MLP outputs too (two more per layer, and what they save). */
  sandwichNorms?: boolean;
  /** Gemma 3: sliding layers have RoPE tables of their own base. */
  localRope?: boolean;
  /** Gemma: the token embeddings are scaled (full fine-tuning scales their gradient in a temporary). */
  embedScaled?: boolean;
  /** RoPE (a cos/sin table) or learned positions (a [positions, H] table, GPT-2). */
  positions: 'rope' | 'learned';
  /** Rows of the learned position table (n_positions). */
  positionTable: number;
  tied: boolean;
}

export function planShape(cfg: ModelConfig): PlanShape {
  return {
    layers: cfg.numLayers,
    hidden: cfg.hiddenSize,
    intermediate: cfg.intermediateSize,
    heads: cfg.numHeads,
    kvHeads: cfg.numKvHeads,
    headDim: cfg.headDim,
    vocab: cfg.vocabSize,
    gatedMlp: cfg.mlp === 'swiglu' || cfg.mlp === 'geglu',
    norm: cfg.norm,
    fusedQkv: cfg.architecture === 'GPT2LMHeadModel',
    qkvBias: cfg.qkvBias,
    oBias: cfg.oBias,
    mlpBias: cfg.mlpBias,
    qkNorm: cfg.qkNorm,
    positions: cfg.positions,
    positionTable: cfg.positions === 'learned' ? cfg.maxPositions : 0,
    tied: cfg.tieWordEmbeddings,
    sandwichNorms: cfg.sandwichNorms,
    localRope: cfg.ropeLocalTheta !== undefined && cfg.layerTypes.includes('sliding'),
    embedScaled: cfg.embedScale !== undefined,
  };
}

export interface StepPlanOptions {
  method: 'lora' | 'full';
  /** Sequences per micro-batch (per_device_train_batch_size). */
  batch: number;
  /** Tokens per sequence (the padded micro-batch length, at most cutoff_len). */
  seqLen: number;
  loraRank?: number;
  /** lora_target: ["all"] (default) or linear names (q_proj, v_proj, c_attn, ...). */
  loraTargets?: readonly string[];
  /** The model instance's position capacity (sizes the RoPE table; CausalLM's default: min(config, 8192)). */
  maxPositions?: number;
  /** Tensors above this many bytes are split by rows (the device's maxStorageBufferBindingSize). */
  maxBindingBytes?: number;
  /** Whether the micro-batch has padding (a key mask [N] is uploaded). */
  padded?: boolean;
  /** Activation checkpointing (docs/model.md, "The memory planner"). */
  checkpoint?: boolean;
  /** How the frozen base is held (default 'f32'); full fine-tuning holds every weight in f32 whatever this says. */
  precision?: PlanPrecision;
}

/** Bytes by part; `total` is the predicted peak of bytes in use (GpuContext.stats.peakBytesInUse). */
export interface StepPlan {
  weights: number;
  /** LoRA tensors, or nothing for full fine-tuning (the weights themselves train). */
  adapter: number;
  gradients: number;
  optimizer: number;
  /** What the forward keeps for the backward, the final hidden states, the batch and the loss state. */
  activations: number;
  /** logits and dLogits. */
  logits: number;
  /** dx and the largest set of backward temporaries alive at once. */
  transient: number;
  /** The context's own buffers: upload staging and kernel parameters. */
  context: number;
  total: number;
}

const KiB = 1024;
const UNIFORM_CHUNK = 64 * KiB;
const UNIFORM_SLOT = 256;

/** A persistent tensor's bytes (GpuContext.empty with persistent: rounded up to 16). */
const exact = (elements: number) => Math.max(16, Math.ceil((elements * 4) / 16) * 16);
/** A pooled tensor's bytes: the pool's size class. */
const pooled = (elements: number) => sizeClass(Math.max(16, Math.ceil((elements * 4) / 16) * 16));

interface Linear {
  name: string;
  inF: number;
  outF: number;
  bias: boolean;
}

function layerLinears(s: PlanShape): Linear[] {
  const { hidden: H, intermediate: I } = s;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const attn: Linear[] = s.fusedQkv
    ? [{ name: 'c_attn', inF: H, outF: q + 2 * kv, bias: s.qkvBias }, { name: 'attn.c_proj', inF: q, outF: H, bias: s.oBias }]
    : [
        { name: 'q_proj', inF: H, outF: q, bias: s.qkvBias },
        { name: 'k_proj', inF: H, outF: kv, bias: s.qkvBias },
        { name: 'v_proj', inF: H, outF: kv, bias: s.qkvBias },
        { name: 'o_proj', inF: q, outF: H, bias: s.oBias },
      ];
  const mlp: Linear[] = s.gatedMlp
    ? [
        { name: 'gate_proj', inF: H, outF: I, bias: s.mlpBias },
        { name: 'up_proj', inF: H, outF: I, bias: s.mlpBias },
        { name: 'down_proj', inF: I, outF: H, bias: s.mlpBias },
      ]
    : [{ name: 'c_fc', inF: H, outF: I, bias: s.mlpBias }, { name: 'mlp.c_proj', inF: I, outF: H, bias: s.mlpBias }];
  return [...attn, ...mlp];
}

/** lora_target's rule (src/train/methods.ts): "all", or a name equal to the module's or one of its suffixes. */
const targeted = (lin: Linear, targets: readonly string[]) =>
  targets.includes('all') || targets.some((t) => lin.name === t || lin.name.endsWith(`.${t}`) || t.endsWith(`.${lin.name}`));

/** A weight tensor's elements and what the loader makes of it: a vector (f32), a matrix, a block's linear weight. */
type WeightKind = [elements: number, kind: 'vector' | 'matrix' | 'linear'];

/** Every weight tensor (parts of split ones separately). `matrixBytes`: bytes per element of the matrices (4 or 2). */
function weightTensors(s: PlanShape, maxBindingBytes: number, matrixBytes = 4): WeightKind[] {
  const { hidden: H } = s;
  const out: WeightKind[] = [];
  const vec = (n: number): WeightKind => [n, 'vector'];
  const normParts = (s.norm === 'layernorm' ? [H, H] : [H]).map(vec);
  const vocabBlocks = blocks(s.vocab, H, maxBindingBytes, matrixBytes);
  out.push(...vocabBlocks.map((rows): WeightKind => [rows * H, 'matrix']));
  if (s.positions === 'learned') out.push([s.positionTable * H, 'matrix']);
  for (let l = 0; l < s.layers; l++) {
    out.push(...normParts, ...normParts);
    if (s.sandwichNorms) out.push(...normParts, ...normParts);
    if (s.qkNorm) out.push(vec(s.headDim), vec(s.headDim));
    for (const lin of layerLinears(s)) {
      out.push([lin.inF * lin.outF, 'linear']);
      if (lin.bias) out.push(vec(lin.outF));
    }
  }
  out.push(...normParts);
  if (!s.tied) out.push(...vocabBlocks.map((rows): WeightKind => [rows * H, 'matrix']));
  return out;
}

/** Row counts of the blocks a [rows, cols] weight of `bytes` an element is split into (params.ts's rowsPerBlock). */
function blocks(rows: number, cols: number, maxBindingBytes: number, bytes = 4): number[] {
  const per = rowsPerBlock(cols, maxBindingBytes, bytes);
  const out: number[] = [];
  for (let r = 0; r < rows; r += per) out.push(Math.min(per, rows - r));
  return out;
}

/** GPU bytes of one weight tensor held at `precision` (persistent: rounded up to 16 bytes a buffer). */
function heldBytes([n, kind]: WeightKind, precision: PlanPrecision): number {
  if (kind === 'vector' || precision === 'f32') return weightBytes(n, 'f32');
  const format: WeightFormat = kind === 'linear' && precision === '8-bit' ? 'int8' : kind === 'linear' && precision === '4-bit' ? 'nf4' : 'bf16';
  return weightBytes(n, format);
}

/**
 * The base weights' GPU bytes at `precision` (and the RoPE tables for `maxPositions`), as the loader holds them:
 * what a model needs before any activation.
 */
export function planWeightBytes(s: PlanShape, precision: PlanPrecision, maxPositions: number, maxBindingBytes = 128 * 1024 * 1024): number {
  const list = weightTensors(s, maxBindingBytes, precision === 'f32' ? 4 : 2);
  let bytes = list.reduce((sum, w) => sum + heldBytes(w, precision), 0);
  if (s.positions === 'rope') bytes += (s.localRope ? 4 : 2) * exact(maxPositions * (s.headDim / 2));
  return bytes;
}

/** The predicted peak of one training step (what is counted: docs/model.md, "The memory planner"). */
export function planTrainingStep(s: PlanShape, o: StepPlanOptions): StepPlan {
  const { batch: B, seqLen: T, method } = o;
  if (!(Number.isInteger(B) && B > 0 && Number.isInteger(T) && T > 0)) throw new Error(`planTrainingStep: batch ${B} and seqLen ${T} must be positive integers`);
  const r = o.loraRank ?? 8;
  const targets = o.loraTargets ?? ['all'];
  const binding = o.maxBindingBytes ?? 128 * 1024 * 1024;
  const maxPositions = o.maxPositions ?? Math.max(T, 8192);
  const N = B * T;
  const { hidden: H, intermediate: I, heads: nh, kvHeads: nkv, headDim: D } = s;
  const q = nh * D;
  const kv = nkv * D;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

  // Full fine-tuning widens every weight to an f32 master copy (the packed ones are freed), so it plans f32.
  const precision: PlanPrecision = method === 'full' ? 'f32' : (o.precision ?? 'f32');
  const matrixBytes = precision === 'f32' ? 4 : 2;
  const ropeBytes = s.positions === 'rope' ? (s.localRope ? 4 : 2) * exact(maxPositions * (D / 2)) : 0;
  let weights = sum(weightTensors(s, binding, matrixBytes).map((w) => heldBytes(w, precision)));
  weights += ropeBytes;
  const linears = layerLinears(s);
  const loraLinears = method === 'lora' ? linears.filter((l) => targeted(l, targets)) : [];
  if (method === 'lora' && loraLinears.length === 0) throw new Error(`planTrainingStep: lora_target ${targets.join(', ')} names no linear layer`);
  const loraTensors = loraLinears.flatMap((l) => [r * l.inF, l.outF * r]);
  const adapter = s.layers * sum(loraTensors.map(exact));
  const trainable = method === 'lora' ? adapter : weights - ropeBytes;
  const gradients = trainable;
  const optimizer = 2 * trainable + 3 * 16; // AdamW m and v; the trainer's step stats, norm and clip scale

  // ---- activations (pooled) ----
  const NH = pooled(N * H);
  const norm = (rows: number) => (s.norm === 'layernorm' ? 2 : 1) * pooled(rows);
  let perLayer = 4 * NH + 2 * norm(N); // x, h1, x2, h2, n1, n2
  if (s.sandwichNorms) perLayer += 2 * NH + 2 * norm(N); // the attention and MLP outputs before their norms, and their rstd
  perLayer += s.qkNorm ? 2 * pooled(N * q) + 2 * pooled(N * kv) + pooled(N * nh) + pooled(N * nkv) : pooled(N * q) + pooled(N * kv);
  perLayer += pooled(N * kv) + pooled(N * q) + pooled(N * nh); // v, att, lse
  perLayer += (s.gatedMlp ? 3 : 2) * pooled(N * I); // gate, up, act
  perLayer += loraLinears.length * pooled(N * r); // x·Aᵀ
  const final = 2 * NH + norm(N); // the last layer's output, the final norm's output and its rstd (mean)
  const batchBytes = (o.padded ? 3 : 2) * pooled(N);
  const lossState = pooled(N) + pooled(2 * N);
  const kept = o.checkpoint ? NH : perLayer; // what a layer keeps until its backward
  const recomputed = o.checkpoint ? perLayer - NH : 0;
  const activations = s.layers * kept + final + batchBytes + lossState;
  const logits = 2 * sum(blocks(s.vocab, H, binding, matrixBytes).map((rows) => pooled(N * rows)));

  // ---- the backward's temporaries (the top layer's, or the lm head's dh), with dx alive throughout ----
  const t = pooled(N * r);
  const loraOf = (name: string) => (loraLinears.some((l) => l.name === name) ? t : 0);
  const scratch = method === 'full' ? 0 : (s.norm === 'layernorm' ? 2 : 1) * pooled(H); // a frozen norm's discarded gradient
  const NI = pooled(N * I);
  const dqkv = pooled(N * q) + 2 * pooled(N * kv);
  const lmHead = NH + scratch; // dh, then the final norm's backward
  // Gemma 3: the gradient of a branch's output before its post norm (and the norm's frozen-weight scratch) is alive
  // during that branch's output projection's backward.
  const post = s.sandwichNorms ? NH + scratch : 0;
  const candidates = [
    ...(o.checkpoint ? [2 * NH] : []), // recomputing: the down projection and the layer's output
    NI + post + loraOf(s.gatedMlp ? 'down_proj' : 'mlp.c_proj'), // dAct during down's backward
    s.gatedMlp ? 3 * NI + NH + loraOf('gate_proj') : 2 * NI + NH, // dAct, dUp, (dGate), dh2 (GPT-2: dAct goes before c_fc's t)
    NH + scratch, // dh2 during norm2's backward
    pooled(N * q) + post + loraOf(s.fusedQkv ? 'attn.c_proj' : 'o_proj'), // dAtt during o's backward
    pooled(N * q) + dqkv + pooled(2 * N * nh), // dAtt, dq, dk, dv, the flash backward's state
    ...(s.positions === 'rope' ? [dqkv + pooled(N * q) + pooled(N * kv)] : []), // + dq, dk before RoPE
    ...(s.qkNorm ? [dqkv + pooled(N * q) + pooled(N * kv) + pooled(D)] : []),
    dqkv + NH + (s.fusedQkv ? pooled(N * (q + 2 * kv)) + loraOf('c_attn') : Math.max(loraOf('q_proj'), loraOf('k_proj'), loraOf('v_proj'))), // dh1
  ];
  // Gemma's scaled embedding: full fine-tuning scales dx into a temporary for the embedding's gradient.
  const embed = s.embedScaled && method === 'full' ? NH : 0;
  const transient = NH + Math.max(lmHead, embed, recomputed + Math.max(...candidates));

  // The context: one upload staging chunk, and kernel-parameter chunks for a step's dispatches (about 95 a
  // layer with LoRA, 55 without, measured on the tiny Llama; 256 bytes each).
  const dispatches = s.layers * ((method === 'lora' ? 95 : 55) + (s.sandwichNorms ? 12 : 0)) + 35;
  const context = UPLOAD_CHUNK + Math.ceil((dispatches * UNIFORM_SLOT) / UNIFORM_CHUNK) * UNIFORM_CHUNK;

  const total = weights + adapter + gradients + optimizer + activations + logits + transient + context;
  return { weights, adapter, gradients, optimizer, activations, logits, transient, context, total };
}

/**
 * The longest sequence length (a multiple of `step`, at most `limit`) whose training step fits `budgetBytes`
 * with batch `batch`; 0 when not even `step` tokens fit. The peak grows with the length, so a binary search.
 */
export function largestFittingSeqLen(
  s: PlanShape,
  budgetBytes: number,
  o: Omit<StepPlanOptions, 'seqLen'> & { limit?: number; step?: number },
): number {
  const step = o.step ?? 64;
  const limit = o.limit ?? 32768;
  const fits = (T: number) => planTrainingStep(s, { ...o, seqLen: T, maxPositions: o.maxPositions ?? Math.max(T, limit) }).total <= budgetBytes;
  let lo = 0;
  let hi = Math.floor(limit / step);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid * step)) lo = mid;
    else hi = mid - 1;
  }
  return lo * step;
}
