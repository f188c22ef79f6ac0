// Evaluate & Predict (LLaMA-Factory's do_predict with predict_with_generate): generate an answer to each held-out
// record's prompt and score it against the record's answer with LLaMA-Factory's BLEU-4 and ROUGE (src/eval/), into
// the files LLaMA-Factory writes: generated_predictions.jsonl ({prompt, predict, label} per line) and
// predict_results.json. `graft train --do_predict` runs it after training (run.ts), the app's Evaluate screen on
// its own (the worker's evaluate service). docs/evaluate.md.
import { encodeTurns, inferSeqlen } from '../data/encode';
import type { Conversation } from '../data/types';
import { describeSource } from '../data/types';
import { exampleScores, meanScores, type Segmenter, type SimilarityScores } from '../eval/metrics';
import type { LoadedModel } from '../model/load';
import { memorySource } from '../model/source';
import type { TrainSettings } from '../train/settings';
import { JobError } from './errors';

/** One line of generated_predictions.jsonl. */
export interface Prediction {
  /** The prompt as the model saw it: its tokens decoded with the special tokens (LLaMA-Factory's "prompt"). */
  prompt: string;
  /** The generated answer, special tokens skipped. */
  predict: string;
  /** The record's answer, cut as the prompt leaves room for it, special tokens skipped. */
  label: string;
}

export type PredictSettings = Pick<
  TrainSettings,
  'cutoff_len' | 'max_new_tokens' | 'do_sample' | 'temperature' | 'top_p' | 'top_k' | 'repetition_penalty' | 'seed' | 'per_device_eval_batch_size'
>;

export interface PredictOptions {
  /** Splits text into words for ROUGE (jieba): src/eval/jieba-node.ts in Node, the worker's in the browser. */
  segment: Segmenter;
  /** A loaded adapter's name, or null for the model as it is. */
  adapter?: string | null;
  onProgress?(done: number, total: number): void;
  signal?: { readonly aborted: boolean };
}

export interface PredictOutcome {
  predictions: Prediction[];
  /** Each prediction's scores (× 100, 4 decimals), in order. */
  scores: SimilarityScores[];
  /** predict_results.json's fields: predict_bleu-4, predict_rouge-1/2/l, predict_runtime, ...per_second. */
  metrics: Record<string, number>;
  /** Records that could not be turned into a prompt, with why. */
  skipped: { where: string; reason: string }[];
}

/**
 * A record as LLaMA-Factory's unsupervised processor encodes it for prediction: the prompt is every turn before
 * the last answer, rendered with the generation prompt, and the label the last answer; both cut to cutoff_len by
 * infer_seqlen.
 */
export function predictionExample(c: Conversation, lm: Pick<LoadedModel, 'tokenizer' | 'template'>, cutoffLen: number): { promptIds: number[]; labelIds: number[] } {
  const turns = encodeTurns(c, lm.tokenizer, lm.template);
  const prompt = turns.flatMap((t, k) => (k < turns.length - 1 ? [...t.source, ...t.target] : t.source));
  const label = turns[turns.length - 1]!.target;
  const [sourceLen, targetLen] = inferSeqlen(prompt.length, label.length, cutoffLen);
  return { promptIds: prompt.slice(0, sourceLen), labelIds: label.slice(0, targetLen) };
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));

