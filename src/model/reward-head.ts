// A reward model's head: one scalar per sequence from the last token's final hidden state, as Hugging Face's
// <Arch>ForSequenceClassification with num_labels 1, and loading such a folder (docs/model.md, "The reward head").
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { rewardBackward, rewardForward } from '../engine/ops/reward-head';
import { uploadBatch, releaseBatch } from './batch';
import { loadModel, type LoadedModel, type LoadOptions } from './load';
import { ModelError, readJson, type ModelSource } from './source';
import type { CausalLM } from './transformer';
import { SafetensorsWeights } from './weights';

export { rewardBackward, rewardForward };

/** The head's tensor name in a sequence-classification checkpoint. */
export const SCORE_WEIGHT = 'score.weight';

/** Row indices (into B·T) of each sequence's last token: b·T + length_b − 1. */
export function lastTokenRows(lengths: readonly number[], T: number): Uint32Array {
  return Uint32Array.from(lengths, (len, b) => {
    if (!(len >= 1 && len <= T)) throw new Error(`lastTokenRows: sequence ${b} has length ${len} (T = ${T})`);
    return b * T + len - 1;
  });
}

/**
 * normal(0, std) values (Box–Muller) from `uniform`, a generator of [0, 1) numbers (the trainer passes its
 * seeded one), as a [1, H] head is initialised.
 */
