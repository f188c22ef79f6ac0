"""LLaMA-Factory's generation metrics (src/llamafactory/train/sft/metric.py, ComputeSimilarity) on the fixed pairs of
test/fixtures/eval/pairs.json, as the reference for Graft's src/eval/metrics.ts:

  python3 scripts/eval/metrics_reference.py   → test/fixtures/eval/metrics_reference.json

  bleu-4   nltk.translate.bleu_score.sentence_bleu([list(label)], list(pred),
           smoothing_function=SmoothingFunction().method3)                       (nltk itself)
  rouge-*  rouge_chinese.Rouge().get_scores(" ".join(hyp_words), " ".join(ref_words))[0][k]["f"]
each × 100, round(·, 4), then np.mean over the pairs.

jieba and rouge-chinese do not install here (not on the local package index). The words are jieba-wasm's
(pairs.json, made by scripts/eval/segment-pairs.ts), standing for jieba.cut's output, and the ROUGE below is
rouge-chinese 1.0.3's definition written out (rouge_chinese/rouge.py and rouge_score.py): cut_sent's sentence
breaks, whitespace collapsed per sentence, the words of all sentences chained, n-gram SETS (exclusive=True) for
rouge-1/2, and for rouge-l the LCS of all reference words against all hypothesis words (its summary-level
variant), f = 2·p·r / (p + r + 1e-8).
"""
import itertools
import json
import os
import re

import numpy as np
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
FIX = os.path.join(ROOT, 'test', 'fixtures', 'eval')


# ---- rouge-chinese 1.0.3, written out -------------------------------------------------------------------------
def cut_sent(para):
    para = re.sub('([。！？\\?])([^”’])', r"\1\n\2", para)
    para = re.sub('(\\.{6})([^”’])', r"\1\n\2", para)
    para = re.sub('(\\…{2})([^”’])', r"\1\n\2", para)
    para = re.sub('([。！？\\?][”’])([^，。！？\\?])', r'\1\n\2', para)
    para = para.rstrip()
    return para.split("\n")


def split_into_words(sentences):
    return list(itertools.chain(*[_.split(" ") for _ in sentences]))


def get_ngrams(n, text):
    ngram_set = set()
    for i in range(len(text) - n + 1):
        ngram_set.add(tuple(text[i:i + n]))
    return ngram_set


def f_r_p(evaluated_count, reference_count, overlapping_count):
    precision = 0.0 if evaluated_count == 0 else overlapping_count / evaluated_count
    recall = 0.0 if reference_count == 0 else overlapping_count / reference_count
    return 2.0 * ((precision * recall) / (precision + recall + 1e-8))


def rouge_n(hyp, ref, n):
    if len(hyp) <= 0 or len(ref) <= 0:
        raise ValueError('empty')
    e = get_ngrams(n, split_into_words(hyp))
    r = get_ngrams(n, split_into_words(ref))
    return f_r_p(len(e), len(r), len(e.intersection(r)))


def len_lcs(x, y):
    n, m = len(x), len(y)
    table = {}
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 or j == 0:
                table[i, j] = 0
            elif x[i - 1] == y[j - 1]:
                table[i, j] = table[i - 1, j - 1] + 1
            else:
                table[i, j] = max(table[i - 1, j], table[i, j - 1])
    return table[n, m]


def rouge_l(hyp, ref):
    if len(hyp) <= 0 or len(ref) <= 0:
        raise ValueError('empty')
    r = split_into_words(ref)
    h = split_into_words(hyp)
    llcs = len_lcs(r, h)
    r_lcs = llcs / len(r)
    p_lcs = llcs / len(h)
    return 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8))


def get_scores(hyp, ref):
    hyp = [" ".join(_.split()) for _ in cut_sent(hyp) if len(_) > 0]
    ref = [" ".join(_.split()) for _ in cut_sent(ref) if len(_) > 0]
    return {'rouge-1': {'f': rouge_n(hyp, ref, 1)}, 'rouge-2': {'f': rouge_n(hyp, ref, 2)}, 'rouge-l': {'f': rouge_l(hyp, ref)}}


# ---- ComputeSimilarity.__call__, per pair --------------------------------------------------------------------
def main():
    pairs = json.load(open(os.path.join(FIX, 'pairs.json')))['pairs']
    score_dict = {'rouge-1': [], 'rouge-2': [], 'rouge-l': [], 'bleu-4': []}
    per_example = []
    for p in pairs:
        pred, label = p['predict'], p['label']
        hypothesis = p['predict_words']
        reference = p['label_words']
        if len(' '.join(hypothesis).split()) == 0 or len(' '.join(reference).split()) == 0:
            result = {'rouge-1': {'f': 0.0}, 'rouge-2': {'f': 0.0}, 'rouge-l': {'f': 0.0}}
        else:
            result = get_scores(' '.join(hypothesis), ' '.join(reference))
        row = {}
        for k, v in result.items():
            score_dict[k].append(round(v['f'] * 100, 4))
            row[k] = round(v['f'] * 100, 4)
        bleu_score = sentence_bleu([list(label)], list(pred), smoothing_function=SmoothingFunction().method3)
        score_dict['bleu-4'].append(round(bleu_score * 100, 4))
        row['bleu-4'] = round(bleu_score * 100, 4)
        per_example.append(row)
    mean = {k: float(np.mean(v)) for k, v in score_dict.items()}
    out = {'note': 'LLaMA-Factory ComputeSimilarity on pairs.json (scripts/eval/metrics_reference.py)', 'per_example': per_example, 'mean': mean}
    with open(os.path.join(FIX, 'metrics_reference.json'), 'w') as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write('\n')
    print(json.dumps(mean, indent=1))


if __name__ == '__main__':
    main()
