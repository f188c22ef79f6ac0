// The fault suite's `graft train`: NaN injected into the model, a learning rate that breaks the weights (1e38) or
// saturates them (1e6), a resume with other settings or other answers, absurd config.json values and broken
// weights, a read-only output folder, and a disk that fills up mid-run (a tmpfs) and is freed again. Each asserts
// that nothing non-finite or half-written is kept and that the failure is one line that says what to do. The
// commands run in this process on one GPU device (test/helpers/graft-in-process.ts), so kernels compile once.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { skippedSummary } from '../../src/cli/train';
import { TrainReporter } from '../../src/cli/train-reporter';
import { SafetensorsFile, writeSafetensors } from '../../src/model/safetensors';
import type { StepRecord } from '../../src/train/metrics';
import { decodeCheckpoint } from '../../src/train/checkpoint';
import { NodeCheckpointStore } from '../../src/train/checkpoint-store-node';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import type { RunResult } from '../cli/run';
import { diskTestName, notRun, readOnlyDisk, reason as noDisk, resize, smallDisk } from './disk';


const FIXTURE = 'test/fixtures/tiny-llama';
const ALPACA = 'test/fixtures/data/sft_alpaca.json';
const scratch = mkdtempSync(join(tmpdir(), 'graft-faults-train-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Small LoRA runs on the fixture where every step has answer tokens. */
const FAST = ['--model', FIXTURE, '--dataset', ALPACA, '--cutoff_len', '64', '--per_device_train_batch_size', '2', '--lora_rank', '2', '--learning_rate', '1e-2', '--logging_steps', '1'];

/** Graft's own lines of stderr (notes, progress), and the failure: the last line. */
const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

/** A failed command: exit code 1, and stderr ends with ONE line that starts "graft:" and has no class name or stack. */
function failedWithOneLine(r: RunResult): string {
  expect(r.code, r.stderr).toBe(1);
  const last = lines(r.stderr).at(-1)!;
  expect(last).toMatch(/^graft: /);
  expect(last).not.toMatch(/\b[A-Z]\w*Error\b|GRAFT_DEBUG|\bat .*\.ts:\d+/);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return last;
}

/** Every float of every safetensors file under `dir` (checkpoints included) is finite; returns how many files. */
function expectAllFinite(dir: string): number {
  let files = 0;
  for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    if (!entry.endsWith('.safetensors')) continue;
    const st = new SafetensorsFile(new Uint8Array(readFileSync(join(dir, entry))), entry);
    for (const n of st.names) expect(st.float32(n).every(Number.isFinite), `${entry}: ${n}`).toBe(true);
    files++;
  }
  return files;
}

/** The fixture folder with its weights or config.json changed. */
function variant(name: string, edit: { weights?: (name: string, data: Float32Array) => Float32Array | undefined; config?: (c: Record<string, unknown>) => void }): string {
  const dir = join(scratch, name);
  cpSync(FIXTURE, dir, { recursive: true, filter: (src) => !src.includes('reference') && !src.includes('qlora') });
  if (edit.weights) {
    const st = new SafetensorsFile(new Uint8Array(readFileSync(join(FIXTURE, 'model.safetensors'))), 'model.safetensors');
    const tensors = st.names.flatMap((n) => {
      const data = edit.weights!(n, st.float32(n));
      return data ? [{ name: n, dtype: 'F32' as const, shape: st.info(n).shape, data }] : [];
    });
    writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors));
  }
  if (edit.config) {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    edit.config(c);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
  }
  return dir;
}