/** Generates an answer for each record and scores the answers. Throws JobError when no record can be used. */
export async function predict(
  lm: Pick<LoadedModel, 'tokenizer' | 'template' | 'generate' | 'maxPositions'>,
  records: readonly Conversation[],
  s: PredictSettings,
  options: PredictOptions,
): Promise<PredictOutcome> {
  const predictions: Prediction[] = [];
  const skipped: PredictOutcome['skipped'] = [];
  let generated = 0;
  const start = performance.now();
  for (const [i, c] of records.entries()) {
    if (options.signal?.aborted) break;
    let ex: { promptIds: number[]; labelIds: number[] };
    try {
      ex = predictionExample(c, lm, s.cutoff_len);
    } catch (e) {
      skipped.push({ where: describeSource(c.source), reason: e instanceof Error ? e.message : String(e) });
      continue;
    }
    const room = lm.maxPositions - ex.promptIds.length;
    const result = await lm.generate(ex.promptIds, {
      maxNewTokens: Math.max(0, Math.min(s.max_new_tokens, room)),
      greedy: !s.do_sample,
      temperature: s.temperature,
      topP: s.top_p,
      topK: s.top_k,
      repetitionPenalty: s.repetition_penalty,
      seed: s.seed + i,
      adapter: options.adapter ?? null,
      skipSpecialTokens: true,
    });
    generated += result.newIds.length;
    predictions.push({
      prompt: lm.tokenizer.decode(ex.promptIds, { skipSpecialTokens: false }),
      predict: result.text,
      label: lm.tokenizer.decode(ex.labelIds, { skipSpecialTokens: true }),
    });
    options.onProgress?.(predictions.length + skipped.length, records.length);
  }
  if (predictions.length === 0 && !options.signal?.aborted) {
    throw new JobError('empty-dataset', `No record could be turned into a prompt to predict${skipped[0] ? ` (${skipped[0].where}: ${skipped[0].reason})` : ''}.`);
  }
  const seconds = (performance.now() - start) / 1000;
  const scores = predictions.map((p) => exampleScores(p.predict, p.label, options.segment));
  const mean = meanScores(scores);
  const steps = Math.ceil(predictions.length / s.per_device_eval_batch_size);
  const metrics: Record<string, number> = {
    'predict_bleu-4': mean['bleu-4'],
    'predict_rouge-1': mean['rouge-1'],
    'predict_rouge-2': mean['rouge-2'],
    'predict_rouge-l': mean['rouge-l'],
    predict_runtime: round(seconds, 4),
    predict_samples_per_second: round(predictions.length / seconds, 3),
    predict_steps_per_second: round(steps / seconds, 3),
    predict_tokens_per_second: round(generated / seconds, 3),
  };
  return { predictions, scores, metrics, skipped };
}

/** A float as Python's json.dumps writes it (40.0, 1e-05), so that the files read like LLaMA-Factory's. */
function pyFloat(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return `${x}.0`;
  if (x !== 0 && (Math.abs(x) < 1e-4 || Math.abs(x) >= 1e16)) {
    const [m, e] = x.toExponential().split('e') as [string, string];
    const sign = e.startsWith('-') ? '-' : '+';
    const digits = e.replace(/^[+-]/, '').padStart(2, '0');
    return `${m}e${sign}${digits}`;
  }
  return String(x);
}

const encoder = new TextEncoder();

/**
 * generated_predictions.jsonl and predict_results.json, byte for byte as LLaMA-Factory writes them
 * (json.dumps(..., ensure_ascii=False) per line; save_metrics' json.dump(indent=4, sort_keys=True)).
 */
export function predictionFiles(outcome: Pick<PredictOutcome, 'predictions' | 'metrics'>): Map<string, Uint8Array> {
  const lines = outcome.predictions.map((p) => `{"prompt": ${JSON.stringify(p.prompt)}, "predict": ${JSON.stringify(p.predict)}, "label": ${JSON.stringify(p.label)}}\n`).join('');
  const keys = Object.keys(outcome.metrics).sort();
  const results = `{\n${keys.map((k) => `    ${JSON.stringify(k)}: ${pyFloat(outcome.metrics[k]!)}`).join(',\n')}\n}`;
  return new Map([
    ['generated_predictions.jsonl', encoder.encode(lines)],
    ['predict_results.json', encoder.encode(results)],
  ]);
}

/** Why a job's do_predict cannot run, or undefined when it can (checked before the model loads). */
export function predictRefusal(s: Pick<TrainSettings, 'do_predict' | 'predict_with_generate' | 'stage' | 'val_size' | 'eval_dataset'>, hasSegmenter: boolean): string | undefined {
  if (!s.do_predict) return undefined;
  if (s.stage !== 'sft') return `do_predict generates answers for stage "sft"; this job is stage "${s.stage}"`;
  if (!s.predict_with_generate) return 'do_predict needs predict_with_generate: true: Graft predicts by generating the answers (as LLaMA-Factory needs it to write generated_predictions.jsonl)';
  if (s.eval_dataset === undefined && s.val_size === 0) return 'do_predict answers the records of eval_dataset, or the val_size split: set one of them';
  if (!hasSegmenter) return 'do_predict needs a word segmenter for ROUGE, and this entry point gives none';
  return undefined;
}

/**
 * After training, with the trained model still on the GPU: the adapter of an adapter result is loaded beside the
 * base under "trained" (and unloaded after), a full or freeze result is the model itself.
 */
export async function predictTrained(
  lm: LoadedModel,
  result: { kind: string; files: Map<string, Uint8Array> },
  records: readonly Conversation[],
  s: PredictSettings,
  options: Omit<PredictOptions, 'adapter'>,
): Promise<PredictOutcome> {
  const adapter = result.kind === 'adapter' ? await lm.loadAdapter(memorySource('trained', result.files), 'trained') : null;
  try {
    return await predict(lm, records, s, { ...options, adapter });
  } finally {
    if (adapter) lm.unloadAdapter(adapter);
  }
}
