import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Dawn's SwiftShader adapter is CPU-bound and these machines have two cores: one test file at a time, in three
// groups; the two that start a process per file run after the first:
//   shared   the test files that change nothing another file would see run one after another in ONE process,
//            so that SwiftShader compiles each kernel once for all of them instead of once per file (most of a
//            GPU test file's time). Each file still gets a GPU context and fixture model of its own
//            (test/shared-file-setup.ts frees them after the file): only the device's compiled pipelines carry
//            over. The price: a native crash there stops the files after it in this group, not only its own.
//   node     a process per file for the files that do change what others would see (OWN_PROCESS below): they
//            mock a module, spy on or stub something, install a global (fake-indexeddb, also through the hub
//            tests' store helpers), touch the environment or the working folder, or run `graft` as a child.
//            (`graft` run in process, test/helpers/graft-in-process.ts, shares the process: it restores the
//            working folder, passes the command its own environment and its GPU contexts on the one device.)
//   browser  the web app in Chromium; built once per run by its globalSetup, and only by runs that include a
//            browser test (vitest runs a project's globalSetup when the run has files of that project).
// Measured on this machine: four trainer test files in one process instead of one each, 48.9 -> 21.7 s; two
// files at a time gave nothing (four GPU files: 85.7 s one at a time, 86.4 s two at a time) because the two
// cores are already busy, so files never run in parallel.
const OWN_PROCESS = /\bvi\.(mock|doMock|spyOn|stubGlobal|stubEnv)\b|fake-indexeddb|from '\.\.\/hub\/stores'|from '\.\/stores'|process\.(env|chdir)|runGraft/;

const testDir = fileURLToPath(new URL('test/', import.meta.url));
const SHARED = readdirSync(testDir, { recursive: true, encoding: 'utf8' })
  .map((f) => f.split('\\').join('/'))
  .filter((f) => f.endsWith('.test.ts') && !f.startsWith('browser/'))
  .filter((f) => !OWN_PROCESS.test(readFileSync(`${testDir}${f}`, 'utf8')))
  .map((f) => `test/${f}`);

export default defineConfig({
  test: {
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: { name: 'shared', include: SHARED, isolate: false, setupFiles: ['test/shared-file-setup.ts'] },
      },
      {
        extends: true,
        test: { name: 'node', include: ['test/**/*.test.ts'], exclude: ['test/browser/**', '**/node_modules/**', ...SHARED] },
      },
      {
        extends: true,
        test: { name: 'browser', include: ['test/browser/**/*.test.ts'], globalSetup: ['test/global-setup.ts'] },
      },
    ],
  },
});