describe('NaN and learning rates that break the weights', () => {
  it('NaN injected into the model: every step is skipped as not finite, the run stops non-zero, and no result is written', async () => {
    const nan = variant('nan-model', { weights: (n, d) => (n === 'model.norm.weight' ? d.map((v, i) => (i === 3 ? Number.NaN : v)) : d) });
    const out = join(scratch, 'nan-out');
    const r = await graft(['train', ...FAST, '--model', nan, '--max_steps', '3', '--save_steps', '1', '--output_dir', out]);
    expect(failedWithOneLine(r)).toMatch(
      /^graft: Training stopped after step 3: the loss or gradient norm was NaN or infinite at every step that had something to learn, so those steps were skipped .*: check the model and the starting adapter for NaN or infinite weights, and lower learning_rate \(or set max_grad_norm\)\.$/,
    );
    expect(r.stderr).toMatch(/SKIPPED \(loss or gradient not finite\)/);
    expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(false);
    expectAllFinite(out);
  });

  it('learning_rate 1e38: the update that breaks the weights stops the run before they are saved; the last good checkpoint stays', async () => {
    const out = join(scratch, 'lr1e38');
    // Step 1 warms up at learning rate 0 (checkpoint-1 is good); step 2's update at 1e38 makes the weights infinite.
    const r = await graft(['train', ...FAST, '--learning_rate', '1e38', '--lr_scheduler_type', 'constant_with_warmup', '--warmup_steps', '1', '--max_steps', '4', '--save_steps', '1', '--output_dir', out]);
    const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(failedWithOneLine(r)).toMatch(
      new RegExp(`^graft: Training stopped after step 2: the update of step 2 \\(learning rate 1e\\+38\\) made the weights of \\S+ NaN or infinite; the last good checkpoint, ${esc(join(out, 'checkpoint-1'))}, is kept and nothing after it was saved: lower learning_rate \\(or set max_grad_norm\\) and train again\\.$`),
    );
    expect(readdirSync(out).sort()).toEqual(['checkpoint-1', 'eval_metrics.jsonl', 'metrics.jsonl']);
    expect(expectAllFinite(out)).toBe(3);
    expect(decodeCheckpoint(await new NodeCheckpointStore(out).read(1), 'checkpoint-1').state.global_step).toBe(1);
  });

  it('learning_rate 1e6: the loss freezes with a zero gradient, and the run says so once', async () => {
    const out = join(scratch, 'lr1e6');
    const r = await graft(['train', ...FAST, '--learning_rate', '1e6', '--max_steps', '7', '--save_strategy', 'no', '--output_dir', out]);
    expect(r.code, r.stderr).toBe(0);
    const warnings = lines(r.stderr).filter((l) => l.startsWith('graft train: warning:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^graft train: warning: the loss has stayed at 6\.2383 with a gradient norm of 0 for 3 steps \(up to step \d\): the model has stopped learning, most likely because learning_rate .* is far too high/);
    expect(expectAllFinite(out)).toBe(1);
  });

  it('a step with no answer token within cutoff_len is reported as that, not as "not finite"', () => {
    const rec = (step: number, skip_reason?: 'no_target' | 'not_finite') =>
      ({ step, epoch: 0, loss: Number.NaN, learning_rate: 0, grad_norm: Number.NaN, tokens: 0, input_tokens: 9, tokens_per_second: 1, elapsed_s: 0, skipped_steps: 1, ...(skip_reason ? { skipped: true as const, skip_reason } : {}) }) as StepRecord;
    expect(skippedSummary([rec(1, 'no_target'), rec(2)], 24)).toBe(' (1 had no answer token within cutoff_len 24, so nothing to learn)');
    expect(skippedSummary([rec(1, 'no_target'), rec(2, 'not_finite')], 24)).toBe(' (1 had no answer token within cutoff_len 24, so nothing to learn; 1 skipped: loss or gradient not finite)');
    let out = '';
    new TrainReporter({ write: (x: string) => void (out += x) }, 1, false).update({ step: 1, totalSteps: 2, epoch: 0.5, phase: 'train', last: rec(1, 'no_target') });
    expect(out).toMatch(/SKIPPED \(no answer token within cutoff_len: nothing to learn\)\n$/);
    expect(out).not.toMatch(/not finite/);
  });
});

describe('resuming a run that changed', () => {
  it('another learning rate, or other answers of the same count, are refused listing the differences; resume_allow_changes resumes and train.yaml records them', async () => {
    const data = join(scratch, 'answers.json');
    const records = JSON.parse(readFileSync(ALPACA, 'utf8')) as { instruction: string; input: string; output: string }[];
    writeFileSync(data, JSON.stringify(records));
    const out = join(scratch, 'resume');
    const job = [...FAST, '--dataset', data, '--save_steps', '2', '--output_dir', out];
    expect((await graft(['train', ...job, '--max_steps', '2'])).code).toBe(0);

    let r = await graft(['train', ...job, '--max_steps', '4', '--learning_rate', '2e-2']);
    expect(failedWithOneLine(r)).toMatch(/resume_from_checkpoint: the checkpoint's run differs from this job in one respect: learning_rate 0\.01 → 0\.02; resuming continues the same run, so set them back, .* or set resume_allow_changes: true/);

    writeFileSync(data, JSON.stringify(records.map((x, i) => (i === 1 ? { ...x, output: `${x.output} Changed.` } : x))));
    r = await graft(['train', ...job, '--max_steps', '4']);
    expect(failedWithOneLine(r)).toMatch(/differs from this job in one respect: the encoded data: the records, or how they are encoded, changed/);

    r = await graft(['train', ...job, '--max_steps', '4', '--learning_rate', '2e-2', '--resume_allow_changes', 'true']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/note: resume_allow_changes: resuming after step 2 with learning_rate 0\.01 → 0\.02; the encoded data/);
    expect(readFileSync(join(out, 'train.yaml'), 'utf8')).toMatch(/^# resumed after step 2 with other settings \(resume_allow_changes\): learning_rate 0\.01 → 0\.02; the encoded data: .*\n/);
    expect(decodeCheckpoint(await new NodeCheckpointStore(out).read(4), 'checkpoint-4').state.resumed_with_changes).toEqual([{ step: 2, changes: [expect.stringMatching(/^learning_rate/), expect.stringMatching(/^the encoded data/)] }]);
  });
});

describe('absurd models', () => {
  it('absurd config.json values and broken weights are refused in one line naming the setting or tensor, by info and train alike', async () => {
    const cases: [string, Parameters<typeof variant>[1], RegExp][] = [
      ['vocab', { config: (c) => (c.vocab_size = 1e12) }, /"vocab_size" is 1000000000000/],
      ['layers', { config: (c) => (c.num_hidden_layers = 1e9) }, /"num_hidden_layers" is 1000000000/],
      ['eps', { config: (c) => (c.rms_norm_eps = -1e-6) }, /"rms_norm_eps"/],
      ['missing', { weights: (n, d) => (n === 'model.layers.1.mlp.up_proj.weight' ? undefined : d) }, /The checkpoint has no tensor "model\.layers\.1\.mlp\.up_proj\.weight"/],
    ];
    for (const [name, edit, want] of cases) {
      const dir = variant(`absurd-${name}`, edit);
      for (const args of [['info', '--model', dir], ['train', ...FAST, '--model', dir, '--max_steps', '1', '--output_dir', join(scratch, `absurd-out-${name}`)]]) {
        const r = await graft(args);
        expect(failedWithOneLine(r), `${name}: ${args[0]}`).toMatch(want);
        expect(r.stderr).not.toMatch(/RangeError|Invalid array length|call stack/);
      }
    }
  });
});

describe('the output folder', () => {
  const ro = diskTestName('a read-only output_dir is refused in one line before the model is looked for');
  it(ro, async () => {
    if (noDisk) return notRun(ro);
    const disk = readOnlyDisk();
    try {
      // The model is a hub id that nothing serves: had the model been looked for first, this would be a network error.
      const r = await graft(['train', ...FAST, '--model', 'graft-test/never-downloaded', '--output_dir', join(disk.dir, 'out')], {
        env: { HF_ENDPOINT: 'http://127.0.0.1:9', GRAFT_CACHE: join(scratch, 'empty-cache') },
      });
      expect(failedWithOneLine(r)).toBe(
        `graft: output_dir ${join(disk.dir, 'out')} cannot be written: ${join(disk.dir, 'out')} is on a read-only file system; choose another output_dir (or free space or change the folder's permissions) before training.`,
      );
    } finally {
      disk.cleanup();
    }
  });

  const full = diskTestName('a disk that fills up mid-run: the run stops naming the checkpoint kept, and once space is freed it resumes to the uninterrupted result');
  it(full, async () => {
    if (noDisk) return notRun(full);
    const job = [...FAST, '--max_steps', '6', '--save_steps', '1'];
    const straight = join(scratch, 'straight');
    expect((await graft(['train', ...job, '--output_dir', straight])).code).toBe(0);
    const disk = smallDisk(320 * 1024);
    try {
      const out = join(disk.dir, 'out');
      const r = await graft(['train', ...job, '--output_dir', out]);
      const line = failedWithOneLine(r);
      const m = /^graft: Could not save checkpoint-(\d+): there is no space left on the disk for (\S+); checkpoint-(\d+), the latest complete checkpoint, is kept: free some disk space, then resume with --resume_from_checkpoint true\.$/.exec(line);
      expect(m, line).not.toBeNull();
      const [failed, kept] = [Number(m![1]), Number(m![3])];
      expect(kept).toBe(failed - 1);
      expect(m![2]!.startsWith(join(out, `checkpoint-${failed}.tmp`))).toBe(true);
      // Nothing half-written: no .tmp folder, the checkpoints there are complete and finite.
      expect(readdirSync(out).filter((n) => n.includes('tmp'))).toEqual([]);
      expect(await new NodeCheckpointStore(out).list()).toEqual(Array.from({ length: kept }, (_, i) => i + 1));
      expectAllFinite(out);
      resize(disk, 8 * 1024 * 1024);
      const resumed = await graft(['train', ...job, '--output_dir', out, '--resume_from_checkpoint', 'true']);
      expect(resumed.code, resumed.stderr).toBe(0);
      for (const f of ['adapter_model.safetensors', 'metrics.jsonl']) {
        const a = readFileSync(join(straight, f));
        const b = readFileSync(join(out, f));
        if (f === 'metrics.jsonl') {
          const drop = (s: string) => s.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>).map(({ step, loss, grad_norm }) => ({ step, loss, grad_norm }));
          expect(drop(b.toString())).toEqual(drop(a.toString()));
        } else expect(b.equals(a), f).toBe(true);
      }
    } finally {
      disk.cleanup();
    }
  });
});
