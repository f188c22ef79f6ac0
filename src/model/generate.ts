// Text generation: prefill the prompt through the model's KV cache, then one token at a time, choosing each next
// token on the CPU (sampling.ts) and streaming the text as it becomes complete (the tokenizer's StreamDecoder
// never splits a multi-byte character). Stops at an end-of-sequence id, after maxNewTokens, or on abort.
import { ModelError } from './source';
import { SeededRandom, selectToken, type SamplingSettings } from './sampling';
import type { Tokenizer } from './tokenizer';

export interface GenerateOptions {
  /** Tokens to generate at most (the eos token, when generated, counts as one). */
  maxNewTokens: number;
  /** Take the most likely token each step. Default false (sampling), unless `temperature` is 0. */
  greedy?: boolean;
  /**
   * HF semantics and order: repetition penalty, then temperature, top-k, top-p. Defaults come from the model's
   * generation_config.json, else transformers' defaults: temperature 1, topK 50, topP 1, repetitionPenalty 1.
   * topK 0 and topP 1 disable those filters.
   */
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  /** Seed of the sampler (SeededRandom): the same seed, prompt and settings give the same tokens. Default: random. */
  seed?: number;
  /** Stop at an eos id (tokenizer_config's eos_token and generation_config's eos_token_id). Default true. */
  stopAtEos?: boolean;
  /** Name of a loaded adapter, or null/undefined for the base model; applies to this call only. */
  adapter?: string | null;
  signal?: AbortSignal;
  /** Leave special tokens (`<|im_end|>`) out of `text` and the streamed deltas. Default true. */
  skipSpecialTokens?: boolean;
}

export interface GenerateResult {
  promptIds: number[];
  /** The generated ids, an eos that ended generation included. */
  newIds: number[];
  /** The text of newIds (special tokens skipped unless asked otherwise); equals the streamed deltas joined. */
  text: string;
  stopReason: 'eos' | 'length' | 'aborted';
}

/** The sampling defaults of a model, from its generation_config.json. */
export interface GenerationDefaults {
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
}

/** The part of the model core that generation uses (CausalLM satisfies it). */
export interface CachedForwardModel<Cache> {
  createKvCache(maxTokens: number): Cache;
  /** Appends `ids` to the cache and returns the logits [V] of the last position. */
  forwardCached(ids: number[], cache: Cache): Promise<Float32Array>;
}

export const HF_DEFAULTS: Required<GenerationDefaults> = { temperature: 1, topK: 50, topP: 1, repetitionPenalty: 1 };

/** Reads the sampling defaults out of generation_config.json (fields that are absent or not numbers are skipped). */
export function generationDefaults(genConfig: Record<string, unknown> | undefined): GenerationDefaults {
  const out: GenerationDefaults = {};
  if (!genConfig) return out;
  const num = (k: string) => (typeof genConfig[k] === 'number' && Number.isFinite(genConfig[k]) ? (genConfig[k] as number) : undefined);
  const t = num('temperature');
  const k = num('top_k');
  const p = num('top_p');
  const r = num('repetition_penalty');
  if (t !== undefined) out.temperature = t;
  if (k !== undefined) out.topK = k;
  if (p !== undefined) out.topP = p;
  if (r !== undefined) out.repetitionPenalty = r;
  return out;
}

