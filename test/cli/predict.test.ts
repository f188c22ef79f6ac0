// `graft train` with data as people bring it and with do_predict: the primer's four examples, typed with their
// comments and trailing comma, train (sft, instruction tuning, multi-task with the task in the prompt, dpo on the
// RLHF record); --do_predict writes generated_predictions.jsonl and predict_results.json as LLaMA-Factory does,
// with the metrics of src/eval/metrics.ts (checked against Python in test/eval); LLaMA-Factory keys Graft refuses
// get their reason on the command line. The commands run in this process on one GPU device for the file.
import { readFileSync } from 'node:fs';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jiebaCut } from '../../src/eval/jieba-node';
import { exampleScores, meanScores } from '../../src/eval/metrics';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { FIXTURE } from '../train/helpers';
import { lines } from './run';


const scratch = mkdtempSync(join(tmpdir(), 'graft-cli-predict-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const PRIMER = new URL('../fixtures/data/primer/', import.meta.url).pathname;
const ALPACA = new URL('../fixtures/data/sft_alpaca.json', import.meta.url).pathname;
const FAST = ['--model', FIXTURE, '--cutoff_len', '48', '--learning_rate', '1e-2', '--lora_rank', '2', '--max_steps', '1', '--save_strategy', 'no'];

describe("the primer's examples as typed", () => {
  for (const [file, stage] of [['sft.json', 'sft'], ['instruction.json', 'sft'], ['multitask.json', 'sft'], ['rlhf.json', 'dpo']] as const) {
    it(`${file} trains (stage ${stage}), with a note on what was tolerated`, async () => {
      const out = join(scratch, file);
      const r = await graft(['train', ...FAST, '--stage', stage, '--dataset', join(PRIMER, file), '--output_dir', out]);
      expect(r.code, r.graftStderr).toBe(0);
      expect(r.stdout).toMatch(/trained 1 step/);
      expect(r.graftStderr).toMatch(new RegExp(`${file.replace('.', '\\.')} is not strict JSON: it has (\\d+ comments?|1 trailing comma)`));
      if (file === 'multitask.json') {
        // the task reaches the prompt, in Graft and in the LLaMA-Factory job
        expect(r.graftStderr).toMatch(/2 records have a task and no instruction: the prompt is task_template "\{task\}: \{input\}"/);
        const rows = JSON.parse(readFileSync(join(out, 'multitask.json'), 'utf8')) as { instruction: string; task: string }[];
        expect(rows.map((x) => x.instruction)).toEqual(['情感分析: 这款手机的电池寿命太短了,太失望了。', '文本摘要: 近日,某科技公司发布了一款新产品...']);
      }
    });
  }
});

describe('graft train --do_predict', () => {
  it('answers the val_size split and writes the files LLaMA-Factory writes, with its metrics', async () => {
    const out = join(scratch, 'predict');
    const r = await graft([
      'train', ...FAST, '--cutoff_len', '256', '--dataset', ALPACA, '--val_size', '3', '--do_predict', '--predict_with_generate', '--do_sample', 'false', '--max_new_tokens', '6', '--output_dir', out,
    ]);
    expect(r.code, r.graftStderr).toBe(0);
    expect(r.graftStderr).toMatch(/predict: predict_bleu-4 \d+\.\d{4}, predict_rouge-1/);
    const text = readFileSync(join(out, 'generated_predictions.jsonl'), 'utf8');
    const rows = lines(text).map((l) => JSON.parse(l) as { prompt: string; predict: string; label: string });
    expect(rows).toHaveLength(3);
    expect(lines(text).every((l) => /^\{"prompt": ".*", "predict": ".*", "label": ".*"\}$/.test(l))).toBe(true);
    for (const row of rows) {
      expect(Object.keys(row)).toEqual(['prompt', 'predict', 'label']);
      expect(row.prompt).toMatch(/^<\|im_start\|>user\n[\s\S]*<\|im_end\|>\n<\|im_start\|>assistant\n$/);
      expect(row.label.length).toBeGreaterThan(0);
    }
    const results = readFileSync(join(out, 'predict_results.json'), 'utf8');
    const metrics = JSON.parse(results) as Record<string, number>;
    expect(Object.keys(metrics)).toEqual([
      'predict_bleu-4', 'predict_rouge-1', 'predict_rouge-2', 'predict_rouge-l', 'predict_runtime', 'predict_samples_per_second', 'predict_steps_per_second', 'predict_tokens_per_second',
    ]);
    expect(results).toMatch(/^\{\n {4}"predict_bleu-4": /);
    const want = meanScores(rows.map((x) => exampleScores(x.predict, x.label, jiebaCut)));
    for (const k of ['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l'] as const) expect(Math.abs(metrics[`predict_${k}`]! - want[k])).toBeLessThanOrEqual(1e-9);
  });

  it('answers eval_dataset (the primer multi-task file, tasks in the prompts); refuses without predict_with_generate', async () => {
    const out = join(scratch, 'predict-eval');
    const r = await graft([
      'train', ...FAST, '--cutoff_len', '256', '--dataset', ALPACA, '--eval_dataset', join(PRIMER, 'multitask.json'), '--do_predict', '--predict_with_generate', '--do_sample', 'false', '--max_new_tokens', '4', '--output_dir', out,
    ]);
    expect(r.code, r.graftStderr).toBe(0);
    const rows = lines(readFileSync(join(out, 'generated_predictions.jsonl'), 'utf8')).map((l) => JSON.parse(l) as { prompt: string; label: string });
    expect(rows.map((x) => x.prompt)).toEqual([
      '<|im_start|>user\n情感分析: 这款手机的电池寿命太短了,太失望了。<|im_end|>\n<|im_start|>assistant\n',
      '<|im_start|>user\n文本摘要: 近日,某科技公司发布了一款新产品...<|im_end|>\n<|im_start|>assistant\n',
    ]);
    expect(rows.map((x) => x.label)).toEqual(['负面\n', '某科技公司发布新品\n']); // the answer's tokens, <|im_end|> skipped, as LLaMA-Factory decodes labels
    const bad = await graft(['train', ...FAST, '--dataset', ALPACA, '--val_size', '2', '--do_predict', '--output_dir', join(scratch, 'bad')]);
    expect(bad.code).not.toBe(0);
    expect(bad.graftStderr).toMatch(/do_predict needs predict_with_generate: true/);
  });
});

describe('dataset_info.json names on the command line', () => {
  it('a {question, answer} file mapped by columns trains; a ranking entry is refused for stage sft', async () => {
    const dir = join(scratch, 'info');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'qa.json'), JSON.stringify([{ question: 'Capital of France?', answer: 'Paris.' }, { question: 'Capital of Peru?', answer: 'Lima.' }]));
    writeFileSync(join(dir, 'dataset_info.json'), JSON.stringify({ qa: { file_name: 'qa.json', columns: { prompt: 'question', response: 'answer' } }, qa_pairs: { file_name: 'qa.json', ranking: true } }));
    const r = await graft(['train', ...FAST, '--dataset_dir', dir, '--dataset', 'qa', '--output_dir', join(scratch, 'info-run')]);
    expect(r.code, r.graftStderr).toBe(0);
    expect(r.graftStderr).not.toMatch(/skipped/);
    const bad = await graft(['train', ...FAST, '--dataset_dir', dir, '--dataset', 'qa_pairs', '--output_dir', join(scratch, 'info-bad')]);
    expect(bad.code).not.toBe(0);
    expect(bad.graftStderr).toMatch(/qa_pairs is a ranking dataset in dataset_info\.json \(ranking: true\): train it with --stage dpo or --stage rm/);
  });
});

describe("LLaMA-Factory keys Graft refuses, on the command line", () => {
  it('--bf16 and --use_dora get the reason a YAML job gets, not "unknown option"; --report_to is a note', async () => {
    const bf16 = await graft(['train', ...FAST, '--dataset', ALPACA, '--bf16', '--output_dir', join(scratch, 'bf16')]);
    expect(bf16.code).not.toBe(0);
    expect(bf16.graftStderr).toMatch(/bf16.*Graft computes in float32 on WebGPU/);
    expect(bf16.graftStderr).not.toMatch(/unknown option/);
    const dora = await graft(['train', ...FAST, '--dataset', ALPACA, '--use_dora', 'true', '--output_dir', join(scratch, 'dora')]);
    expect(dora.graftStderr).toMatch(/DoRA is not available in Graft/);
    const help = await graft(['train', '--help']);
    expect(help.stdout).not.toMatch(/--bf16/);
    expect(help.stdout).toMatch(/adapter \(bottleneck adapters\) or prompt \(prompt tuning\)/);
  });
});
