// Conversations → token ids and labels (the prompt masked, every assistant turn trained), truncated and padded into
// batches; the rule: docs/data.md ("Encoding").
import type { ChatTemplate } from '../model/chat-template';
import type { Tokenizer } from '../model/tokenizer';
import { templateMessages } from './normalize';
import { shuffled, splitTrainVal } from './shuffle';
import { describeSource, type Conversation, type DatasetProblem, type RecordSource } from './types';

export const IGNORE_INDEX = -100;

/** A record that cannot be encoded under the rule. The message names the record. */
export class EncodeError extends Error {
  readonly code = 'encode';
  readonly source: RecordSource | undefined;
  constructor(message: string, source?: RecordSource) {
    super(message);
    this.name = 'EncodeError';
    this.source = source;
  }
}

/** What encoding needs of a tokenizer and a template (tests may pass small stand-ins). */
export type TokenEncoder = Pick<Tokenizer, 'encode'>;
export type ChatRenderer = Pick<ChatTemplate, 'render'>;

export interface SftEncodeOptions {
  /** `cutoff_len`: the longest sequence kept, cut turn by turn as LLaMA-Factory cuts it ({@link encodeConversation}). */
  cutoffLen: number;
  /** `train_on_prompt`: label the prompts too (every token is a target). Default false. */
  trainOnPrompt?: boolean;
  /** `mask_history`: in a multi-turn conversation train on the last answer only. Default false. */
  maskHistory?: boolean;
}

export interface EncodeDatasetOptions extends SftEncodeOptions {
  /**
   * Leave out (and report in `problems`) examples with no target token left after truncation, i.e. whose
   * prompt alone fills cutoff_len. Default false: the encoding rule of the references keeps them (all labels
   * -100; they add nothing to the loss), and `stats.examplesWithoutTargets` counts them so the app can warn.
   */
  dropExamplesWithoutTargets?: boolean;
}

export interface EncodedExample {
  inputIds: number[];
  labels: number[];
  /** The example was longer than cutoff_len before truncation. */
  truncated: boolean;
  /** Tokens before truncation. */
  fullLength: number;
  source?: RecordSource;
  /** How many examples a packed sequence holds (1 when not packed). */
  packed?: number;
  /** Multi-task training: the task of the record (Conversation.task). */
  task?: string;
}

const isPrefix = (a: readonly number[], b: readonly number[]) => a.length <= b.length && a.every((x, i) => x === b[i]);

export function countTargets(labels: readonly number[]): number {
  let n = 0;
  for (const l of labels) if (l !== IGNORE_INDEX) n++;
  return n;
}

/**
 * LLaMA-Factory's infer_seqlen (data/processor/processor_utils.py): how many tokens of a prompt (source) and of its
 * answer (target) are kept within `cutoffLen`. A short answer is kept whole and the prompt cut; a short prompt is
 * kept whole and the answer cut; when both are long the budget is split in proportion to their lengths.
 */
export function inferSeqlen(sourceLen: number, targetLen: number, cutoffLen: number): [number, number] {
  let maxTarget: number;
  if (targetLen * 2 < cutoffLen) maxTarget = cutoffLen;
  else if (sourceLen * 2 < cutoffLen) maxTarget = cutoffLen - sourceLen;
  else maxTarget = Math.trunc(cutoffLen * (targetLen / (sourceLen + targetLen)));
  const newTarget = Math.min(maxTarget, targetLen);
  const maxSource = Math.max(cutoffLen - newTarget, 0);
  return [Math.min(maxSource, sourceLen), newTarget];
}

/** One turn of a conversation in tokens: what comes before its answer (source) and the answer (target). */
export interface EncodedTurn {
  source: number[];
  target: number[];
}

/**
 * A conversation's turns in tokens, before any truncation: for turn k the conversation up to its user message is
 * rendered with the generation prompt and up to its answer without; each rendering must extend the previous one
 * token for token. Throws {@link EncodeError} (naming the record) when it does not.
 */
