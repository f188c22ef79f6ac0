#!/usr/bin/env node
// The `graft` command (package.json "bin"; `npx graft` in the repository). Runs the TypeScript sources
// directly, without a build step: tsx compiles them on import, and scripts/raw-loader.mjs gives Node Vite's
// `?raw` imports (the engine's WGSL). Registered in this order so that the `?raw` hook runs before tsx's.
import { register } from 'tsx/esm/api';

register();
await import('../scripts/raw-loader.mjs');
const { main } = await import('../src/cli/main.ts');

// `graft generate ... | head -1`: a reader that went away is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

const controller = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  // The first Ctrl-C cancels cleanly (a download keeps what it stored); a second one ends at once.
  if (++interrupts > 1) process.exit(130);
  controller.abort(new Error('interrupted'));
});

const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: controller.signal,
});

// Dawn keeps the event loop alive while a GPU instance exists, so exit explicitly once output is flushed.
const drain = (s) => (s.writableNeedDrain ? new Promise((r) => s.once('drain', r)) : undefined);
await Promise.all([drain(process.stdout), drain(process.stderr)]);
process.exit(code);
