// The GPU for tests: a real WebGPU adapter through Dawn, or a loud failure that says how to get one.
// Kernel tests never skip and never run on a mock.
//
// The context is made on the process's one device (test/helpers/one-device.ts), which the `graft` commands
// that a test file runs in process share, so that each kernel compiles once per process. Where one process
// runs several test files (the 'shared' project of vitest.config.ts), each file still gets a context of its own:
// test/shared-file-setup.ts calls endTestFile after every file, which frees what the file's context and models
// hold; the next file's context reuses the device's compiled pipelines.
import type { GpuContext } from '../../src/engine/context';
import { sharedDevice } from './one-device';

let ctx: Promise<GpuContext> | undefined;
const atEnd: (() => void | Promise<void>)[] = [];

/** This test file's GPU context. */
export function testContext(): Promise<GpuContext> {
  ctx ??= sharedDevice().then((d) => d.context());
  return ctx;
}

/** Registers what to free when the test file ends (a model the file's helpers loaded once for the file). */
export function atTestFileEnd(release: () => void | Promise<void>): void {
  atEnd.push(release);
}

/** Frees the file's models and its context's pooled buffers; the next testContext() is a fresh context. */
export async function endTestFile(): Promise<void> {
  for (const release of atEnd.splice(0).reverse()) await release();
  if (!ctx) return;
  const done = await ctx.catch(() => undefined);
  ctx = undefined;
  if (!done || done.isLost) return;
  await done.sync().catch(() => undefined);
  done.trimPool();
}

/**
 * The same context, reporting maxComputeWorkgroupsPerDimension = n. A grid over more than 65535 workgroups
 * per dimension on SwiftShader would take minutes (about 0.1 ms per workgroup), so the 2-D grid path
 * (workgroup index = wid.x + wid.y · nwg.x, surplus workgroups idle) is exercised at a small size this way.
 */
export function withGridLimit(ctx: GpuContext, n: number): GpuContext {
  const limits = new Proxy(ctx.limits, {
    get: (t, p) => (p === 'maxComputeWorkgroupsPerDimension' ? n : Reflect.get(t, p)),
  });
  return new Proxy(ctx, {
    get: (t, p) => {
      if (p === 'limits') return limits;
      const v: unknown = Reflect.get(t, p, t);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}
