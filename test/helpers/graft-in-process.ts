// `graft` commands run inside the test's own process: main() of src/cli/main.ts with the arguments, the
// environment and the working folder that a child process started by test/cli/run.ts would have, and its
// stdout and stderr captured. bin/graft.mjs adds only the Ctrl-C wiring and the exit around main(); tests of
// those run the real command (test/cli/run.ts).
//
// In-process, a file's commands can share compiled kernels: with src/cli/gpu.ts mocked by oneDeviceCliGpu
// (test/helpers/one-device.ts), each command gets a fresh GpuContext on one device, where a child process
// compiles every kernel again (10-30 s a command on SwiftShader).
import { main } from '../../src/cli/main';
import { REPO_ROOT, type RunResult } from '../cli/run';

/** Runs `graft <args>` in this process; the same result shape as runGraft (stderr has no native noise here). */
export async function graftInProcess(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): Promise<RunResult> {
  const env: Record<string, string | undefined> = { ...process.env, GRAFT_DEBUG: undefined, ...options.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  let stdout = '';
  let stderr = '';
  const t0 = Date.now();
  const cwd = process.cwd();
  // Relative paths in the arguments are read from the working folder, as a child process in it would.
  process.chdir(options.cwd ?? REPO_ROOT);
  try {
    const code = await main(args, {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      env,
      signal: new AbortController().signal,
    });
    return { code, stdout, stderr, graftStderr: stderr, ms: Date.now() - t0 };
  } finally {
    process.chdir(cwd);
  }
}