export function encodeTurns(c: Conversation, tokenizer: TokenEncoder, template: ChatRenderer): EncodedTurn[] {
  const where = describeSource(c.source);
  const turns = c.messages.length / 2;
  if (!Number.isInteger(turns) || turns < 1 || c.messages.some((m, i) => m.role !== (i % 2 === 0 ? 'user' : 'assistant'))) {
    throw new EncodeError(`${where}: the turns must alternate user, assistant and end with an answer`, c.source);
  }
  const out: EncodedTurn[] = [];
  let ids: number[] = [];
  for (let k = 0; k < turns; k++) {
    const prompt = tokenizer.encode(template.render(templateMessages(c, 2 * k + 1), { addGenerationPrompt: true }));
    const full = tokenizer.encode(template.render(templateMessages(c, 2 * k + 2), { addGenerationPrompt: false }));
    if (!isPrefix(ids, prompt)) {
      throw new EncodeError(
        `${where}: the chat template renders the earlier turns differently once turn ${k + 1} is added, so the answers cannot be located in the tokens; this template cannot be used for multi-turn training`,
        c.source,
      );
    }
    if (!isPrefix(prompt, full)) {
      throw new EncodeError(
        `${where}: the tokens of the prompt (rendered with add_generation_prompt) are not a prefix of the tokens of the prompt with its answer${turns > 1 ? ` (turn ${k + 1})` : ''}, so the answer cannot be located; the chat template or tokenizer changes the text before the answer`,
        c.source,
      );
    }
    out.push({ source: prompt.slice(ids.length), target: full.slice(prompt.length) });
    ids = full;
  }
  return out;
}

/**
 * Encodes one conversation, cut to cutoff_len as LLaMA-Factory's supervised processor cuts it: turn by turn
 * (the last turn first with mask_history), each turn's prompt and answer sharing what is left of the budget by
 * {@link inferSeqlen}; a turn that finds the budget spent is left out. Throws {@link EncodeError} (naming the
 * record) when the rule cannot be applied.
 */
export function encodeConversation(c: Conversation, tokenizer: TokenEncoder, template: ChatRenderer, options: SftEncodeOptions): EncodedExample {
  const { cutoffLen } = options;
  if (!Number.isInteger(cutoffLen) || cutoffLen < 1) throw new Error(`cutoff_len must be a positive whole number, got ${cutoffLen}`);
  const turns = encodeTurns(c, tokenizer, template);
  const maskHistory = options.maskHistory === true;
  const trainOnPrompt = options.trainOnPrompt === true;
  const kept: { ids: number[]; labels: number[] }[] = [];
  let total = 0;
  let fullLength = 0;
  for (const t of turns) fullLength += t.source.length + t.target.length;
  const order = turns.map((_, k) => k);
  if (maskHistory) order.reverse(); // the last turns have priority
  for (let j = 0; j < order.length; j++) {
    if (total >= cutoffLen) break;
    const k = order[j]!;
    const [sourceLen, targetLen] = inferSeqlen(turns[k]!.source.length, turns[k]!.target.length, cutoffLen - total);
    const source = turns[k]!.source.slice(0, sourceLen);
    const target = turns[k]!.target.slice(0, targetLen);
    total += sourceLen + targetLen;
    const sourceLabels = trainOnPrompt ? source : new Array<number>(sourceLen).fill(IGNORE_INDEX);
    const targetLabels = maskHistory && j !== 0 ? new Array<number>(targetLen).fill(IGNORE_INDEX) : target;
    kept[k] = { ids: [...source, ...target], labels: [...sourceLabels, ...targetLabels] };
  }
  const inputIds: number[] = [];
  const labels: number[] = [];
  for (const part of kept) {
    if (!part) continue;
    inputIds.push(...part.ids);
    labels.push(...part.labels);
  }
  const example: EncodedExample = { inputIds, labels, truncated: fullLength > inputIds.length, fullLength };
  if (c.source) example.source = c.source;
  if (c.task !== undefined) example.task = c.task;
  return example;
}

export interface TokenStats {
  /** Examples encoded (packed: sequences). */
  examples: number;
  /** Tokens after truncation, padding excluded. */
  tokens: number;
  /** Labelled tokens (the loss is averaged over these). */
  targetTokens: number;
  /** Examples longer than cutoff_len that lost their end. */
  truncatedExamples: number;
  /** Examples whose prompt fills cutoff_len, leaving no target token. */
  examplesWithoutTargets: number;
  /** Longest example before truncation, in tokens. */
  longest: number;
}

export function tokenStats(examples: readonly EncodedExample[]): TokenStats {
  const s: TokenStats = { examples: examples.length, tokens: 0, targetTokens: 0, truncatedExamples: 0, examplesWithoutTargets: 0, longest: 0 };
  for (const e of examples) {
    const targets = countTargets(e.labels);
    s.tokens += e.inputIds.length;
    s.targetTokens += targets;
    if (targets === 0) s.examplesWithoutTargets++;
    if (e.truncated) s.truncatedExamples++;
    s.longest = Math.max(s.longest, e.fullLength);
  }
  return s;
}

