// The `graft` command end to end: help, usage errors, download from the local test hub into a temporary cache
// folder (with a dropped connection that resumes), generation from a folder and from the cache with the hub gone,
// `info --json`, and failures that end with one line on stderr.
// What is about the process itself (help and usage errors with their exit codes, `npx graft`, GRAFT_DEBUG's stack)
// runs the real command in a child process (runGraft); the rest runs main() in this process on one GPU device for
// the file (test/helpers/graft-in-process.ts), so the generations compile their kernels once.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { FIXTURE_REPO, fixtureModelFiles, TestHub } from '../helpers/test-hub';
import { lines, REPO_ROOT, runGraft } from './run';


const FIXTURE = 'test/fixtures/tiny-llama';
const ADAPTER = 'test/fixtures/tiny-llama/reference/final_adapter';
const reference = JSON.parse(readFileSync(join(REPO_ROOT, FIXTURE, 'reference/reference.json'), 'utf8')) as {
  greedy: { prompt_ids: number[]; new_ids: number[] };
};
const GREEDY_ARGS = ['--prompt', 'What is LoRA?', '--chat', '--greedy', '--max-new-tokens', '16', '--json'];

/** Exactly one line on stderr, starting "graft", and no stack frame. */
function expectOneLine(stderr: string): string {
  const ls = lines(stderr);
  expect(ls, `stderr was:\n${stderr}`).toHaveLength(1);
  expect(ls[0]).toMatch(/^graft/);
  expect(stderr).not.toMatch(/\n\s+at /);
  return ls[0]!;
}

let hub: TestHub;
let cache: string;
let scratch: string;

beforeAll(async () => {
  hub = await TestHub.start();
  hub.addModel(FIXTURE_REPO, fixtureModelFiles());
  cache = mkdtempSync(join(tmpdir(), 'graft-cli-cache-'));
  scratch = mkdtempSync(join(tmpdir(), 'graft-cli-'));
});

