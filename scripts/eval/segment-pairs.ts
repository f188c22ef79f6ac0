// The fixed (predict, label) pairs the metric test checks, segmented by jieba-wasm as Graft segments them:
//   npx tsx scripts/eval/segment-pairs.ts   → test/fixtures/eval/pairs.json
// then python3 scripts/eval/metrics_reference.py computes LLaMA-Factory's metrics on them (nltk's BLEU, ROUGE as
// rouge-chinese defines it) → test/fixtures/eval/metrics_reference.json. Python's jieba does not install here,
// so the words come from jieba-wasm; the Python side takes them as jieba.cut's output.
import { writeFileSync } from 'node:fs';
import { jiebaCut } from '../../src/eval/jieba-node';

const PAIRS: [string, string][] = [
  ['根据《劳动合同法》第47条,经济补偿按工作年限支付。', '根据《劳动合同法》第47条,经济补偿按劳动者在本单位工作的年限,每满一年支付一个月工资。'],
  ['负面', '负面'],
  ['正面', '负面'],
  ['某科技公司发布新品', '某科技公司发布新品'],
  ['某公司今天发布了一款新手机。电池更大,芯片更快！', '某科技公司发布新品。新品电池更大。'],
  ['量子力学是研究微小粒子的科学……粒子可以同时处于多种状态', '量子力学是研究微小粒子行为的科学,粒子可以同时处于多种状态。'],
  ['Bonjour, il fait beau aujourd\'hui.', 'Bonjour, il fait beau aujourd\'hui.'],
  ['The capital of France is Paris.', 'Paris is the capital of France.'],
  ['The cat sleeps on the sofa', 'Le chat dort sur le canapé.'],
  ['', 'The company released a new phone with a bigger battery.'],
  ['ok', 'okay'],
  ['a', 'a'],
  ['the the the the the the the', 'the cat is on the mat'],
  ['Revenue: 4.2 billion dollars\n', 'Revenue: 4.2 billion dollars\n'],
  ['1. Eat vegetables.\n2. Sleep well.', '1. Eat vegetables every day.\n2. Sleep seven to eight hours.\n3. Walk for thirty minutes.'],
  ['你好？我很好！谢谢。', '你好！我很好？谢谢。'],
  ['这款手机的电池寿命太短了,太失望了。', '负面'],
  ['LoRA 训练两个小的低秩矩阵,只有少量参数变化。', 'LoRA trains two small low-rank matrices next to a frozen weight, so only a few parameters change.'],
  ['   ', '负面'],
  ['Error E17 means the inlet pressure is too low.', 'Error E17 means the inlet pressure is too low. Check the inlet valve and filter.'],
];

const pairs = PAIRS.map(([predict, label]) => ({ predict, label, predict_words: jiebaCut(predict), label_words: jiebaCut(label) }));
writeFileSync(new URL('../../test/fixtures/eval/pairs.json', import.meta.url), `${JSON.stringify({ segmenter: 'jieba-wasm 2.4.0 cut(text, hmm=true)', pairs }, null, 1)}\n`);
console.log(`${pairs.length} pairs`);