export interface EncodedDataset {
  examples: EncodedExample[];
  /** The conversation each example was encoded from (the same order as `examples`). */
  records: Conversation[];
  /** Records that could not be encoded (or, when asked, kept no target token); they are left out. */
  problems: DatasetProblem[];
  stats: TokenStats;
}

/**
 * Encodes every conversation. A record the rule cannot handle is reported in `problems` and left out; so is one
 * whose answer lies wholly beyond cutoff_len when `dropExamplesWithoutTargets` is set. A template error that is
 * not about one record (a broken or runaway template) is thrown.
 */
export function encodeDataset(
  records: readonly Conversation[],
  tokenizer: TokenEncoder,
  template: ChatRenderer,
  options: EncodeDatasetOptions,
): EncodedDataset {
  const examples: EncodedExample[] = [];
  const kept: Conversation[] = [];
  const problems: DatasetProblem[] = [];
  for (const c of records) {
    let e: EncodedExample;
    try {
      e = encodeConversation(c, tokenizer, template, options);
    } catch (err) {
      if (err instanceof EncodeError) {
        problems.push({ ...c.source, reason: err.message });
        continue;
      }
      throw err;
    }
    if (options.dropExamplesWithoutTargets === true && countTargets(e.labels) === 0) {
      problems.push({
        ...c.source,
        reason: `${describeSource(c.source)}: the prompt alone fills cutoff_len (${options.cutoffLen} tokens), so no answer token is left to learn from; raise cutoff_len or shorten the prompt`,
      });
      continue;
    }
    examples.push(e);
    kept.push(c);
  }
  return { examples, records: kept, problems, stats: tokenStats(examples) };
}

/** LLaMA-Factory packs the examples of each preprocessing batch (its preprocessing_batch_size, 1000) on their own. */
export const PACKING_CHUNK = 1000;

/**
 * Packing (LLaMA-Factory's `packing: true`, its PackedSupervisedDatasetProcessor): several examples share one
 * sequence of at most `cutoffLen` tokens, so that little compute goes to padding. The examples of each chunk of
 * {@link PACKING_CHUNK} are binned by its greedy knapsack: each new sequence repeatedly takes the longest remaining
 * example that still fits, of equal lengths the one that came last (its `length2indexes[length].pop()`). Examples
 * keep their labels, so the loss is still over answer tokens only.
 *
 * Attention is NOT separated between the examples of a sequence (LLaMA-Factory's `packing` without
 * `neat_packing`), and positions count 0..T-1 through the whole sequence, where LLaMA-Factory restarts its
 * position_ids at each packed example: the same tokens, slightly different numbers (the LLaMA-Factory export says
 * so). Leave packing off when examples must not see each other.
 */
export function packExamples(examples: readonly EncodedExample[], cutoffLen: number, chunk = PACKING_CHUNK): EncodedExample[] {
  const out: EncodedExample[] = [];
  for (let start = 0; start < examples.length; start += chunk) out.push(...packChunk(examples.slice(start, start + chunk), cutoffLen));
  return out;
}

function packChunk(examples: readonly EncodedExample[], cutoffLen: number): EncodedExample[] {
  // Buckets by length; within a length, the original order (taken from the end).
  const buckets: EncodedExample[][] = Array.from({ length: cutoffLen + 1 }, () => []);
  for (const e of examples) {
    if (e.inputIds.length > cutoffLen) throw new Error(`packExamples: an example has ${e.inputIds.length} tokens, more than cutoff_len ${cutoffLen}`);
    if (e.inputIds.length > 0) buckets[e.inputIds.length]!.push(e);
  }
  let left = examples.filter((e) => e.inputIds.length > 0).length;
  const out: EncodedExample[] = [];
  while (left > 0) {
    let room = cutoffLen;
    const ids: number[] = [];
    const labels: number[] = [];
    let count = 0;
    let truncated = false;
    for (let len = room; len > 0; ) {
      const b = buckets[len]!;
      if (b.length > 0) {
        const e = b.pop()!;
        ids.push(...e.inputIds);
        labels.push(...e.labels);
        truncated ||= e.truncated;
        count++;
        left--;
        room -= len;
        len = Math.min(len, room);
      } else {
        len--;
      }
    }
    out.push({ inputIds: ids, labels, truncated, fullLength: ids.length, packed: count });
  }
  return out;
}

