// `graft train`: malformed dataset records are named by line, counted and left out; unknown and unhonourable
// settings exit non-zero naming them (flags and job files); a job file with flags on top runs freeze tuning and
// exports a Hugging Face model folder; Ctrl-C saves a checkpoint and --resume_from_checkpoint true continues to
// the same losses as an uninterrupted run.
// The interrupted run is the real command in a child process (bin/graft.mjs turns Ctrl-C into a clean stop);
// the others run in this process (test/helpers/graft-in-process.ts) on one GPU device for the file, so that
// they compile their kernels once rather than once per child process.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TrainReporter } from '../../src/cli/train-reporter';
import { SafetensorsFile } from '../../src/model/safetensors';
import type { StepRecord } from '../../src/train/metrics';
import { BIN, lines, REPO_ROOT, withoutNativeNoise } from './run';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { FIXTURE, safetensors } from '../train/helpers';


const scratch = mkdtempSync(join(tmpdir(), 'graft-cli-train-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const readMetrics = (dir: string) => lines(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).map((l) => JSON.parse(l) as { step: number; loss: number });

/** Small, fast training flags on the fixture model. */
const FAST = ['--model', FIXTURE, '--cutoff_len', '24', '--per_device_train_batch_size', '2', '--learning_rate', '1e-2', '--lora_rank', '2'];

describe('graft train: datasets with broken records', () => {
  it('names each broken record by its line, counts them and trains on the rest', async () => {
    const good = (i: number) => JSON.stringify({ instruction: `Say ${i}`, input: '', output: `Number ${i}.` });
    const parts: (string | Uint8Array)[] = [
      good(1),
      '{"instruction": "broken", "output": ',
      JSON.stringify({ instruction: 'no answer field' }),
      JSON.stringify({ conversations: [{ from: 'gpt', value: 'hello' }, { from: 'human', value: 'hi' }] }),
      JSON.stringify({ instruction: 'empty answer', output: '   ' }),
      JSON.stringify({ instruction: 'x'.repeat(10 * 1024 * 1024), output: 'long' }),
      new Uint8Array([...new TextEncoder().encode('{"instruction": "bad bytes '), 0xff, 0xfe, ...new TextEncoder().encode('", "output": "x"}')]),
      good(2),
      good(3),
    ];
    const chunks = parts.flatMap((p) => [typeof p === 'string' ? new TextEncoder().encode(p) : p, new Uint8Array([10])]);
    const file = join(scratch, 'broken.jsonl');
    writeFileSync(file, Buffer.concat(chunks));
    const out = join(scratch, 'broken-out');
    const r = await graft(['train', ...FAST, '--dataset', file, '--max_steps', '1', '--per_device_train_batch_size', '3', '--output_dir', out]);
    expect(r.code, r.graftStderr).toBe(0);
    const err = r.graftStderr;
    expect(err).toMatch(/broken\.jsonl line 2: not valid JSON/);
    expect(err).toMatch(/broken\.jsonl line 3: .*output/);
    expect(err).toMatch(/broken\.jsonl line 4: .*alternate/);
    expect(err).toMatch(/broken\.jsonl line 5: .*empty/);
    expect(err).toMatch(/broken\.jsonl line 6: the line is 10\.5 MB long/);
    expect(err).toMatch(/broken\.jsonl line 7: the line is not valid UTF-8/);
    expect(err).not.toMatch(/line (1|8|9):/);
    expect(err).toMatch(/6 of 9 records of broken\.jsonl cannot be used and were skipped/);
    expect(err).toMatch(/3 training sequences/);
    expect(readMetrics(out)).toHaveLength(1);
    expect(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'))).toMatchObject({ r: 2 });
  });
});

describe('graft train: settings it does not know or cannot honour', () => {
  it('an unknown flag, an unknown key in a job file, and settings Graft cannot honour exit non-zero naming them', async () => {
    const base = [...FAST, '--dataset', 'test/fixtures/data/sft_alpaca.json', '--output_dir', join(scratch, 'never')];
    const flag = await graft(['train', ...base, '--lora_rnk', '4']);
    expect(flag.code).toBe(2);
    expect(lines(flag.graftStderr)).toEqual([expect.stringMatching(/^graft train: unknown option --lora_rnk/)]);

    const job = join(scratch, 'typo.yaml');
    writeFileSync(job, `model_name_or_path: ${FIXTURE}\ndataset: test/fixtures/data/sft_alpaca.json\nlora_rnk: 4\ndeepspeed: ds_z3.json\n`);
    const yaml = await graft(['train', job]);
    expect(yaml.code).toBe(1);
    expect(yaml.graftStderr).toMatch(/line 3, lora_rnk: unknown setting; did you mean "lora_rank"\?/);
    expect(yaml.graftStderr).toMatch(/line 4, deepspeed: Graft trains on one GPU/);

    // (lora_dropout > 0 runs: test/train/lora-dropout-train.test.ts.)
    const value = await graft(['train', ...base, '--learning_rate', 'fast']);
    expect(value.code).toBe(1);
    expect(value.graftStderr).toMatch(/learning_rate: must be a number, not "fast"/);
    expect(existsSync(join(scratch, 'never'))).toBe(false);
  });
});

describe('graft train: a job file, freeze tuning and the exported model', () => {
  it('flags override the job file; freeze trains the last layer and exports a Hugging Face folder', async () => {
    const out = join(scratch, 'freeze-out');
    const r = await graft(['train', 'test/fixtures/jobs/freeze.yaml', '--max_steps', '2', '--output_dir', out]);
    expect(r.code, r.graftStderr).toBe(0);
    expect(r.graftStderr).toMatch(/note: report_to:/);
    expect(r.graftStderr).toMatch(/^step 1\/2 .*loss \d/m);
    expect(r.graftStderr).toMatch(/^step 2\/2 /m);
    expect(readMetrics(out).map((m) => m.step)).toEqual([1, 2]);
    for (const f of ['config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'train.yaml', 'dataset_info.json', 'sft_sharegpt.json']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const exported = new SafetensorsFile(new Uint8Array(readFileSync(join(out, 'model.safetensors'))), 'model.safetensors');
    const base = safetensors('model.safetensors');
    expect(exported.names.sort()).toEqual(base.names.sort());
    for (const name of base.names) {
      const same = exported.float32(name).every((v, i) => v === base.float32(name)[i]);
      expect(same, name).toBe(!name.startsWith('model.layers.1.'));
    }
    expect(readFileSync(join(out, 'train.yaml'), 'utf8')).toMatch(/finetuning_type: freeze[\s\S]*freeze_trainable_layers: 1[\s\S]*max_steps: 2/);
  });
});

/** Runs graft train and sends SIGINT once stderr shows `step <n>/`. */
function runAndInterrupt(args: string[], atStep: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stdout.resume();
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && new RegExp(`^step ${atStep}/`, 'm').test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stderr: withoutNativeNoise(stderr) });
    });
  });
}

