// Several adapters on one base (AdapterSet): a LoRA and two bottleneck adapters loaded under names; switching
// between them per call changes the logits, switching back restores them bit for bit, the base is unchanged
// throughout; unknown names and ill-fitting adapters are refused; unload frees the adapter's GPU memory.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { adapterParameters } from '../../src/model/adapters';
import { AdapterSet } from '../../src/model/adapter-set';
import { CausalLM, releaseBatch, uploadBatch, type Batch, type ModelAdapter } from '../../src/model/transformer';
import { randomLora } from '../helpers/lora';
import { randomLM } from '../helpers/random-lm';
import { makeRandomModel, RANDOM_MODELS, randomIds } from '../helpers/random-model';
import { randomBottleneck } from '../helpers/bottleneck';

const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

/** The logits with `adapter` for this call (undefined: the model's current adapter). */
async function logits(ctx: GpuContext, model: CausalLM, batch: Batch, adapter?: ModelAdapter | null): Promise<Float32Array> {
  const acts = model.forward(batch, adapter === undefined ? { saveForBackward: false } : { adapter, saveForBackward: false });
  const out = await ctx.readF32(acts.logits);
  acts.release();
  return out;
}

describe('AdapterSet: several adapters on one base', () => {
  it('switching adapters changes logits; switching back restores them exactly; unload frees', async () => {
    const { ctx, m, model, rng } = await randomLM(RANDOM_MODELS.llamaGqaUntied!, 21);
    const set = new AdapterSet(model);
    set.load('summaries', { ...randomLora(ctx, model, rng, 2, 4, { name: 'lora' }).adapter, kind: 'lora' });
    set.load('houlsby', randomBottleneck(ctx, m.cfg, 'houlsby', 'relu', 4, rng, { name: 'houlsby' }).adapter);
    set.load('pfeiffer', randomBottleneck(ctx, m.cfg, 'pfeiffer', 'gelu', 2, rng, { name: 'pfeiffer' }).adapter);
    expect(set.list()).toEqual(['summaries', 'houlsby', 'pfeiffer']);

    const batch = uploadBatch(ctx, randomIds(rng, 2, 5, m.cfg.vocabSize));
    const base = await logits(ctx, model, batch, set.resolve(null));
    const first = new Map<string, Float32Array>();
    for (const name of set.list()) first.set(name, await logits(ctx, model, batch, set.resolve(name)));
    const names = set.list();
    for (let i = 0; i < names.length; i++) {
      expect(same(first.get(names[i]!)!, base), `${names[i]} differs from the base`).toBe(false);
      for (let j = i + 1; j < names.length; j++) expect(same(first.get(names[i]!)!, first.get(names[j]!)!)).toBe(false);
    }
    // Back and forth, per call and through setAdapter: every adapter gives its first logits again, bit for bit.
    for (const name of ['pfeiffer', 'summaries', 'houlsby', 'summaries', 'pfeiffer']) {
      expect(same(await logits(ctx, model, batch, set.resolve(name)), first.get(name)!), name).toBe(true);
    }
    model.setAdapter(set.resolve('houlsby'));
    expect(same(await logits(ctx, model, batch), first.get('houlsby')!)).toBe(true);
    expect(same(await logits(ctx, model, batch, null), base)).toBe(true);

    expect(() => set.resolve('nope')).toThrow('No adapter named "nope" is loaded; loaded: "summaries", "houlsby", "pfeiffer".');
    const other = makeRandomModel(RANDOM_MODELS.qwen3!);
    const wrong = randomBottleneck(ctx, other.cfg, 'pfeiffer', 'relu', 4, rng).adapter;
    expect(() => set.load('wrong', wrong)).toThrow(/hidden size/);
    expect(set.has('wrong')).toBe(false);

    // Unload: the current adapter is switched off, its tensors are freed (the context's bytes go down by theirs).
    const houlsby = set.get('houlsby')!;
    const bytes = adapterParameters(houlsby).reduce((s, [, t]) => s + t.buffer.size, 0);
    await ctx.sync();
    const before = ctx.stats.bytesAllocated;
    expect(set.unload('houlsby')).toBe(true);
    await ctx.sync();
    expect(before - ctx.stats.bytesAllocated).toBe(bytes);
    expect(model.adapter).toBeNull();
    expect(set.list()).toEqual(['summaries', 'pfeiffer']);
    expect(() => set.resolve('houlsby')).toThrow(/No adapter named "houlsby"/);
    expect(set.unload('houlsby')).toBe(false);
    // The others still give their numbers, and the base is the base.
    expect(same(await logits(ctx, model, batch, set.resolve('summaries')), first.get('summaries')!)).toBe(true);
    expect(same(await logits(ctx, model, batch, null), base)).toBe(true);

    set.clear();
    for (const [, t] of adapterParameters(wrong)) t.release();
    releaseBatch(batch);
    model.dispose();
  });
});
