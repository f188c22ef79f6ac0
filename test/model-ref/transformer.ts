// Float64 CPU reference models: the logits of Llama, Qwen2, Qwen3, Gemma 3 and GPT-2 for a batch of token ids (with a
// LoRA adapter or prompt tuning's virtual tokens when asked), composed from the op references, to check the
// GPU model against (test/model/architectures.test.ts).
// Slow and plain on purpose; use it on tiny models only.
import { addRef } from '../../src/engine/ref/elementwise';
import { embeddingForwardRef } from '../../src/engine/ref/embedding';
import { matmulNTRef } from '../../src/engine/ref/matmul';
import { ropeInvFreq } from '../../src/engine/ops/rope';
import type { ModelConfig } from '../../src/model/config';
import type { WeightSource } from '../../src/model/params';
import { gpt2LayerRef } from './gpt2';
import { normRef, type RefBottleneck, type RefLora, type RefWeights } from './layers';
import { llamaLayerRef, type SequenceShape } from './llama';
import { gemma3LayerRef, gemmaNormRef } from './gemma3';

export type { RefBottleneck, RefLora, RefWeights } from './layers';

/** Weights by Hugging Face name from a WeightSource (GPT-2 names may lack the `transformer.` prefix there). */
export function refWeights(source: WeightSource): RefWeights {
  const names = new Set(source.names);
  const cache = new Map<string, Float64Array>();
  return (name) => {
    let found = cache.get(name);
    if (found) return found;
    const bare = name.startsWith('transformer.') ? name.slice('transformer.'.length) : name;
    const stored = names.has(name) ? name : names.has(bare) ? bare : undefined;
    if (stored === undefined) throw new Error(`reference model: no weight ${name}`);
    found = Float64Array.from(source.float32(stored));
    cache.set(name, found);
    return found;
  };
}

/**
 * logits [B·T, V] for ids [B, T] (rows of equal length; attentionMask 0 marks padding keys). Positions count
 * from 0 in each row. With lora.dropout, PEFT's lora_dropout as CausalLM.forward's loraDropout applies it.
 * With `bottleneck`, bottleneck adapters after the attention and/or MLP outputs (bottleneck.ts).
 * With `prompt` (prompt tuning's virtual-token embeddings [n, H]), PeftModelForCausalLM's forward: the rows
 * are cat(prompt, token embeddings) of n + T positions, positions 0 .. n + T − 1, mask 1 at the virtual
 * positions; the logits returned are those of the T real positions of each row.
 */
export function referenceLogits(
  cfg: ModelConfig,
  w: RefWeights,
  ids: number[][],
  opts: {
    attentionMask?: number[][];
    lora?: RefLora;
    bottleneck?: RefBottleneck;
    prompt?: Float64Array;
    /** Gemma's embedding scale and the rounding of its products (default: cfg.embedScale, no rounding). */
    embedScale?: { scale: number; round: (v: number) => number };
  } = {},
): Float64Array {
  const B = ids.length;
  const Treal = ids[0]!.length;
  const { hiddenSize: H, vocabSize: V } = cfg;
  const n = opts.prompt ? opts.prompt.length / H : 0;
  const T = n + Treal;
  const N = B * T;
  const virtual = (row: number[], fill: number) => [...new Array<number>(n).fill(fill), ...row];
  const s: SequenceShape = {
    B,
    T,
    positions: Array.from({ length: N }, (_, i) => i % T),
    keyMask: opts.attentionMask ? opts.attentionMask.flatMap((r) => virtual(r, 1)) : null,
  };
  const gpt2 = cfg.architecture === 'GPT2LMHeadModel';
  const gemma = cfg.architecture === 'Gemma3ForCausalLM';
  // Gemma scales the token embeddings by √hidden (in the weights' dtype: `embedScale` gives it and the rounding).
  const es = opts.embedScale ?? { scale: cfg.embedScale ?? 1, round: (v: number) => v };
  let x = embeddingForwardRef(ids.flatMap((r) => virtual(r, 0)), w(gpt2 ? 'transformer.wte.weight' : 'model.embed_tokens.weight'), V, H, es.scale, es.round);
  for (let b = 0; b < B && opts.prompt; b++) x.set(opts.prompt, b * T * H);
  if (gpt2) x = addRef(x, embeddingForwardRef(s.positions, w('transformer.wpe.weight'), cfg.maxPositions, H));
  const invFreq = gpt2 ? new Float64Array() : ropeInvFreq(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling);
  const invFreqLocal = cfg.ropeLocalTheta !== undefined ? ropeInvFreq(cfg.headDim, cfg.ropeLocalTheta) : invFreq;
  // LoRA dropout: the adapted linears draw consecutive counter ranges from offset, in the order they run.
  const d = opts.lora?.dropout;
  const lora = d ? { ...opts.lora!, dropout: { ...d, cursor: { next: d.offset } } } : opts.lora;
  for (let l = 0; l < cfg.numLayers; l++) {
    x = gpt2
      ? gpt2LayerRef(cfg, w, l, x, s, lora, opts.bottleneck)
      : gemma
        ? gemma3LayerRef(cfg, w, l, x, s, invFreq, invFreqLocal, lora, opts.bottleneck)
        : llamaLayerRef(cfg, w, l, x, s, invFreq, lora, opts.bottleneck);
  }
  const h = gemma ? gemmaNormRef(cfg, w('model.norm.weight'), x, H) : normRef(cfg, w, gpt2 ? 'transformer.ln_f' : 'model.norm', x, H);
  const head = cfg.tieWordEmbeddings ? (gpt2 ? 'transformer.wte.weight' : 'model.embed_tokens.weight') : 'lm_head.weight';
  const logits = matmulNTRef(h, w(head), 1, N, V, H);
  if (n === 0) return logits;
  const real = new Float64Array(B * Treal * V);
  for (let b = 0; b < B; b++) real.set(logits.subarray((b * T + n) * V, (b + 1) * T * V), b * Treal * V);
  return real;
}