describe('graft train: Ctrl-C and --resume_from_checkpoint', () => {
  it('an interrupted run saves a checkpoint, and resuming gives the uninterrupted run\'s losses', async () => {
    const job = [...FAST, '--dataset', 'test/fixtures/data/sft_alpaca.json', '--max_samples', '6', '--per_device_train_batch_size', '1', '--max_steps', '8', '--logging_steps', '1', '--lr_scheduler_type', 'cosine', '--warmup_steps', '2'];
    const straightDir = join(scratch, 'straight');
    const straight = await graft(['train', ...job, '--output_dir', straightDir]);
    expect(straight.code, straight.graftStderr).toBe(0);
    const want = readMetrics(straightDir);
    expect(want).toHaveLength(8);

    const dir = join(scratch, 'interrupted');
    const stopped = await runAndInterrupt(['train', ...job, '--output_dir', dir], 2);
    expect(stopped.code, stopped.stderr).toBe(130);
    const at = Number(/training interrupted after step (\d+) of 8; checkpoint saved in .*checkpoint-(\d+)/.exec(stopped.stderr)?.[1]);
    expect(at).toBeGreaterThanOrEqual(2);
    expect(at).toBeLessThan(8);
    expect(existsSync(join(dir, `checkpoint-${at}`, 'trainer_state.json'))).toBe(true);
    expect(existsSync(join(dir, 'adapter_model.safetensors'))).toBe(false); // no export of an unfinished run

    const resumed = await graft(['train', ...job, '--output_dir', dir, '--resume_from_checkpoint', 'true']);
    expect(resumed.code, resumed.graftStderr).toBe(0);
    expect(resumed.graftStderr).toMatch(new RegExp(`resuming after step ${at}`));
    const got = readMetrics(dir);
    expect(got.map((m) => m.step)).toEqual(want.map((m) => m.step));
    expect(got.map((m) => m.loss)).toEqual(want.map((m) => m.loss));
    expect(readFileSync(join(dir, 'adapter_model.safetensors'))).toEqual(readFileSync(join(straightDir, 'adapter_model.safetensors')));

    // LLaMA-Factory's rule for an output_dir that holds checkpoints: resume from the latest (here: nothing left).
    const again = await graft(['train', ...job, '--output_dir', dir]);
    expect(again.code, again.graftStderr).toBe(0);
    expect(again.graftStderr).toMatch(/note: resuming from .*checkpoint-8/);
    expect(again.stdout).toMatch(/trained 8 steps/);
  });
});

describe('graft train progress', () => {
  const record = (step: number): StepRecord => ({ step, epoch: step / 10, loss: 2.5, learning_rate: 1e-4, grad_norm: 0.8, tokens: 100, input_tokens: 200, tokens_per_second: 1234.4, elapsed_s: step * 2, skipped_steps: 0 });
  it('on a terminal: one line redrawn with a bar, loss, lr, tokens/s and ETA', () => {
    let text = '';
    const r = new TrainReporter({ write: (x: string) => (text += x), isTTY: true, columns: 120 }, 500);
    r.update({ step: 3, totalSteps: 10, epoch: 0.3, phase: 'train', last: record(3), etaSeconds: 14 });
    expect(text).toBe(`\r\x1b[Ktrain ${'█'.repeat(6)}${'░'.repeat(14)} 3/10  loss 2.5000  lr 1.00e-4  1234 tok/s  ETA 14s`);
    r.line('eval at step 3: eval_loss 2.4');
    expect(text.endsWith('\r\x1b[Keval at step 3: eval_loss 2.4\n')).toBe(true);
  });
  it('otherwise: plain lines for the first step, every logging_steps, skipped steps and the last', () => {
    let text = '';
    const r = new TrainReporter({ write: (x: string) => (text += x) }, 4);
    for (let s = 1; s <= 10; s++) r.update({ step: s, totalSteps: 10, epoch: s / 10, phase: 'train', last: s === 6 ? { ...record(6), skipped: true } : record(s) });
    expect(lines(text).map((l) => l.split(' ')[1])).toEqual(['1/10', '4/10', '6/10', '8/10', '10/10']);
    expect(text).toMatch(/step 6\/10 .*SKIPPED/);
  });
});
