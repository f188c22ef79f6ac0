// The fault suite's kill-and-resume: the real `graft train` (bin/graft.mjs, a child process) is killed with
// SIGKILL at a random moment of its training — between steps, inside a checkpoint write, inside the final export
// — and the same command is run again, as a person would. After the kill, whatever is in output_dir is complete
// and finite (complete checkpoints decode; half-written ones are .tmp folders that no reader takes); the run
// again, in this process, finishes, and its adapter and losses equal an uninterrupted run's bit for bit.
// Bounded: two children killed at once, each at its own random moment, while this process trains the
// uninterrupted run (each process compiles its kernels first, 10-30 s on SwiftShader); then the two finish here.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/model/safetensors';
import { decodeCheckpoint } from '../../src/train/checkpoint';
import { NodeCheckpointStore } from '../../src/train/checkpoint-store-node';
import { BIN, REPO_ROOT } from '../cli/run';
import { graftInProcess } from '../helpers/graft-in-process';
import { Rng } from '../helpers/rng';


const scratch = mkdtempSync(join(tmpdir(), 'graft-faults-kill-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const JOB = ['--model', 'test/fixtures/tiny-llama', '--dataset', 'test/fixtures/data/sft_alpaca.json', '--cutoff_len', '64', '--per_device_train_batch_size', '2', '--lora_rank', '2', '--learning_rate', '1e-2', '--max_steps', '10', '--save_steps', '1', '--logging_steps', '1'];

/** Runs `graft train` as a child and kills it (SIGKILL) `delayMs` after its first step line; resolves with what it printed. */
function trainAndKill(out: string, delayMs: number): Promise<{ killed: boolean; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, 'train', ...JOB, '--output_dir', out], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GRAFT_DEBUG: '' } });
    let stderr = '';
    let armed = false;
    let killed = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!armed && /^step \d+\//m.test(stderr)) {
        armed = true;
        setTimeout(() => {
          killed = child.kill('SIGKILL');
        }, delayMs);
      }
    });
    child.stdout.resume();
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', fail);
    child.on('close', () => {
      clearTimeout(timer);
      done({ killed: killed && !/^trained \d+ steps/m.test(stderr), stderr });
    });
  });
}

/** What a kill may leave: complete checkpoints (decoding, finite), .tmp folders, metrics; a result file only whole. */
async function expectNothingCorrupt(out: string): Promise<number[]> {
  const store = new NodeCheckpointStore(out);
  const steps = await store.list();
  for (const step of steps) {
    const c = decodeCheckpoint(await store.read(step), `checkpoint-${step}`);
    expect(c.state.global_step).toBe(step);
    for (const [name, w] of c.weights) expect(w.every(Number.isFinite), `checkpoint-${step} ${name}`).toBe(true);
  }
  for (const name of readdirSync(out)) {
    if (name === 'adapter_model.safetensors') new SafetensorsFile(new Uint8Array(readFileSync(join(out, name))), name); // whole, or it throws
    expect(name).toMatch(/^(checkpoint-\d+(\.tmp)?|metrics\.jsonl|eval_metrics\.jsonl|adapter_model\.safetensors|adapter_config\.json|train\.yaml|dataset_info\.json|sft_alpaca\.json|.*\.graft-tmp)$/);
  }
  return steps;
}

const metricsOf = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; loss: number; grad_norm: number })
    .map(({ step, loss, grad_norm }) => ({ step, loss, grad_norm }));

it('SIGKILL at 2 random moments of graft train, then the same command again: nothing corrupt is kept, and the result equals an uninterrupted run bit for bit', async () => {
  const rng = new Rng(1313);
  const delays = [rng.int(0, 3000), rng.int(0, 3000)];
  const outs = delays.map((_, k) => join(scratch, `killed-${k + 1}`));
  const straight = join(scratch, 'straight');
  const [killed, alone] = await Promise.all([Promise.all(outs.map((out, k) => trainAndKill(out, delays[k]!))), graftInProcess(['train', ...JOB, '--output_dir', straight])]);
  expect(alone.code, alone.stderr).toBe(0);
  const report: string[] = [];
  for (const [k, out] of outs.entries()) {
    const steps = existsSync(out) ? await expectNothingCorrupt(out) : [];
    const finish = await graftInProcess(['train', ...JOB, '--output_dir', out]);
    expect(finish.code, finish.stderr).toBe(0);
    await expectNothingCorrupt(out);
    expect(readFileSync(join(out, 'adapter_model.safetensors')).equals(readFileSync(join(straight, 'adapter_model.safetensors')))).toBe(true);
    expect(metricsOf(out)).toEqual(metricsOf(straight));
    report.push(`kill ${k + 1} at +${delays[k]} ms after the first step: ${killed[k]!.killed ? 'killed' : 'had finished'} with checkpoints ${steps.join(',') || 'none'}, then resumed to the same adapter`);
  }
  console.log(`fault suite, kill-and-resume: ${report.join('; ')}`);
}, 300_000);