/** Options + model defaults → the sampler's settings, checked. Throws ModelError 'bad-options'. */
export function resolveSampling(opts: GenerateOptions, defaults: GenerationDefaults = {}): SamplingSettings {
  const temperature = opts.temperature ?? defaults.temperature ?? HF_DEFAULTS.temperature;
  const topK = opts.topK ?? defaults.topK ?? HF_DEFAULTS.topK;
  const topP = opts.topP ?? defaults.topP ?? HF_DEFAULTS.topP;
  const repetitionPenalty = opts.repetitionPenalty ?? defaults.repetitionPenalty ?? HF_DEFAULTS.repetitionPenalty;
  const bad = (what: string) => new ModelError('bad-options', `Generation setting ${what}.`);
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw bad(`temperature must be 0 or more, not ${temperature}`);
  if (!Number.isInteger(topK) || topK < 0) throw bad(`topK must be a whole number, 0 or more (0 turns it off), not ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw bad(`topP must be above 0 and at most 1 (1 turns it off), not ${topP}`);
  if (!(repetitionPenalty > 0) || !Number.isFinite(repetitionPenalty)) throw bad(`repetitionPenalty must be above 0 (1 turns it off), not ${repetitionPenalty}`);
  const greedy = opts.greedy ?? temperature === 0;
  return { greedy: greedy || temperature === 0, temperature: temperature === 0 ? 1 : temperature, topK, topP, repetitionPenalty };
}

export interface GenerateArgs<Cache> {
  model: CachedForwardModel<Cache>;
  tokenizer: Tokenizer;
  /** Positions the model can attend over (the RoPE table / config max_position_embeddings). */
  maxPositions: number;
  defaults?: GenerationDefaults;
  /** Frees the KV cache when generation ends. */
  disposeCache?: (cache: Cache) => void;
}

/**
 * The generation loop. The KV cache is sized prompt + maxNewTokens; a request past `maxPositions` is refused
 * before any work with a ModelError 'context-length' that gives the numbers.
 */
export async function generateWith<Cache>(
  args: GenerateArgs<Cache>,
  promptIds: number[],
  opts: GenerateOptions,
  onToken?: (id: number, textDelta: string) => void,
): Promise<GenerateResult> {
  const { model, tokenizer, maxPositions } = args;
  const settings = resolveSampling(opts, args.defaults);
  const maxNew = opts.maxNewTokens;
  if (!Number.isInteger(maxNew) || maxNew < 0) {
    throw new ModelError('bad-options', `maxNewTokens must be a whole number, 0 or more, not ${maxNew}.`);
  }
  if (promptIds.length === 0) throw new ModelError('bad-options', 'The prompt is empty: give at least one token to continue from.');
  for (const id of promptIds) {
    if (!Number.isInteger(id) || id < 0) throw new ModelError('bad-options', `The prompt holds ${id}, which is not a token id.`);
  }
  const total = promptIds.length + maxNew;
  if (total > maxPositions) {
    throw new ModelError(
      'context-length',
      `The prompt (${promptIds.length} tokens) plus ${maxNew} new tokens is ${total} positions, more than the ${maxPositions} this model was loaded with. ` +
        'Shorten the conversation or ask for fewer new tokens.',
    );
  }
  const stopAtEos = opts.stopAtEos ?? true;
  const random = new SeededRandom(opts.seed ?? Math.floor(Math.random() * 2 ** 32));
  const decoder = tokenizer.streamDecoder({ skipSpecialTokens: opts.skipSpecialTokens ?? true });
  const newIds: number[] = [];
  const history = [...promptIds];
  let text = '';
  let stopReason: GenerateResult['stopReason'] | null = null;
  const aborted = () => opts.signal?.aborted === true;

  if (maxNew === 0 || aborted()) {
    return { promptIds: [...promptIds], newIds, text, stopReason: aborted() ? 'aborted' : 'length' };
  }
  const cache = model.createKvCache(total);
  try {
    let logits = await model.forwardCached([...promptIds], cache);
    for (;;) {
      // An abort stops at the next token boundary: no further forward pass, no token from one that was running.
      if (aborted()) {
        stopReason = 'aborted';
        break;
      }
      const id = selectToken(logits, history, settings, () => random.next());
      newIds.push(id);
      history.push(id);
      if (stopAtEos && tokenizer.isEos(id)) stopReason = 'eos';
      else if (newIds.length >= maxNew) stopReason = 'length';
      const last = stopReason !== null;
      // The last delta includes what the decoder held back (a character completed only by the end), so the
      // deltas join to `text` = decode(newIds). After an abort, a character cut in half is left out.
      const delta = decoder.next(newIds) + (last ? decoder.finish(newIds) : '');
      text += delta;
      onToken?.(id, delta);
      if (last || aborted()) break;
      logits = await model.forwardCached([id], cache);
    }
  } finally {
    args.disposeCache?.(cache);
  }
  return { promptIds: [...promptIds], newIds, text, stopReason: stopReason ?? 'aborted' };
}
