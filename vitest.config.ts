import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Dawn's SwiftShader adapter is CPU-bound and these machines have two cores: one test file at a time
    // (across both projects below), each in its own process so that a native crash takes down one file, not
    // the run.
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two projects only so that the web app is built once per run, and only by runs that include a browser
    // test: vitest runs a project's globalSetup when the run has files of that project.
    projects: [
      {
        extends: true,
        test: { name: 'node', include: ['test/**/*.test.ts'], exclude: ['test/browser/**', '**/node_modules/**'] },
      },
      {
        extends: true,
        test: { name: 'browser', include: ['test/browser/**/*.test.ts'], globalSetup: ['test/global-setup.ts'] },
      },
    ],
  },
});
