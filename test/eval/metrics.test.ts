// LLaMA-Factory's generation metrics against the Python reference (scripts/eval/metrics_reference.py: nltk's
// sentence_bleu with method3 smoothing, rouge-chinese's ROUGE) on fixed Chinese and English pairs.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { jiebaCut } from '../../src/eval/jieba-node';
import { computeSimilarity, exampleScores, round4, type SimilarityScores } from '../../src/eval/metrics';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/eval/${name}`, import.meta.url), 'utf8')) as unknown;
const { pairs } = fixture('pairs.json') as { pairs: { predict: string; label: string; predict_words: string[]; label_words: string[] }[] };
const ref = fixture('metrics_reference.json') as { per_example: SimilarityScores[]; mean: SimilarityScores };
const KEYS = ['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l'] as const;

describe('BLEU-4 and ROUGE as LLaMA-Factory computes them', () => {
  it('jieba-wasm segments the pairs as when the reference was made', () => {
    for (const p of pairs) {
      expect(jiebaCut(p.predict)).toEqual(p.predict_words);
      expect(jiebaCut(p.label)).toEqual(p.label_words);
    }
  });

  it('every example and the means equal the Python reference within 1e-6', () => {
    pairs.forEach((p, i) => {
      const got = exampleScores(p.predict, p.label, jiebaCut);
      for (const k of KEYS) expect(Math.abs(got[k] - ref.per_example[i]![k]), `pair ${i} ${k}: ${got[k]} vs ${ref.per_example[i]![k]}`).toBeLessThanOrEqual(1e-6);
    });
    const mean = computeSimilarity(pairs, jiebaCut);
    for (const k of KEYS) expect(Math.abs(mean[k] - ref.mean[k]), k).toBeLessThanOrEqual(1e-6);
  });

  it("round4 is Python's round(x, 4), ties to even", () => {
    expect([round4(12.34375), round4(12.34385), round4(0.03125), round4(0.09375), round4(66.66666666), round4(0)]).toEqual([12.3438, 12.3438, 0.0312, 0.0938, 66.6667, 0]);
    // python3 -c "print([round(x, 4) for x in [12.34375, 12.34385, 0.03125, 0.09375, 66.66666666, 0]])"
  });
});
