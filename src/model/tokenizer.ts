// The tokenizer of a Hugging Face model folder: `tokenizer.json` (+ `tokenizer_config.json`, and optionally
// `generation_config.json` for the end-of-sequence ids), read with `@huggingface/tokenizers`, the package that
// transformers.js is built on. This file adds what Graft needs around it: clear errors for files it cannot
// read, the special-token ids (bos, every eos, pad), decoding that tolerates empty and out-of-vocabulary ids,
// and a streaming decoder that never cuts a multi-byte UTF-8 character in half.
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { CodedError } from '../engine/errors';

/** A tokenizer file that cannot be read. The message names the file and what is wrong with it. */
export class TokenizerError extends CodedError<'tokenizer'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TokenizerError', 'tokenizer', message, options);
  }
}

/** The files a tokenizer is built from: parsed JSON objects, or their text / bytes. */
export interface TokenizerFiles {
  /** `tokenizer.json` */
  tokenizerJson: unknown;
  /** `tokenizer_config.json` (special tokens, `chat_template`); optional, as some repositories lack it. */
  tokenizerConfig?: unknown;
  /** `generation_config.json`: its `eos_token_id` (a number or a list) adds to the end-of-sequence ids. */
  generationConfig?: unknown;
}

export interface EncodeOptions {
  /**
   * Let the tokenizer's post-processor add its special tokens (e.g. a `<s>` in front). Default false: in Graft
   * the chat template writes every special token itself, and the encoding rule of the references says "no
   * special tokens are added by the tokenizer itself".
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (`<|im_end|>`, ...) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `"<s>"` or the `{"__type": "AddedToken", "content": "<s>", ...}` form older tokenizer_config files use. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

function readJson(v: unknown, file: string, required: boolean): Json | null {
  if (v === undefined || v === null) {
    if (required) throw new TokenizerError(`${file} is missing: the model folder needs one to tokenize text.`);
    return null;
  }
  let parsed = v;
  if (v instanceof Uint8Array || v instanceof ArrayBuffer) {
    try {
      parsed = new TextDecoder('utf-8', { fatal: true }).decode(v);
    } catch (cause) {
      throw new TokenizerError(`${file} is not UTF-8 text; the download may be damaged. Delete the model and download it again.`, { cause });
    }
  }
  if (typeof parsed === 'string') {
    try {
      parsed = JSON.parse(parsed);
    } catch (cause) {
      const detail = cause instanceof Error ? cause.message : String(cause);
      throw new TokenizerError(`${file} is not valid JSON (${detail}); the download may be damaged. Delete the model and download it again.`, { cause });
    }
  }
  if (!isObject(parsed)) throw new TokenizerError(`${file} must hold a JSON object, but holds ${Array.isArray(parsed) ? 'an array' : typeof parsed}.`);
  return parsed;
}

/** Checks what the package would otherwise fail on with an unhelpful TypeError, and fills optional keys. */
function checkTokenizerJson(tj: Json): Json {
  const model = tj.model;
  if (!isObject(model)) throw new TokenizerError('tokenizer.json has no "model" object; it is not a Hugging Face tokenizers file.');
  const type = model.type;
  if (type === 'BPE') {
    if (!isObject(model.vocab)) throw new TokenizerError('tokenizer.json: the BPE model has no "vocab" object.');
    const merges = model.merges;
    if (!Array.isArray(merges)) throw new TokenizerError('tokenizer.json: the BPE model has no "merges" list.');
    // Both forms that the Rust library writes: "a b" (before tokenizers 0.20) and ["a", "b"] (since).
    merges.forEach((m, i) => {
      const ok =
        (typeof m === 'string' && m.includes(' ')) ||
        (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string');
      if (!ok) throw new TokenizerError(`tokenizer.json: merge ${i} is ${JSON.stringify(m)}; expected "a b" or ["a", "b"].`);
    });
    if (merges.length > 0 && merges.some((m) => Array.isArray(m) !== Array.isArray(merges[0]))) {
      throw new TokenizerError('tokenizer.json: the merges mix the "a b" and ["a", "b"] forms.');
    }
  } else if (type === 'WordPiece' || type === 'Unigram') {
    if (model.vocab === undefined) throw new TokenizerError(`tokenizer.json: the ${type} model has no "vocab".`);
  } else if (type !== undefined) {
    throw new TokenizerError(`tokenizer.json: model type "${String(type)}" is not supported (BPE, WordPiece and Unigram are).`);
  }
  const addedTokens = tj.added_tokens ?? [];
  if (!Array.isArray(addedTokens)) throw new TokenizerError('tokenizer.json: "added_tokens" must be a list.');
  for (const t of addedTokens) {
    if (!isObject(t) || typeof t.content !== 'string' || typeof t.id !== 'number') {
      throw new TokenizerError(`tokenizer.json: added token ${JSON.stringify(t)} needs a string "content" and a number "id".`);
    }
  }
  // The package insists on these keys being present (null is fine), while files written by other tools may
  // leave them out.
  return {
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    ...tj,
    added_tokens: addedTokens,
  };
}

/** A copy of tokenizer_config.json with every special token as a plain string, as the package expects. */
function normaliseConfig(cfg: Json): Json {
  const out: Json = { ...cfg };
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
    if (key in out) {
      const c = tokenContent(out[key]);
      if (c === null) delete out[key];
      else out[key] = c;
    }
  }
  if (Array.isArray(out.additional_special_tokens)) {
    out.additional_special_tokens = out.additional_special_tokens.map(tokenContent).filter((t): t is string => t !== null);
  } else {
    delete out.additional_special_tokens;
  }
  return out;
}

function idList(v: unknown): number[] {
  if (typeof v === 'number' && Number.isInteger(v)) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number' && Number.isInteger(x));
  return [];
}

export class Tokenizer {
  /** tokenizer_config.json as read, special tokens as strings (the chat template reads it). */
  readonly config: Readonly<Json>;
  readonly bosToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosToken: string | null;
  /** Every id that ends generation: tokenizer_config's `eos_token`, then generation_config's `eos_token_id`(s). */
  readonly eosTokenIds: readonly number[];
  /** `pad_token`, else generation_config's `pad_token_id`, else the first eos id; null when there is none. */
  readonly padTokenId: number | null;
  /** One more than the highest token id (added tokens included). */
  readonly vocabSize: number;
  private readonly hf: HfTokenizer;
  private readonly specialIds: Set<number>;

