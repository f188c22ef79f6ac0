// Float64 CPU reference models: the logits of Llama, Qwen2, Qwen3 and GPT-2 for a batch of token ids,
// composed from the op references, to check the GPU model against (test/model/architectures.test.ts).
// Slow and plain on purpose; use it on tiny models only.
import { addRef } from '../../engine/ref/elementwise';
import { embeddingForwardRef } from '../../engine/ref/embedding';
import { matmulNTRef } from '../../engine/ref/matmul';
import { ropeInvFreq } from '../../engine/ops/rope';
import type { ModelConfig } from '../config';
import type { WeightSource } from '../params';
import { gpt2LayerRef } from './gpt2';
import { normRef, type RefBottleneck, type RefLora, type RefWeights } from './layers';
import { llamaLayerRef, type SequenceShape } from './llama';

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
 */
export function referenceLogits(
  cfg: ModelConfig,
  w: RefWeights,
  ids: number[][],
  opts: { attentionMask?: number[][]; lora?: RefLora; bottleneck?: RefBottleneck } = {},
): Float64Array {
  const B = ids.length;
  const T = ids[0]!.length;
  const N = B * T;
  const { hiddenSize: H, vocabSize: V } = cfg;
  const s: SequenceShape = {
    B,
    T,
    positions: Array.from({ length: N }, (_, i) => i % T),
    keyMask: opts.attentionMask ? opts.attentionMask.flat() : null,
  };
  const gpt2 = cfg.architecture === 'GPT2LMHeadModel';
  let x = embeddingForwardRef(ids.flat(), w(gpt2 ? 'transformer.wte.weight' : 'model.embed_tokens.weight'), V, H);
  if (gpt2) x = addRef(x, embeddingForwardRef(s.positions, w('transformer.wpe.weight'), cfg.maxPositions, H));
  const invFreq = gpt2 ? new Float64Array() : ropeInvFreq(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling);
  // LoRA dropout: the adapted linears draw consecutive counter ranges from offset, in the order they run.
  const d = opts.lora?.dropout;
  const lora = d ? { ...opts.lora!, dropout: { ...d, cursor: { next: d.offset } } } : opts.lora;
  for (let l = 0; l < cfg.numLayers; l++) {
    x = gpt2 ? gpt2LayerRef(cfg, w, l, x, s, lora, opts.bottleneck) : llamaLayerRef(cfg, w, l, x, s, invFreq, lora, opts.bottleneck);
  }
  const h = normRef(cfg, w, gpt2 ? 'transformer.ln_f' : 'model.norm', x, H);
  const head = cfg.tieWordEmbeddings ? (gpt2 ? 'transformer.wte.weight' : 'model.embed_tokens.weight') : 'lm_head.weight';
  return matmulNTRef(h, w(head), 1, N, V, H);
}
