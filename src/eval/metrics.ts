// LLaMA-Factory's generation metrics (train/sft/metric.py, ComputeSimilarity), so that Graft's predict_results.json
// holds the numbers LLaMA-Factory would write for the same predictions:
//   bleu-4   nltk's sentence_bleu([list(label)], list(predict)) on CHARACTERS, smoothing method3, × 100
//   rouge-*  rouge-chinese's Rouge().get_scores(" ".join(jieba.cut(predict)), " ".join(jieba.cut(label)))[0][k]["f"],
//            × 100, on jieba's words (rouge-1, rouge-2: n-gram sets; rouge-l: the LCS of all the words)
// each rounded to 4 decimals per example (Python's round) and averaged over the examples. The segmenter is
// passed in (`Segmenter`): jieba through jieba-wasm, the same build in Node and in the browser (jieba-node.ts, jieba-web.ts).
// docs/evaluate.md.

/** Splits a text into words as jieba.cut(text) does (HMM on), spaces and punctuation kept as tokens. */
export type Segmenter = (text: string) => string[];

export interface SimilarityScores {
  'bleu-4': number;
  'rouge-1': number;
  'rouge-2': number;
  'rouge-l': number;
}

// Python's str.split() / str.isspace(): the characters with the Unicode White_Space property, plus the ASCII
// information separators \x1c-\x1f that Python also treats as whitespace.
const PY_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;
const PY_SPACE_END = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/u;

/** Python's s.split() (no argument): split on runs of whitespace, no empty strings. */
export function pySplit(s: string): string[] {
  return s.split(PY_SPACE).filter((w) => w !== '');
}

/**
 * Python's round(x, 4): the decimal nearest to x's exact binary value (toFixed does the same), and on an exact tie
 * the even last digit, where toFixed takes the larger. A tie at the 5th decimal needs x = q/32 with q odd.
 */
export function round4(x: number): number {
  const q = x * 32;
  if (Number.isInteger(q) && Math.abs(q) % 2 === 1) {
    const lo = Math.floor(x * 1e4); // x·1e4 = q·312.5 exactly
    return (lo % 2 === 0 ? lo : lo + 1) / 1e4;
  }
  return Number(x.toFixed(4));
}

// ---- BLEU (nltk.translate.bleu_score.sentence_bleu, weights 0.25 × 4, SmoothingFunction().method3) -----------

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join('\u0000');
    m.set(key, (m.get(key) ?? 0) + 1);
  }
  return m;
}

/** sentence_bleu([reference], hypothesis, smoothing_function=SmoothingFunction().method3), in [0, 1]. */
export function sentenceBleu4(reference: readonly string[], hypothesis: readonly string[]): number {
  const numerators: number[] = [];
  const denominators: number[] = [];
  for (let n = 1; n <= 4; n++) {
    const counts = hypothesis.length >= n ? ngramCounts(hypothesis, n) : new Map<string, number>();
    const ref = reference.length >= n ? ngramCounts(reference, n) : new Map<string, number>();
    let clipped = 0;
    let total = 0;
    for (const [g, c] of counts) {
      clipped += Math.min(c, ref.get(g) ?? 0);
      total += c;
    }
    numerators.push(clipped);
    denominators.push(Math.max(1, total));
  }
  if (numerators[0] === 0) return 0;
  const hypLen = hypothesis.length;
  const refLen = reference.length;
  const bp = hypLen > refLen ? 1 : hypLen === 0 ? 0 : Math.exp(1 - refLen / hypLen);
  // method3: a zero count becomes 1 / (2^k · denominator), k = 1, 2, ... for each zero in turn
  let k = 1;
  const p = numerators.map((num, i) => (num === 0 ? 1 / (2 ** k++ * denominators[i]!) : num / denominators[i]!));
  let s = 0;
  for (const pi of p) if (pi > 0) s += 0.25 * Math.log(pi);
  return bp * Math.exp(s);
}

// ---- ROUGE (rouge-chinese 1.0.3: Rouge().get_scores, exclusive n-gram sets, summary-level LCS of all words) ----

/** rouge-chinese's cut_sent: sentence breaks after 。！？? (and …… / ......), unless a closing quote follows. */
function cutSentences(para: string): string[] {
  let p = para.replace(/([。！？?])([^”’])/gu, '$1\n$2');
  p = p.replace(/(\.{6})([^”’])/gu, '$1\n$2');
  p = p.replace(/(…{2})([^”’])/gu, '$1\n$2');
  p = p.replace(/([。！？?][”’])([^，。！？?])/gu, '$1\n$2');
  p = p.replace(PY_SPACE_END, '');
  return p.split('\n');
}

