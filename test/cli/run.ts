// Runs the real `graft` command (bin/graft.mjs) as a child process, as a person or a script would.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const BIN = resolve(REPO_ROOT, 'bin/graft.mjs');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stderr without the lines Dawn's native code prints while it looks for adapters (not Graft's output). */
  graftStderr: string;
  ms: number;
}

/**
 * Lines the native GPU stack writes to stderr on machines with Mesa's lavapipe installed, which Dawn rejects
 * before it falls back to SwiftShader. They come from C++ code, not from Graft.
 */
const NATIVE_NOISE = [/^Warning: Vulkan shaderUniform\*ArrayDynamicIndexing required\.$/, /^ - While initializing adapter/, /^\s+at InitializeImpl \(/, /^$/];

export function withoutNativeNoise(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => !NATIVE_NOISE.some((re) => re.test(l)))
    .join('\n');
}

export function runGraft(args: string[], options: { env?: Record<string, string | undefined>; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  const env: Record<string, string | undefined> = { ...process.env, GRAFT_DEBUG: undefined, ...options.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const t0 = Date.now();
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr, graftStderr: withoutNativeNoise(stderr), ms: Date.now() - t0 });
    });
  });
}

/** The non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}