export function initScoreWeight(H: number, std: number, uniform: () => number): Float32Array {
  const out = new Float32Array(H);
  for (let i = 0; i < H; i += 2) {
    const u1 = 1 - uniform(); // (0, 1]
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = std * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < H) out[i + 1] = std * r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** The head: score.weight [1, H] on the GPU (owned: release it). */
export class RewardHead {
  private constructor(
    readonly ctx: GpuContext,
    readonly weight: Tensor,
  ) {}

  get hiddenSize(): number {
    return this.weight.size;
  }

  /** A head with the given weights [H]. */
  static fromWeights(ctx: GpuContext, data: Float32Array): RewardHead {
    return new RewardHead(ctx, ctx.upload([1, data.length], data, 'f32', { persistent: true, label: SCORE_WEIGHT }));
  }

  /** A new head, normal(0, std) (Hugging Face: std = config.initializer_range) drawn from `uniform`. */
  static init(ctx: GpuContext, H: number, opts: { std: number; uniform: () => number }): RewardHead {
    return RewardHead.fromWeights(ctx, initScoreWeight(H, opts.std, opts.uniform));
  }

  async read(): Promise<Float32Array> {
    return this.ctx.readF32(this.weight);
  }

  /**
   * The rewards of token sequences (unpadded; batched and right-padded here), read back. Runs the model's
   * current adapter.
   */
  async score(model: CausalLM, sequences: readonly (readonly number[])[], padTokenId = 0): Promise<Float32Array> {
    const ctx = this.ctx;
    const T = Math.max(...sequences.map((s) => s.length));
    const ids = sequences.map((s) => [...s, ...new Array<number>(T - s.length).fill(padTokenId)]);
    const mask = sequences.map((s) => [...new Array<number>(s.length).fill(1), ...new Array<number>(T - s.length).fill(0)]);
    const batch = uploadBatch(ctx, ids, mask);
    const acts = model.forward(batch, { logits: 'none', saveForBackward: false });
    const rows = ctx.upload([sequences.length], lastTokenRows(sequences.map((s) => s.length), T), 'u32', { label: 'last-token rows' });
    const out = ctx.empty([sequences.length], 'f32', { label: 'rewards' });
    try {
      rewardForward(ctx, out, acts.hidden, rows, this.weight);
      return await ctx.readF32(out);
    } finally {
      for (const t of [rows, out]) t.release();
      acts.release();
      releaseBatch(batch);
    }
  }

  release(): void {
    this.weight.release();
  }
}

// ---- sequence-classification folders ------------------------------------------------------------------------

/** The sequence-classification architecture of a causal LM architecture (LlamaForCausalLM → LlamaForSequenceClassification). */
export function sequenceClassificationArchitecture(causal: string): string {
  if (causal === 'GPT2LMHeadModel') return 'GPT2ForSequenceClassification';
  if (causal.endsWith('ForCausalLM')) return `${causal.slice(0, -'ForCausalLM'.length)}ForSequenceClassification`;
  throw new Error(`There is no sequence-classification architecture for ${causal}`);
}

/** The causal LM architecture of a sequence-classification one; undefined when `arch` is not one. */
export function causalArchitecture(arch: string): string | undefined {
  if (arch === 'GPT2ForSequenceClassification') return 'GPT2LMHeadModel';
  if (arch.endsWith('ForSequenceClassification')) return `${arch.slice(0, -'ForSequenceClassification'.length)}ForCausalLM`;
  return undefined;
}

export interface LoadedRewardModel {
  /** The decoder (loaded as its causal LM; the lm_head is tied to the embedding and never run). */
  lm: LoadedModel;
  head: RewardHead;
  /** config.json's pad_token_id (or the tokenizer's pad). */
  padTokenId: number;
  /** The folder's config.json. */
  config: Record<string, unknown>;
  dispose(): void;
}

/**
 * Loads a sequence-classification folder with num_labels 1 (a reward model Graft or transformers wrote):
 * config.json, the weights with score.weight [1, H], the tokenizer. Throws ModelError when the folder is not
 * one.
 */
export async function loadRewardModel(ctx: GpuContext, source: ModelSource, opts: LoadOptions = {}): Promise<LoadedRewardModel> {
  const config = await readJson(source, 'config.json', true, 'every model folder needs one');
  const archs = Array.isArray(config.architectures) ? config.architectures.map(String) : [];
  const causal = archs.length ? causalArchitecture(archs[0]!) : undefined;
  if (!causal) {
    throw new ModelError(
      'bad-file',
      `${source.name} is not a reward model: its config.json names ${archs[0] ?? 'no architecture'}, not a ...ForSequenceClassification model (graft train --stage rm writes one)`,
      { file: 'config.json' },
    );
  }
  const labels = config.num_labels ?? (config.id2label && typeof config.id2label === 'object' ? Object.keys(config.id2label).length : 1);
  if (labels !== 1) throw new ModelError('bad-file', `${source.name} has ${String(labels)} labels; a reward model has num_labels 1`, { file: 'config.json' });
  // The files are read once: the weights serve both the head and the decoder.
  const cache = new Map<string, Uint8Array | undefined>();
  const cached: ModelSource = {
    name: source.name,
    async readFile(path) {
      if (path === 'config.json') {
        const c = { ...config, architectures: [causal], tie_word_embeddings: true };
        return new TextEncoder().encode(JSON.stringify(c));
      }
      if (!cache.has(path)) cache.set(path, await source.readFile(path));
      return cache.get(path);
    },
  };
  const weights = await SafetensorsWeights.read(cached);
  let head: RewardHead;
  try {
    if (!weights.has(SCORE_WEIGHT)) throw new ModelError('bad-file', `${source.name} has no ${SCORE_WEIGHT} tensor: it is not a reward model`);
    const info = weights.info(SCORE_WEIGHT);
    if (info.shape.length !== 2 || info.shape[0] !== 1) throw new ModelError('bad-file', `${source.name}: ${SCORE_WEIGHT} is [${info.shape.join(', ')}], not [1, hidden]`);
    head = RewardHead.fromWeights(ctx, Float32Array.from(weights.float32(SCORE_WEIGHT)));
  } finally {
    weights.release();
  }
  let lm: LoadedModel;
  try {
    lm = await loadModel(ctx, cached, opts);
  } catch (e) {
    head.release();
    throw e;
  } finally {
    cache.clear();
  }
  if (head.hiddenSize !== lm.config.hiddenSize) {
    head.release();
    lm.dispose();
    throw new ModelError('bad-file', `${source.name}: ${SCORE_WEIGHT} has ${head.hiddenSize} columns, the model's hidden size is ${lm.config.hiddenSize}`);
  }
  const pad = typeof config.pad_token_id === 'number' ? config.pad_token_id : (lm.tokenizer.padTokenId ?? lm.tokenizer.eosTokenIds[0] ?? 0);
  return {
    lm,
    head,
    padTokenId: pad,
    config,
    dispose() {
      head.release();
      lm.dispose();
    },
  };
}