/** A padded batch, one row per example: what the model's `uploadBatch` and the SFT loss take. */
export interface Batch {
  inputIds: number[][];
  labels: number[][];
  attentionMask: number[][];
}

export interface CollateOptions {
  padTokenId: number;
  /** Pad every row to this length (it must fit the longest); default: the longest row of the batch. */
  padTo?: number;
}

/** Right-pads examples into one batch: pad id, label -100, attention mask 0. */
export function collate(examples: readonly Pick<EncodedExample, 'inputIds' | 'labels'>[], options: CollateOptions): Batch {
  const longest = examples.reduce((m, e) => Math.max(m, e.inputIds.length), 0);
  const T = options.padTo ?? longest;
  if (T < longest) throw new Error(`collate: padTo ${T} is shorter than the longest example (${longest} tokens)`);
  const batch: Batch = { inputIds: [], labels: [], attentionMask: [] };
  for (const e of examples) {
    if (e.labels.length !== e.inputIds.length) throw new Error('collate: an example has different numbers of ids and labels');
    const pad = T - e.inputIds.length;
    batch.inputIds.push([...e.inputIds, ...new Array<number>(pad).fill(options.padTokenId)]);
    batch.labels.push([...e.labels, ...new Array<number>(pad).fill(IGNORE_INDEX)]);
    batch.attentionMask.push([...new Array<number>(e.inputIds.length).fill(1), ...new Array<number>(pad).fill(0)]);
  }
  return batch;
}

/** Consecutive batches of `batchSize` examples (the last may be smaller unless `dropLast`). */
export function makeBatches(
  examples: readonly EncodedExample[],
  batchSize: number,
  options: CollateOptions & { dropLast?: boolean },
): Batch[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a positive whole number, got ${batchSize}`);
  const out: Batch[] = [];
  for (let i = 0; i < examples.length; i += batchSize) {
    const chunk = examples.slice(i, i + batchSize);
    if (chunk.length < batchSize && options.dropLast === true) break;
    out.push(collate(chunk, options));
  }
  return out;
}

export interface SftDataOptions extends EncodeDatasetOptions {
  /** `val_size`: a fraction in [0, 1) or a number of examples held out for evaluation. Default 0. */
  valSize?: number;
  /** Seed of the shuffle and of the split (LLaMA-Factory's `seed`, default 42). */
  seed?: number;
  /** Shuffle the training examples (default true). The split always shuffles. */
  shuffle?: boolean;
  /** `packing`: see {@link packExamples}. Default false. */
  packing?: boolean;
}

export interface SftData {
  /** Training sequences: one example each, or several when packed. */
  train: EncodedExample[];
  val: EncodedExample[];
  /** The conversations of the validation examples, in their order (do_predict answers their prompts). */
  valRecords: Conversation[];
  problems: DatasetProblem[];
  /** Of the training examples, counted before packing. */
  stats: TokenStats;
  valStats: TokenStats;
}

/**
 * Records → training and validation examples: encode, split off `val_size` with the seed, shuffle the rest,
 * pack when asked.
 */
export function prepareSftData(
  records: readonly Conversation[],
  tokenizer: TokenEncoder,
  template: ChatRenderer,
  options: SftDataOptions,
): SftData {
  const seed = options.seed ?? 42;
  if (options.packing === true && records.some((r) => r.task !== undefined)) {
    throw new Error('packing puts examples of different tasks into one sequence, so multi-task training (records with a "task") needs packing: false');
  }
  const encoded = encodeDataset(records, tokenizer, template, options);
  const { examples, problems } = encoded;
  const recordOf = new Map(examples.map((e, i) => [e, encoded.records[i]!]));
  let { train, val } = splitTrainVal(examples, options.valSize ?? 0, seed);
  const valRecords = val.map((e) => recordOf.get(e)!);
  if (options.valSize === undefined || options.valSize === 0) train = options.shuffle === false ? examples.slice() : shuffled(examples, seed);
  else if (options.shuffle === false) {
    // the split shuffled; restore file order within each part
    const order = new Map(examples.map((e, i) => [e, i]));
    train.sort((a, b) => order.get(a)! - order.get(b)!);
  }
  const stats = tokenStats(train);
  const valStats = tokenStats(val);
  if (options.packing === true) {
    train = packExamples(train, options.cutoffLen);
    val = packExamples(val, options.cutoffLen);
  }
  return { train, val, valRecords, problems, stats, valStats };
}
