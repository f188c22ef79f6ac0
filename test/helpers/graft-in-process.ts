// `graft` commands run inside the test's own process: main() of src/cli/main.ts with the arguments, the
// environment and the working folder that a child process started by test/cli/run.ts would have, and its
// stdout and stderr captured. bin/graft.mjs adds only the Ctrl-C wiring and the exit around main(); tests of
// those run the real command (test/cli/run.ts).
//
// In-process, commands share compiled kernels: each gets a fresh GpuContext on the process's one device
// (openGpu of main's io, from test/helpers/one-device.ts), where a child process compiles every kernel again
// (10-30 s a command on SwiftShader). The working folder is restored after each command, and the environment
// is the command's own (never process.env), so files that run graft share the 'shared' project's process.
import { main } from '../../src/cli/main';
import { REPO_ROOT, type RunResult } from '../cli/run';
import { sharedCliGpu } from './one-device';

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
      openGpu: sharedCliGpu,
    });
    return { code, stdout, stderr, graftStderr: stderr, ms: Date.now() - t0 };
  } finally {
    process.chdir(cwd);
  }
}