afterAll(async () => {
  await hub?.close();
  rmSync(cache, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

describe('graft help and usage errors', () => {
  it('prints the commands with --help and the options of each command', async () => {
    const top = await runGraft(['--help']);
    expect(top.code).toBe(0);
    for (const c of ['download', 'generate', 'info', 'HF_ENDPOINT', 'GRAFT_CACHE']) expect(top.stdout).toContain(c);
    const gen = await runGraft(['generate', '--help']);
    expect(gen.code).toBe(0);
    for (const f of ['--model', '--adapter', '--prompt', '--chat', '--max-new-tokens', '--greedy', '--temperature', '--top-k', '--top-p', '--repetition-penalty', '--seed', '--json']) {
      expect(gen.stdout).toContain(f);
    }
    expect((await runGraft(['download', '--help'])).stdout).toContain('--revision');
    expect((await runGraft(['info', '-h'])).stdout).toContain('--adapter');
  });

  it('runs as `npx graft` in the repository (package.json bin)', async () => {
    const { execFile } = await import('node:child_process');
    const out = await new Promise<{ code: number; stdout: string }>((done) => {
      execFile('npx', ['--offline', 'graft', '--help'], { cwd: REPO_ROOT, timeout: 30_000 }, (err, stdout) =>
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
      );
    });
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^Usage: graft <command>/);
  });

  it('names an unknown flag, an unknown command, a missing value and a bad number in one line', async () => {
    const flag = await runGraft(['generate', '--model', FIXTURE, '--prompt', 'x', '--temprature', '0.5']);
    expect(flag.code).toBe(2);
    expect(expectOneLine(flag.stderr)).toContain('--temprature');

    const cmd = await runGraft(['genrate']);
    expect(cmd.code).toBe(2);
    expect(expectOneLine(cmd.stderr)).toContain('genrate');

    const missing = await runGraft(['generate', '--prompt', 'x']);
    expect(missing.code).toBe(2);
    expect(expectOneLine(missing.stderr)).toContain('--model');

    const bad = await runGraft(['generate', '--model', FIXTURE, '--prompt', 'x', '--max-new-tokens', 'lots']);
    expect(bad.code).toBe(2);
    expect(expectOneLine(bad.stderr)).toMatch(/--max-new-tokens must be an integer/);
  });
});

describe('graft generate and info on a model folder', () => {
  it('reproduces the reference greedy generation with --chat --json', async () => {
    const r = await graft(['generate', '--model', FIXTURE, ...GREEDY_ARGS]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { prompt_ids: number[]; new_ids: number[]; text: string };
    expect(out.prompt_ids).toEqual(reference.greedy.prompt_ids);
    expect(out.new_ids).toEqual(reference.greedy.new_ids);
    expect(typeof out.text).toBe('string');
    expect(lines(r.stdout)).toHaveLength(1);
  });

  it('streams text to stdout without --json, and tokenizes a prompt as-is without --chat', async () => {
    const plain = await graft(['generate', '--model', FIXTURE, '--prompt', 'What is LoRA?', '--greedy', '-n', '4']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout.endsWith('\n')).toBe(true);
    const json = await graft(['generate', '--model', FIXTURE, '--prompt', 'What is LoRA?', '--greedy', '-n', '4', '--json']);
    const out = JSON.parse(json.stdout) as { prompt_ids: number[]; text: string };
    // The chat prompt wraps the text in <|im_start|>user ... ; the plain one is the text alone.
    expect(out.prompt_ids.length).toBeLessThan(reference.greedy.prompt_ids.length);
    expect(out.prompt_ids[0]).not.toBe(reference.greedy.prompt_ids[0]);
    expect(plain.stdout).toBe(`${out.text}\n`);
  });

  it('generates with a LoRA adapter applied', async () => {
    const r = await graft(['generate', '--model', FIXTURE, '--adapter', ADAPTER, ...GREEDY_ARGS]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { prompt_ids: number[]; new_ids: number[] };
    expect(out.prompt_ids).toEqual(reference.greedy.prompt_ids);
    expect(out.new_ids).toHaveLength(16);
    // The reference adapter's lora_B is not zero, so it changes what the model says.
    expect(out.new_ids).not.toEqual(reference.greedy.new_ids);
  });

  it('info --json gives the architecture, parameter count, estimates, the adapter and the GPU', async () => {
    const r = await graft(['info', '--model', FIXTURE, '--adapter', ADAPTER, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as {
      model: { architecture: string; supported: boolean; parameters: number; layers: number; hidden: number; vocab: number; weightDtype: string; weightBytes: number; estimates: { inferenceBytes: number; loraTrainBytes: number; fullTrainBytes: number } };
      adapter: { r: number; alpha: number; targets: string[]; scaling: number; modules: number; parameters: number };
      gpu: { vendor?: string; limits?: { maxBufferSize: number }; features?: { shaderF16: boolean }; error?: string };
    };
    // tiny-llama: embeddings 512·64 (tied lm_head), 2 layers of q 64·64, k/v 32·64, o 64·64, gate/up/down 176·64,
    // two norms of 64 each, and the final norm.
    const perLayer = 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 176 * 64 + 2 * 64;
    expect(info.model).toMatchObject({ architecture: 'LlamaForCausalLM', supported: true, layers: 2, hidden: 64, vocab: 512, weightDtype: 'F32' });
    expect(info.model.parameters).toBe(512 * 64 + 2 * perLayer + 64);
    expect(info.model.weightBytes).toBe(4 * info.model.parameters);
    for (const k of ['inferenceBytes', 'loraTrainBytes', 'fullTrainBytes']) expect(info.model.estimates[k as keyof typeof info.model.estimates]).toBeGreaterThan(info.model.weightBytes);
    expect(info.model.estimates.fullTrainBytes).toBeGreaterThan(info.model.estimates.inferenceBytes);
    // 2 layers × 7 projections, r = 4: A [4, in] and B [out, 4] each.
    expect(info.adapter).toMatchObject({ r: 4, alpha: 8, scaling: 2, modules: 14, parameters: 2 * 4 * (2 * 128 + 2 * 96 + 3 * 240) });
    expect(info.adapter.targets.sort()).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    expect(info.gpu.error, 'a WebGPU adapter').toBeUndefined();
    expect(info.gpu.limits!.maxBufferSize).toBeGreaterThan(0);
    expect(typeof info.gpu.features!.shaderF16).toBe('boolean');

    const text = await graft(['info', '--model', FIXTURE]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/LlamaForCausalLM/);
    expect(text.stdout).toMatch(/Parameters\s+125,248/);
  });

  it('fails in one line on a folder that is not a model, and on a path that does not exist', async () => {
    const empty = mkdtempSync(join(scratch, 'empty-'));
    const r = await graft(['generate', '--model', empty, '--prompt', 'x']);
    expect(r.code).toBe(1);
    expect(expectOneLine(r.stderr)).toContain('config.json');

    const none = await graft(['info', '--model', './no/such/model']);
    expect(none.code).toBe(1);
    expect(expectOneLine(none.stderr)).toMatch(/no model folder/i);

    const adapter = await graft(['info', '--model', FIXTURE, '--adapter', FIXTURE]);
    expect(adapter.code).toBe(1);
    expect(expectOneLine(adapter.stderr)).toContain('adapter_config.json');
  });

  it('shows the stack with GRAFT_DEBUG=1', async () => {
    const empty = mkdtempSync(join(scratch, 'debug-'));
    const r = await runGraft(['generate', '--model', empty, '--prompt', 'x'], { env: { GRAFT_DEBUG: '1' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});

describe('graft download and the cache', () => {
  let endpoint = '';
  beforeAll(() => {
    endpoint = hub.endpoint;
  });
  const env = () => ({ HF_ENDPOINT: endpoint, GRAFT_CACHE: cache, HF_TOKEN: undefined });

  it('fails in one line for a repository the hub does not have', async () => {
    const r = await graft(['download', 'graft-test/no-such-model'], { env: env() });
    expect(r.code).toBe(1);
    const line = expectOneLine(lines(r.stderr).filter((l) => !l.includes('checking the files')).join('\n'));
    expect(line).toMatch(/No such model or file/);
    expect(line).toContain('graft-test/no-such-model');
  });

  it('downloads through a dropped connection (resuming with a Range request) into GRAFT_CACHE', async () => {
    hub.clearRequests();
    hub.fault({ kind: 'drop', file: 'model.safetensors', afterBytes: 200_000 });
    const r = await graft(['download', FIXTURE_REPO], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    const dir = r.stdout.trim();
    expect(dir.startsWith(cache)).toBe(true);
    expect(readFileSync(join(dir, 'model.safetensors')).equals(readFileSync(join(REPO_ROOT, FIXTURE, 'model.safetensors')))).toBe(true);
    // Plain progress lines (stderr is not a TTY), the retry among them.
    expect(r.stderr).toMatch(/downloading config\.json/);
    expect(r.stderr).toMatch(/retrying model\.safetensors/);
    const ranges = hub.requestsFor('model.safetensors', { stage: 'cdn', method: 'GET' }).map((q) => q.range);
    expect(ranges).toContain('bytes=200000-');

    // A second download finds it complete and asks the hub nothing.
    hub.clearRequests();
    const again = await graft(['download', FIXTURE_REPO], { env: env() });
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/already complete/);
    expect(hub.requests).toHaveLength(0);
  });

  it('generates from the cache by repo id with the hub gone', async () => {
    await hub.close();
    const r = await graft(['generate', '--model', FIXTURE_REPO, ...GREEDY_ARGS], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { prompt_ids: number[]; new_ids: number[] };
    expect(out.prompt_ids).toEqual(reference.greedy.prompt_ids);
    expect(out.new_ids).toEqual(reference.greedy.new_ids);
  });

  it('fails in one line when a model is not cached and the hub cannot be reached', async () => {
    const r = await graft(['info', '--model', 'graft-test/not-cached'], { env: env() });
    expect(r.code).toBe(1);
    const line = expectOneLine(lines(r.stderr).filter((l) => !/checking the files|retrying/.test(l)).join('\n'));
    expect(line).toMatch(/Network error/);
  });
});
