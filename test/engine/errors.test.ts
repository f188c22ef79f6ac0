// The typed errors of the engine core (src/engine/errors.ts, GpuContext): each failure arrives as a GpuError
// with a code a caller can branch on and a message that says what to do.
import { describe, expect, it } from 'vitest';
import { GpuContext } from '../../src/engine/context';
import { requestNodeAdapter } from '../../src/engine/adapter-node';
import { GpuError, limitExceeded, outOfMemory } from '../../src/engine/errors';
import type { KernelSpec } from '../../src/engine/kernel';
import { testContext } from '../helpers/gpu';

/** What a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<GpuError> {
  const r = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(r, 'expected a rejection').toBeInstanceOf(GpuError);
  return r as GpuError;
}

function thrown(f: () => unknown): GpuError {
  let r: unknown;
  try {
    f();
  } catch (e) {
    r = e;
  }
  expect(r, 'expected a throw').toBeInstanceOf(GpuError);
  return r as GpuError;
}

/** A kernel whose WGSL does not compile: it uses a name that is declared nowhere. */
const bogus: KernelSpec = {
  name: 'errors_test_bogus',
  source: `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  out[gid.x] = not_declared_anywhere;
}`,
  bindings: [{ name: 'out', access: 'read_write', type: 'f32' }],
};

const copyKernel: KernelSpec = {
  name: 'errors_test_copy',
  source: `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x < params.n) { dst[gid.x] = src[gid.x] + 1.0; }
}`,
  bindings: [
    { name: 'dst', access: 'read_write', type: 'f32' },
    { name: 'src', access: 'read', type: 'f32' },
  ],
  params: [['n', 'u32']],
};

/** The context still computes correctly after an error was reported. */
async function expectHealthy(ctx: GpuContext): Promise<void> {
  const src = ctx.upload([5], Float32Array.of(1, 2, 3, 4, 5));
  const dst = ctx.zeros([5]);
  ctx.dispatch(ctx.kernel(copyKernel), { dst, src }, { n: 5 }, [1]);
  expect(Array.from(await ctx.readF32(dst))).toEqual([2, 3, 4, 5, 6]);
  src.release();
  dst.release();
}

describe('GPU errors', () => {
  it('a WGSL kernel that does not compile surfaces as a validation GpuError at the next sync', async () => {
    const ctx = await testContext();
    expect(() => ctx.kernel(bogus)).not.toThrow(); // compilation is asynchronous ...
    const e = await rejection(ctx.sync()); // ... and its error is reported at the next sync
    expect(e.code).toBe('validation');
    expect(e.name).toBe('GpuError');
    // The message names the kernel and carries the compiler's diagnosis.
    expect(e.message).toContain('errors_test_bogus');
    expect(e.message).toContain('not_declared_anywhere');
    expect(e.message).toMatch(/bug in Graft/);
    // Reported once, and the context stays usable.
    await ctx.sync();
    await expectHealthy(ctx);
  });

  it('... or at the next read, also when the broken kernel was dispatched', async () => {
    const ctx = await testContext();
    const k = ctx.kernel({ ...bogus, name: 'errors_test_bogus_read' });
    const t = ctx.zeros([64]);
    ctx.dispatch(k, { out: t }, {}, [1]);
    const e = await rejection(ctx.read(t));
    expect(e.code).toBe('validation');
    // The first error reported is the compile error, not the consequential invalid-pipeline one.
    expect(e.message).toMatch(/kernel errors_test_bogus_read did not compile/);
    expect(e.message).toContain('not_declared_anywhere');
    t.release();
    await ctx.sync();
    await expectHealthy(ctx);
  });

  it('a kernel that failed to compile is not served from the cache again', async () => {
    const ctx = await testContext();
    const spec = { ...bogus, name: 'errors_test_bogus_twice' };
    ctx.kernel(spec);
    expect((await rejection(ctx.sync())).message).toMatch(/errors_test_bogus_twice did not compile/);
    ctx.kernel(spec); // compiled afresh, so its error is reported again
    expect((await rejection(ctx.sync())).message).toMatch(/errors_test_bogus_twice did not compile/);
    await expectHealthy(ctx);
  });

  it('a tensor larger than maxStorageBufferBindingSize throws limit-exceeded before allocating', async () => {
    const ctx = await testContext();
    const max = ctx.limits.maxStorageBufferBindingSize;
    const before = ctx.stats.buffersCreated;
    const elements = Math.floor(max / 4) + 1;
    for (const make of [
      () => ctx.empty([elements]),
      () => ctx.zeros([2, Math.ceil(elements / 2)]),
      () => ctx.empty([elements], 'f32', { persistent: true, label: 'the test weights' }),
    ]) {
      const e = thrown(make);
      expect(e.code).toBe('limit-exceeded');
      expect(e.message).toMatch(/Lower the batch size or sequence length, or pick a smaller model/);
    }
    expect(thrown(() => ctx.empty([elements], 'f32', { label: 'the test weights' })).message).toMatch(/^the test weights needs a buffer of/);
    expect(ctx.stats.buffersCreated).toBe(before);
    await expectHealthy(ctx);
  });

  it('after destroy() a read rejects with device-lost, and keeps doing so', async () => {
    // A context of its own: the shared test context must survive this test.
    const { adapter, gpu } = await requestNodeAdapter();
    const ctx = await GpuContext.create(adapter, gpu);
    const t = ctx.upload([4], Float32Array.of(1, 2, 3, 4));
    expect(Array.from(await ctx.readF32(t))).toEqual([1, 2, 3, 4]);
    ctx.destroy();
    // Synchronous calls fail at once, before the device's lost promise has settled.
    expect(thrown(() => ctx.zeros([4])).code).toBe('device-lost');
    const e = await rejection(ctx.read(t));
    expect(e.code).toBe('device-lost');
    expect(e.message).toMatch(/the GPU context was closed/);
    expect(e.message).toMatch(/checkpoints are safe/);
    expect(ctx.isLost).toBe(true);
    expect((await rejection(ctx.read(t))).code).toBe('device-lost');
    expect((await rejection(ctx.sync())).code).toBe('device-lost');
    // Synchronous use after the loss was observed throws device-lost too.
    expect(thrown(() => ctx.empty([4])).code).toBe('device-lost');
  });

  it('every message says what to do', () => {
    expect(outOfMemory('the activations', 3 * 2 ** 30).message).toMatch(/3\.0 GiB.*Lower the batch size, sequence length or LoRA rank, or pick a smaller model/);
    expect(outOfMemory('x', 1).code).toBe('out-of-memory');
    expect(limitExceeded('the logits', 2 ** 31, 2 ** 30).message).toMatch(/the logits needs a buffer of 2\.0 GiB.*\(1\.0 GiB\)\. Lower/);
    // Sizes that round alike are shown exactly.
    expect(limitExceeded('w', 2 ** 30 + 16, 2 ** 30).message).toMatch(/1\.0 GiB \(1073741840 bytes\).*1\.0 GiB \(1073741824 bytes\)/);
  });
});
