// Builds the web app once per `vitest run` for every browser test (vitest.config.ts runs this for the browser
// project only, so runs without a browser test build nothing). Two builds, side by side in one temporary
// folder that the teardown removes:
//   app   GRAFT_BUILD_ID '' — what every browser test serves (startApp, or appBuilds().app);
//   next  GRAFT_BUILD_ID 'update-test' — the same app as a newer deployment, for the update-prompt tests.
// The tests only read the builds; a test that needs another build (another base path, another env) makes its
// own with buildApp.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildApp } from './helpers/browser';

export default async function setup(project: TestProject): Promise<() => void> {
  const root = mkdtempSync(join(tmpdir(), 'graft-test-builds-'));
  const remove = () => rmSync(root, { recursive: true, force: true });
  try {
    const [app, next] = await Promise.all([
      buildApp({ outDir: join(root, 'app'), env: { GRAFT_BUILD_ID: '' } }),
      buildApp({ outDir: join(root, 'next'), env: { GRAFT_BUILD_ID: 'update-test' } }),
    ]);
    project.provide('graftAppBuilds', { app, next });
  } catch (e) {
    remove();
    throw e;
  }
  return remove;
}
