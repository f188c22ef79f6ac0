import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Dawn's SwiftShader adapter is CPU-bound and these machines have two cores: one test file at a time,
    // each in its own process so that a native crash takes down one file, not the run.
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
