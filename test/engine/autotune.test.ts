// The matmul autotuner (src/engine/autotune.ts): a handful of candidates per shape, each a plan this adapter can
// make, timed (timestamp queries on SwiftShader), the fastest installed on the context and cached per adapter and
// shape; a second call takes the cache; the Node cache survives a new instance; the occupancy probe's size.
// The timings themselves are never asserted (tests do not pass or fail on speed): only which was chosen from them.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSwiftShader } from '../../src/engine/adapter-info';
import { adapterKey, autotune, candidates, installCachedPlans, measureDeviceSize, MemoryTuneCache, tuneKey, type TuneEntry } from '../../src/engine/autotune';
import { deviceSize, matmulChoices, matmulPlan, matmulShapeKey, type MatmulShape } from '../../src/engine/ops/matmul';
import { NodeTuneCache, TUNE_CACHE_FILE } from '../../src/engine/tune-cache-node';
import { testContext } from '../helpers/gpu';

const SHAPE: MatmulShape = { transA: false, transB: true, M: 40, N: 24, K: 36 };

describe('matmul autotuner', () => {
  it('times a handful of valid candidates, installs and caches the fastest, and takes the cache next time', async () => {
    const ctx = await testContext();
    const list = candidates(ctx, SHAPE);
    expect(list.length).toBeGreaterThanOrEqual(3);
    expect(list.length).toBeLessThanOrEqual(10);
    expect(list[0]!.variant).toBe(matmulPlan(ctx, SHAPE).variant);
    // Split-K candidates only where K is long and the tiles are few.
    expect(candidates(ctx, { ...SHAPE, M: 32, N: 16, K: 4096 }).some((c) => (c.splitK ?? 1) > 1)).toBe(true);

    const cache = new MemoryTuneCache();
    const lines: string[] = [];
    const first = await autotune(ctx, [SHAPE, SHAPE], cache, { targetMs: 1, maxRuns: 2, log: (l) => lines.push(l) });
    const entry = first.get(matmulShapeKey(SHAPE))!;
    expect(first.size).toBe(1);
    expect(entry.cached).toBe(false);
    expect(entry.candidates.length).toBe(list.length);
    expect(entry.ns).toBe(Math.min(...entry.candidates.map((c) => c.ns)));
    expect(entry.timing).toBe(ctx.hasTimestamps ? 'timestamps' : 'wall');
    expect(await cache.get(tuneKey(ctx, SHAPE))).toBeDefined();
    expect(tuneKey(ctx, SHAPE)).toBe(`${adapterKey(ctx)}|NT 40x24x36 f32`);
    // Installed: an unforced product of this shape runs the chosen plan.
    expect(matmulChoices(ctx).get(matmulShapeKey(SHAPE))).toEqual(entry.config);
    expect(matmulPlan(ctx, SHAPE).source).toBe('tuned');
    expect(lines.some((l) => l.startsWith('NT 40x24x36 f32: '))).toBe(true);

    const again = await autotune(ctx, [SHAPE], cache, { targetMs: 1, maxRuns: 2 });
    expect(again.get(matmulShapeKey(SHAPE))!.cached).toBe(true);
    expect(again.get(matmulShapeKey(SHAPE))!.config).toEqual(entry.config);
    // The probe's size is cached per adapter too; SwiftShader's plans keep their fixed size.
    expect((await cache.get(`${adapterKey(ctx)}|device size`))!.ns).toBeGreaterThanOrEqual(1);
    if (isSwiftShader(ctx)) expect(deviceSize(ctx)).toBe(8);
  });

  it('keeps plans in a JSON file of the Node cache folder that a new instance reads', async () => {
    const ctx = await testContext();
    const dir = mkdtempSync(join(tmpdir(), 'graft-tune-'));
    try {
      const cache = new NodeTuneCache(dir);
      expect(await cache.get('x')).toBeUndefined();
      const entry = { config: { variant: 'register' as const }, label: 'register 32×32', ns: 5, candidates: [], timing: 'wall' as const, tunedAt: 1 };
      await cache.put(tuneKey(ctx, SHAPE), entry);
      const fresh = new NodeTuneCache(dir);
      expect(await fresh.get(tuneKey(ctx, SHAPE))).toEqual(entry);
      expect((await fresh.entries()).length).toBe(1);
      expect(JSON.parse(readFileSync(join(dir, TUNE_CACHE_FILE), 'utf8')).version).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('installs the cached plans of this adapter only (the worker does on each context it opens), tuning nothing', async () => {
    const ctx = await testContext();
    const shape: MatmulShape = { transA: false, transB: false, M: 33, N: 17, K: 29 };
    const entry: TuneEntry = { config: { variant: 'register' }, label: 'register', ns: 1, candidates: [], timing: 'wall', tunedAt: 0 };
    const cache = new MemoryTuneCache();
    await cache.put(tuneKey(ctx, shape), entry);
    await cache.put('another/gpu/0/elsewhere|NN 33x17x30 f32', { ...entry, config: { variant: 'tiled' } });
    expect(await installCachedPlans(ctx, cache)).toBe(1);
    expect(matmulChoices(ctx).get(matmulShapeKey(shape))).toEqual(entry.config);
    expect(matmulChoices(ctx).has('NN 33x17x30 f32')).toBe(false);
    expect(matmulPlan(ctx, shape).source).toBe('tuned');
  });

  it('measures how many workgroups the device runs at once', async () => {
    const ctx = await testContext();
    const n = await measureDeviceSize(ctx);
    expect(Number.isInteger(n) && n >= 1 && n <= 4096).toBe(true);
  });
});
