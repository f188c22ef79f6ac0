// Incremental decoding with a KV cache: greedy decoding of the fixture's prompt reproduces PyTorch's tokens,
// and the logits forwardCached returns equal the full forward's at the same positions, for every architecture
// and with a LoRA adapter, whether tokens come in a prefill, in chunks or one at a time.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import type { Tensor } from '../../src/engine/tensor';
import { parseConfig } from '../../src/model/config';
import { parseLoraParamName, type LoraAdapter } from '../../src/model/lora';
import { SafetensorsFile } from '../../src/model/safetensors';
import { CausalLM, releaseBatch, uploadBatch } from '../../src/model/transformer';
import { expectClose } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { makeRandomModel, RANDOM_MODELS, randomIds } from '../helpers/random-model';
import { Rng } from '../helpers/rng';

const dir = new URL('../fixtures/tiny-llama/', import.meta.url);
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, dir)));
const reference = JSON.parse(readFileSync(new URL('reference/reference.json', dir), 'utf8')) as {
  greedy: { prompt_ids: number[]; new_ids: number[]; top1_top2_margins: number[] };
};

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

function topMargin(a: Float32Array): number {
  const sorted = Float32Array.from(a).sort();
  return sorted[sorted.length - 1]! - sorted[sorted.length - 2]!;
}

/** Logits [T, V] of the full forward over one sequence. */
async function fullLogits(ctx: GpuContext, model: CausalLM, ids: number[]): Promise<Float32Array> {
  const batch = uploadBatch(ctx, [ids]);
  const acts = model.forward(batch);
  const logits = await ctx.readF32(acts.logits);
  acts.release();
  releaseBatch(batch);
  return logits;
}

/** Feeds `ids` to a fresh cache in pieces of the given sizes; each returned row must equal the full forward's. */
async function checkCachedAgainstFull(ctx: GpuContext, model: CausalLM, ids: number[], pieces: number[], what: string): Promise<void> {
  const V = model.cfg.vocabSize;
  const full = await fullLogits(ctx, model, ids);
  const cache = model.createKvCache(ids.length + 2);
  let at = 0;
  for (const n of pieces) {
    const readbacks = ctx.stats.readbacks;
    const got = await model.forwardCached(ids.slice(at, at + n), cache);
    expect(ctx.stats.readbacks - readbacks, 'one readback per call').toBe(1);
    at += n;
    expect(cache.length).toBe(at);
    expect(got.length).toBe(V);
    expectClose(`${what}: cached logits at position ${at - 1}`, got, full.subarray((at - 1) * V, at * V), { atol: 2e-5, rtol: 1e-4 });
  }
  expect(at).toBe(ids.length);
  cache.release();
}

describe('KV cache on the tiny Llama', () => {
  let ctx: GpuContext;
  let model: CausalLM;

  beforeAll(async () => {
    ctx = await testContext();
    const cfg = parseConfig(JSON.parse(new TextDecoder().decode(read('config.json'))));
    model = CausalLM.create(ctx, cfg, new SafetensorsFile(read('model.safetensors'), 'model.safetensors'));
  });

  it('greedy decoding of the prompt gives PyTorch’s 16 tokens, with the same top-1/top-2 margins', async () => {
    const { prompt_ids, new_ids, top1_top2_margins } = reference.greedy;
    const cache = model.createKvCache(prompt_ids.length + new_ids.length);
    const out: number[] = [];
    const margins: number[] = [];
    let logits = await model.forwardCached(prompt_ids, cache);
    for (let step = 0; step < new_ids.length; step++) {
      const next = argmax(logits);
      out.push(next);
      margins.push(topMargin(logits));
      if (step + 1 < new_ids.length) logits = await model.forwardCached([next], cache);
    }
    expect(out).toEqual(new_ids);
    expectClose('top-1/top-2 margins', margins, top1_top2_margins, { atol: 2e-4, rtol: 1e-3 });
    expect(cache.length).toBe(prompt_ids.length + new_ids.length - 1);

    // reset() forgets the positions: the same prompt again gives the same first logits.
    cache.reset();
    expect(cache.length).toBe(0);
    expect(argmax(await model.forwardCached(prompt_ids, cache))).toBe(new_ids[0]);
    cache.release();
  });

  it('cached logits equal the full forward’s: prefill, a chunk, then single tokens', async () => {
    const ids = [...reference.greedy.prompt_ids, ...reference.greedy.new_ids];
    await checkCachedAgainstFull(ctx, model, ids, [10, 3, 1, 1, 4, ...new Array(13).fill(1)], 'tiny-llama');
  });

  it('with a LoRA adapter', async () => {
    const file = new SafetensorsFile(read('reference/init_adapter/adapter_model.safetensors'), 'adapter');
    const modules = new Map<string, { a: Tensor; b: Tensor }>();
    for (const name of file.names) {
      const p = parseLoraParamName(name)!;
      const m = modules.get(p.module) ?? ({} as { a: Tensor; b: Tensor });
      m[p.which === 'A' ? 'a' : 'b'] = ctx.upload(file.info(name).shape, file.float32(name), 'f32', { persistent: true });
      modules.set(p.module, m);
    }
    const adapter: LoraAdapter = { name: 'init', r: 4, alpha: 8, useRslora: false, modules };
    model.setAdapter(adapter);
    await checkCachedAgainstFull(ctx, model, reference.greedy.prompt_ids, [9, 1, 5, 1], 'tiny-llama + LoRA');
    model.setAdapter(null);
  });

  it('refuses to overflow the cache, a cache of another model, and caches beyond the position table', async () => {
    const cache = model.createKvCache(4);
    await model.forwardCached([1, 2, 3], cache);
    await expect(model.forwardCached([4, 5], cache)).rejects.toThrow(/3 cached \+ 2 new tokens exceed the cache's 4/);
    await expect(model.forwardCached([600], cache)).rejects.toThrow(/token id 600/);
    const other = CausalLM.create(ctx, model.cfg, new SafetensorsFile(read('model.safetensors'), 'model.safetensors'), { maxPositions: 32 });
    await expect(other.forwardCached([1], cache)).rejects.toThrow(/another model/);
    expect(() => other.createKvCache(33)).toThrow(/33 tokens spans 33 positions, more than this model instance holds \(32\)/);
    cache.release();
    await expect(model.forwardCached([1], cache)).rejects.toThrow(/released/);
    other.dispose();
  });
});

describe('KV cache on every architecture equals the full forward', () => {
  for (const key of ['llama3Tied', 'qwen2', 'qwen3', 'gpt2Prefixed', 'gpt2Bare'] as const) {
    const spec = RANDOM_MODELS[key]!;
    it(spec.name, async () => {
      const ctx = await testContext();
      const m = makeRandomModel(spec);
      const model = CausalLM.create(ctx, m.cfg, m.weights);
      const ids = randomIds(new Rng(spec.seed), 1, 12, m.cfg.vocabSize)[0]!;
      await checkCachedAgainstFull(ctx, model, ids, [5, 1, 2, 1, 1, 1, 1], spec.name);
      model.dispose();
    });
  }
});