  constructor(files: TokenizerFiles) {
    const tj = checkTokenizerJson(readJson(files.tokenizerJson, 'tokenizer.json', true)!);
    const cfg = normaliseConfig(readJson(files.tokenizerConfig, 'tokenizer_config.json', false) ?? {});
    const gen = readJson(files.generationConfig, 'generation_config.json', false) ?? {};
    try {
      this.hf = new HfTokenizer(tj, cfg);
    } catch (cause) {
      const detail = cause instanceof Error ? cause.message : String(cause);
      throw new TokenizerError(`tokenizer.json could not be loaded: ${detail}`, { cause });
    }
    this.config = cfg;

    let maxId = -1;
    for (const id of this.hf.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.specialIds = new Set();
    for (const t of tj.added_tokens as Json[]) if (t.special === true) this.specialIds.add(t.id as number);

    const idOf = (token: string | null): number | null => (token === null ? null : (this.hf.token_to_id(token) ?? null));
    const inVocab = (id: number) => id >= 0 && id < this.vocabSize;

    this.bosToken = tokenContent(cfg.bos_token);
    this.bosTokenId = idOf(this.bosToken) ?? idList(gen.bos_token_id).find(inVocab) ?? null;
    this.eosToken = tokenContent(cfg.eos_token);
    const eos: number[] = [];
    const eosId = idOf(this.eosToken);
    if (eosId !== null) eos.push(eosId);
    for (const id of idList(gen.eos_token_id)) if (inVocab(id) && !eos.includes(id)) eos.push(id);
    this.eosTokenIds = eos;
    if (this.eosToken === null && eos.length > 0) this.eosToken = this.hf.id_to_token(eos[0]!) ?? null;
    this.padTokenId = idOf(tokenContent(cfg.pad_token)) ?? idList(gen.pad_token_id).find(inVocab) ?? eos[0] ?? null;
  }

  /** Token ids of `text`. Special-token text such as `<|im_start|>` becomes its single id. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (text.length === 0) return [];
    return this.hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
  }

  /** The text of `ids`. Ids outside the vocabulary (a model's padded embedding rows) decode to nothing. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const known = ids.filter((id) => Number.isInteger(id) && id >= 0 && this.hf.id_to_token(id) !== undefined);
    if (known.length === 0) return '';
    return this.hf.decode(known, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** Whether `id` is one of tokenizer.json's special added tokens. */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  isEos(id: number): boolean {
    return this.eosTokenIds.includes(id);
  }

  /** A decoder for text that arrives one token at a time; see {@link StreamDecoder}. */
  streamDecoder(options: DecodeOptions = {}): StreamDecoder {
    return new StreamDecoder(this, options);
  }
}

/**
 * Turns a growing list of generated ids into text pieces, for showing tokens as they arrive.
 *
 * One character can span several byte-level tokens (a Chinese character is 3 UTF-8 bytes, often 2 tokens);
 * decoding a prefix that ends inside one gives U+FFFD. `next(ids)` is given all ids generated so far and returns
 * only the text that became complete since the previous call, holding back a trailing partial character. The
 * concatenation of every piece and `finish(ids)` equals `decode(ids)`. This is the offset scheme of Hugging
 * Face's text-generation-inference: decode a short window before the new ids too, so that decoders that treat the
 * first token specially (a Metaspace "▁" at the start) see the same context as a full decode would.
 */
export class StreamDecoder {
  private prefixOffset = 0;
  private readOffset = 0;
  /** After this many held-back ids the text is released even if it still ends in U+FFFD (a broken sequence). */
  static readonly MAX_HELD_IDS = 8;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly options: DecodeOptions = {},
  ) {}

  /** `ids`: every id generated so far (the same sequence, grown). Returns the newly completed text, maybe ''. */
  next(ids: readonly number[]): string {
    if (ids.length < this.readOffset) throw new Error('StreamDecoder.next: the id sequence got shorter; use a new decoder for a new sequence');
    const prefixText = this.tokenizer.decode(ids.slice(this.prefixOffset, this.readOffset), this.options);
    const newText = this.tokenizer.decode(ids.slice(this.prefixOffset), this.options);
    const held = ids.length - this.readOffset;
    if (newText.length > prefixText.length && (!newText.endsWith('\uFFFD') || held >= StreamDecoder.MAX_HELD_IDS)) {
      this.prefixOffset = this.readOffset;
      this.readOffset = ids.length;
      return newText.slice(prefixText.length);
    }
    return '';
  }

  /** The rest of the text once generation has ended, partial characters included (as U+FFFD). */
  finish(ids: readonly number[]): string {
    const prefixText = this.tokenizer.decode(ids.slice(this.prefixOffset, this.readOffset), this.options);
    const newText = this.tokenizer.decode(ids.slice(this.prefixOffset), this.options);
    this.prefixOffset = this.readOffset = ids.length;
    return newText.slice(prefixText.length);
  }
}