/** get_scores' preparation: sentences with their whitespace runs collapsed to one space, empty ones dropped. */
function sentencesOf(text: string): string[] {
  return cutSentences(text)
    .filter((s) => s.length > 0)
    .map((s) => pySplit(s).join(' '));
}

/** _split_into_words: every sentence split on single spaces, chained (an all-space sentence gives one ''). */
function wordsOf(sentences: readonly string[]): string[] {
  return sentences.flatMap((s) => s.split(' '));
}

function ngramSet(words: readonly string[], n: number): Set<string> {
  const s = new Set<string>();
  for (let i = 0; i + n <= words.length; i++) s.add(words.slice(i, i + n).join('\u0000'));
  return s;
}

function fScore(evaluated: number, reference: number, overlap: number): number {
  const precision = evaluated === 0 ? 0 : overlap / evaluated;
  const recall = reference === 0 ? 0 : overlap / reference;
  return 2.0 * ((precision * recall) / (precision + recall + 1e-8));
}

function rougeN(hyp: readonly string[], ref: readonly string[], n: number): number {
  const h = ngramSet(wordsOf(hyp), n);
  const r = ngramSet(wordsOf(ref), n);
  let overlap = 0;
  for (const g of h) if (r.has(g)) overlap++;
  return fScore(h.size, r.size, overlap);
}

function lcsLength(x: readonly string[], y: readonly string[]): number {
  let prev = new Array<number>(y.length + 1).fill(0);
  for (let i = 1; i <= x.length; i++) {
    const cur = new Array<number>(y.length + 1).fill(0);
    for (let j = 1; j <= y.length; j++) cur[j] = x[i - 1] === y[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    prev = cur;
  }
  return prev[y.length]!;
}

function rougeL(hyp: readonly string[], ref: readonly string[]): number {
  const r = wordsOf(ref);
  const h = wordsOf(hyp);
  const llcs = lcsLength(r, h);
  const rl = llcs / r.length;
  const pl = llcs / h.length;
  return 2.0 * ((pl * rl) / (pl + rl + 1e-8));
}

/** Rouge().get_scores(hyp, ref)[0]'s three f values, for texts of space-separated words. */
export function rougeScores(hypothesis: string, reference: string): { 'rouge-1': number; 'rouge-2': number; 'rouge-l': number } {
  const hyp = sentencesOf(hypothesis);
  const ref = sentencesOf(reference);
  if (hyp.length === 0) throw new Error('Hypothesis is empty.');
  if (ref.length === 0) throw new Error('Reference is empty.');
  return { 'rouge-1': rougeN(hyp, ref, 1), 'rouge-2': rougeN(hyp, ref, 2), 'rouge-l': rougeL(hyp, ref) };
}

/** One example's scores, × 100 and rounded to 4 decimals, as ComputeSimilarity appends them. */
export function exampleScores(predict: string, label: string, segment: Segmenter): SimilarityScores {
  const hypothesis = segment(predict);
  const reference = segment(label);
  let rouge = { 'rouge-1': 0, 'rouge-2': 0, 'rouge-l': 0 };
  if (pySplit(hypothesis.join(' ')).length !== 0 && pySplit(reference.join(' ')).length !== 0) {
    rouge = rougeScores(hypothesis.join(' '), reference.join(' '));
  }
  const bleu = sentenceBleu4(Array.from(label), Array.from(predict));
  return {
    'rouge-1': round4(rouge['rouge-1'] * 100),
    'rouge-2': round4(rouge['rouge-2'] * 100),
    'rouge-l': round4(rouge['rouge-l'] * 100),
    'bleu-4': round4(bleu * 100),
  };
}

/** The mean of each score over the examples (numpy's mean of the rounded values), as LLaMA-Factory reports them. */
export function meanScores(scores: readonly SimilarityScores[]): SimilarityScores {
  const keys = ['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l'] as const;
  const out = { 'bleu-4': 0, 'rouge-1': 0, 'rouge-2': 0, 'rouge-l': 0 };
  if (scores.length === 0) return out;
  for (const k of keys) {
    // numpy sums float64 arrays pairwise; for the lengths predictions have this equals a plain sum within 1e-12
    let s = 0;
    for (const x of scores) s += x[k];
    out[k] = s / scores.length;
  }
  return out;
}

/** LLaMA-Factory's ComputeSimilarity over (predict, label) pairs. */
export function computeSimilarity(pairs: readonly { predict: string; label: string }[], segment: Segmenter): SimilarityScores {
  return meanScores(pairs.map((p) => exampleScores(p.predict, p.label, segment)));
}
