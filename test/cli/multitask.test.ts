// `graft train` multi-task runs: two dataset files as two tasks with uncertainty weighting, the multi-task
// fixture's task field with DWA and balanced sampling; every line of metrics.jsonl has task_loss/<task> and
// task_weight/<task>; the LLaMA-Factory job says it has no task weighting; bad task settings exit non-zero with
// what to do. A dpo run writes its LLaMA-Factory job with a ranking dataset.
// The commands run in this process on one GPU device for the file (test/helpers/graft-in-process.ts), so they
// compile their kernels once.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { lines } from './run';
import { FIXTURE } from '../train/helpers';


const scratch = mkdtempSync(join(tmpdir(), 'graft-cli-multitask-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

type Row = Record<string, number>;
const readJsonl = (file: string) => lines(readFileSync(file, 'utf8')).map((l) => JSON.parse(l) as Row);
const FAST = ['--model', FIXTURE, '--cutoff_len', '32', '--learning_rate', '5e-2', '--lora_rank', '2', '--logging_steps', '1'];

describe('graft train: multi-task', () => {
  it('two datasets are two tasks; uncertainty weighting logs task_loss/* and task_weight/* every step', async () => {
    const a = join(scratch, 'capitals.jsonl');
    const b = join(scratch, 'numbers.jsonl');
    writeFileSync(a, ['France', 'Japan', 'Peru'].map((c) => JSON.stringify({ instruction: `Capital of ${c}?`, output: `The capital of ${c}.` })).join('\n'));
    writeFileSync(b, [1, 2, 3].map((n) => JSON.stringify({ instruction: `Double ${n}`, output: String(2 * n) })).join('\n'));
    const out = join(scratch, 'two');
    const r = await graft(['train', ...FAST, '--dataset', `${a},${b}`, '--task_weighting', 'uncertainty', '--per_device_train_batch_size', '6', '--max_steps', '3', '--output_dir', out]);
    expect(r.code, r.graftStderr).toBe(0);
    expect(r.graftStderr).toMatch(/multi-task: capitals \(3\), numbers \(3\); task_weighting uncertainty, task_sampling proportional/);
    const m = readJsonl(join(out, 'metrics.jsonl'));
    expect(m).toHaveLength(3);
    for (const row of m) {
      for (const k of ['task_loss/capitals', 'task_loss/numbers', 'task_weight/capitals', 'task_weight/numbers']) expect(row[k], `step ${row.step} ${k}`).toBeGreaterThan(0);
      expect(row.loss).toBeCloseTo(row['task_weight/capitals']! * row['task_loss/capitals']! + row['task_weight/numbers']! * row['task_loss/numbers']!, 5);
    }
    expect(m[0]!['task_weight/capitals']).toBe(1);
    expect(m[2]!['task_weight/capitals']).not.toBe(1);
    expect(r.graftStderr).toMatch(/note: train\.yaml: LLaMA-Factory has no task weighting/);
    expect(readFileSync(join(out, 'train.yaml'), 'utf8')).toMatch(/^# WARNING: LLaMA-Factory has no task weighting/m);
  });

  it('the task field of the multi-task fixture: DWA, balanced sampling, all five tasks weighted every step', async () => {
    const out = join(scratch, 'fixture');
    const r = await graft(['train', ...FAST, '--dataset', 'test/fixtures/data/multitask.json', '--task_weighting', 'dwa', '--dwa_window', '1', '--task_sampling', 'balanced', '--per_device_train_batch_size', '4', '--max_steps', '4', '--output_dir', out]);
    expect(r.code, r.graftStderr).toBe(0);
    const tasks = ['sentiment', 'summary', 'translation', '情感分析', '文本摘要'];
    const m = readJsonl(join(out, 'metrics.jsonl'));
    expect(m).toHaveLength(4);
    for (const row of m) {
      for (const t of tasks) expect(row[`task_weight/${t}`], `step ${row.step} ${t}`).toBeGreaterThan(0);
      const present = Object.keys(row).filter((k) => k.startsWith('task_loss/'));
      expect(present.length).toBeGreaterThan(0);
      const sum = tasks.reduce((s, t) => s + row[`task_weight/${t}`]!, 0);
      expect(sum).toBeCloseTo(5, 10); // DWA's weights add up to K
    }
  });

  it('bad task settings exit non-zero with what to do', async () => {
    const base = ['train', ...FAST, '--dataset', 'test/fixtures/data/multitask.json', '--max_steps', '1'];
    const unknown = await graft([...base, '--task_weights', 'sentiment:2,poetry:1', '--output_dir', join(scratch, 'never1')]);
    expect(unknown.code).toBe(1);
    expect(unknown.graftStderr).toMatch(/task_weights: names "poetry", which no training record has; the tasks are "sentiment", "summary", "translation", "情感分析", "文本摘要"/);
    const negative = await graft([...base, '--task_weights', 'sentiment:-1', '--output_dir', join(scratch, 'never2')]);
    expect(negative.code).toBe(1);
    expect(negative.graftStderr).toMatch(/task_weights: weight of task "sentiment" must be at least 0, not -1/);
    const single = await graft(['train', ...FAST, '--dataset', 'test/fixtures/data/sft_alpaca.json', '--task_weighting', 'dwa', '--max_steps', '1', '--output_dir', join(scratch, 'never3')]);
    expect(single.code).toBe(1);
    expect(single.graftStderr).toMatch(/task_weighting: is a multi-task setting, but no record of the dataset has a "task" field/);
  });
});

describe('graft train: the LLaMA-Factory job of a dpo run', () => {
  it('writes train.yaml with pref_beta and pref_loss and a ranking dataset', async () => {
    const out = join(scratch, 'dpo');
    const r = await graft(['train', ...FAST, '--stage', 'dpo', '--dataset', 'test/fixtures/data/dpo.json', '--per_device_train_batch_size', '2', '--max_steps', '1', '--pref_beta', '0.25', '--output_dir', out]);
    expect(r.code, r.graftStderr).toBe(0);
    const yaml = readFileSync(join(out, 'train.yaml'), 'utf8');
    expect(yaml).toMatch(/^stage: dpo$/m);
    expect(yaml).toMatch(/^pref_beta: 0\.25$/m);
    expect(yaml).toMatch(/^pref_loss: sigmoid$/m);
    const info = JSON.parse(readFileSync(join(out, 'dataset_info.json'), 'utf8')) as Record<string, { ranking: boolean; file_name: string }>;
    expect(info.dpo).toMatchObject({ file_name: 'dpo.json', ranking: true, formatting: 'sharegpt' });
    const rows = JSON.parse(readFileSync(join(out, 'dpo.json'), 'utf8')) as { chosen: { from: string } }[];
    expect(rows.length).toBeGreaterThan(0);
    expect(rows[0]!.chosen.from).toBe('gpt');
  });
});
