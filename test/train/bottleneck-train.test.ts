// finetuning_type "adapter" on the fixture model: the trainable tensors and their initialisation, a few steps
// that lower the loss and leave every base weight bit-identical, the saved folder loaded back into Graft giving
// the trained logits bit for bit, a folder made for another model refused; a checkpoint is an adapter folder too,
// and a run resumed from it equals the straight run; DPO needs no frozen copy (the reference is the adapter switched off).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePreferenceText, preparePreferenceData } from '../../src/data/preference';
import { exportBottleneckAdapter } from '../../src/export';
import { bottleneckParamName } from '../../src/model/bottleneck';
import { readBottleneckAdapter } from '../../src/model/bottleneck-file';
import { memorySource } from '../../src/model/source';
import { releaseBatch, uploadBatch } from '../../src/model/transformer';
import { bottleneckWeights, setupMethod } from '../../src/train/methods';
import { SettingsError } from '../../src/train/settings';
import { decodeCheckpoint } from '../../src/train/checkpoint';
import { Trainer } from '../../src/train/trainer';
import { baseWeights, fixtureModel, reference, settings, shortExamples, stopAndResume } from './helpers';

const job = (over: Record<string, unknown> = {}) => settings({ finetuning_type: 'adapter', learning_rate: 1e-2, ...over });

describe('bottleneck adapters: setup', () => {
  it('houlsby: four tensors per site, two sites per layer; down ~ N(0, 0.02²) from the seed, the rest zero', async () => {
    const { lm } = await fixtureModel();
    const m = setupMethod(lm.model, job({ adapter_placement: 'houlsby', reduction_factor: 4, seed: 7 }));
    expect(m.kind).toBe('adapter');
    expect(m.select).toBe('adapter');
    expect(m.bottleneck).toEqual({ placement: 'houlsby', reductionFactor: 4, size: 16, nonLinearity: 'relu', hiddenSize: 64, numLayers: 2 });
    expect(m.params.map((p) => p.name).slice(0, 4)).toEqual([
      'layers.0.attn_adapter.down.weight',
      'layers.0.attn_adapter.down.bias',
      'layers.0.attn_adapter.up.weight',
      'layers.0.attn_adapter.up.bias',
    ]);
    expect(m.params).toHaveLength(16);
    expect(m.params.filter((p) => p.decay).every((p) => p.name.endsWith('.weight'))).toBe(true);
    expect(lm.model.adapter).toBe(m.adapter);
    const w = new Map<string, Float32Array>();
    for (const p of m.params) w.set(p.name, await lm.model.ctx.readF32(p.parts[0]!));
    const down = w.get('layers.1.mlp_adapter.down.weight')!;
    expect(down.length).toBe(16 * 64);
    const mean = down.reduce((s, v) => s + v, 0) / down.length;
    const std = Math.sqrt(down.reduce((s, v) => s + (v - mean) ** 2, 0) / down.length);
    expect(Math.abs(mean)).toBeLessThan(0.003);
    expect(Math.abs(std - 0.02)).toBeLessThan(0.002);
    for (const [name, t] of w) if (!name.endsWith('down.weight')) expect(t.every((v) => v === 0), name).toBe(true);
    m.release();
    expect(lm.model.adapter).toBeNull();
    // Same seed, same weights; another seed, others.
    const again = setupMethod(lm.model, job({ adapter_placement: 'houlsby', reduction_factor: 4, seed: 7 }));
    const other = setupMethod(lm.model, job({ adapter_placement: 'houlsby', reduction_factor: 4, seed: 8 }));
    const name = 'layers.1.mlp_adapter.down.weight';
    const read = async (s: typeof m) => lm.model.ctx.readF32(s.params.find((p) => p.name === name)!.parts[0]!);
    expect(await read(again)).toEqual(down);
    expect(await read(other)).not.toEqual(down);
    again.release();
    other.release();
  });

  it('pfeiffer has the MLP site only; a reduction_factor that does not divide the hidden size is refused', async () => {
    const { lm } = await fixtureModel();
    const m = setupMethod(lm.model, job());
    expect(m.params.map((p) => p.name).filter((n) => n.endsWith('down.weight'))).toEqual(['layers.0.mlp_adapter.down.weight', 'layers.1.mlp_adapter.down.weight']);
    expect(m.bottleneck?.size).toBe(4); // 64 / 16
    m.release();
    let err: unknown;
    try {
      setupMethod(lm.model, job({ reduction_factor: 5 }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SettingsError);
    expect((err as Error).message).toMatch(/reduction_factor: 5 does not divide this model's hidden size 64; choose one of 2, 4, 8, 16, 32, 64/);
    expect(lm.model.adapter).toBeNull();
  });
});

describe('bottleneck adapters: training, saving and loading back', () => {
  it('a few steps lower the loss, the base stays bit-identical; the saved folder reloads to the same logits', async () => {
    const { ctx, lm } = await fixtureModel();
    const before = await baseWeights(lm);
    const trainer = Trainer.create({
      model: lm.model,
      settings: job({ adapter_placement: 'houlsby', reduction_factor: 8, adapter_non_linearity: 'silu', max_steps: 6 }),
      train: shortExamples(lm, 4),
      padTokenId: 0,
    });
    const result = await trainer.run();
    const losses = result.metrics.map((r) => r.loss);
    expect(losses).toHaveLength(6);
    expect(losses[5]!).toBeLessThan(losses[0]! - 0.05);
    // Only the adapter has gradients (and optimizer state).
    expect([...(await trainer.gradients()).keys()].every((n) => n.startsWith('layers.'))).toBe(true);
    const after = await baseWeights(lm);
    for (const [name, w] of after) expect(w, name).toEqual(before.get(name));

    const ids = reference.forward.input_ids;
    const batch = uploadBatch(ctx, ids);
    const logitsWith = async (adapter: Parameters<typeof lm.model.forward>[1]) => {
      const acts = lm.model.forward(batch, { ...adapter, saveForBackward: false });
      const out = await ctx.readF32(acts.logits);
      acts.release();
      return out;
    };
    const trained = await logitsWith({});
    const base = await logitsWith({ adapter: null });
    expect(trained).not.toEqual(base);

    const weights = await trainer.trainableWeights();
    expect(weights.get(bottleneckParamName('layers.0.attn_adapter', 'up', 'weight'))!.some((v) => v !== 0)).toBe(true);
    const files = exportBottleneckAdapter({ adapter: bottleneckWeights(trainer.method.bottleneck!, weights), baseModel: 'tiny-llama', graftVersion: '0.0.0-test' });
    trainer.dispose();
    expect(lm.model.adapter).toBeNull();

    expect(await lm.loadAdapter(memorySource('runs/houlsby', files), 'houlsby')).toBe('houlsby');
    expect(lm.adapters).toContain('houlsby');
    const reloaded = await logitsWith({ adapter: lm.getAdapter('houlsby')! });
    expect(reloaded).toEqual(trained);
    // Generation by name (KV cache path): its first greedy token is the argmax of the adapter's last logits.
    const prompt = ids[0]!.slice(0, 5);
    const promptBatch = uploadBatch(ctx, [prompt]);
    const acts = lm.model.forward(promptBatch, { adapter: lm.getAdapter('houlsby')!, saveForBackward: false });
    const last = (await ctx.readF32(acts.logits)).slice(4 * lm.config.vocabSize);
    acts.release();
    releaseBatch(promptBatch);
    const argmax = last.reduce((best, v, i) => (v > last[best]! ? i : best), 0);
    const viaName = await lm.generate(prompt, { maxNewTokens: 3, greedy: true, adapter: 'houlsby', stopAtEos: false });
    expect(viaName.newIds[0]).toBe(argmax);
    lm.unloadAdapter('houlsby');
    expect(lm.adapters).not.toContain('houlsby');
    await ctx.sync();
    expect(await logitsWith({})).toEqual(base);

    // A folder made for another model is refused, saying what it was made for.
    const config = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json')!)) as Record<string, unknown>;
    const other = new Map(files);
    other.set('adapter_config.json', new TextEncoder().encode(JSON.stringify({ ...config, hidden_size: 32, bottleneck_size: 4, num_layers: 3, base_model_name_or_path: 'other/model' })));
    await expect(lm.loadAdapter(memorySource('runs/other', other))).rejects.toThrow(
      'The adapter runs/other cannot be used: it was made for a model with hidden_size 32 and 3 layers (other/model); this LlamaForCausalLM has hidden_size 64 and 2 layers. Load it on the model it was trained on.',
    );
    expect(lm.adapters).not.toContain('other');
    releaseBatch(batch);
  });
});

describe('bottleneck adapters: resume and DPO', () => {
  it('3 steps straight equal 2 + stop + resume 1: the same losses and the same adapter weights', async () => {
    const { lm } = await fixtureModel();
    const train = shortExamples(lm, 6);
    const s = job({ adapter_placement: 'houlsby', reduction_factor: 16, adapter_non_linearity: 'gelu', per_device_train_batch_size: 2, max_steps: 3, save_strategy: 'steps', save_steps: 100 });
    const { straight, stopped, files, resumed } = await stopAndResume(lm, s, train, 2);
    expect(stopped.metrics).toHaveLength(2);
    // The checkpoint folder is also the adapter folder: it reads back to the checkpoint's trainable weights.
    const saved = decodeCheckpoint(files, 'memory').weights;
    const folder = await readBottleneckAdapter(memorySource('checkpoint-2', files), lm.config);
    expect(folder.config).toMatchObject({ placement: 'houlsby', reductionFactor: 16, size: 4, nonLinearity: 'gelu' });
    expect(folder.tensors.size).toBe(16);
    for (const [name, t] of folder.tensors) expect(t, name).toEqual(saved.get(name));
    expect(resumed.metrics.map((m) => m.loss)).toEqual(straight.metrics.map((m) => m.loss));
    expect(straight.weights.size).toBe(16);
    for (const [name, w] of straight.weights) expect(resumed.weights.get(name), name).toEqual(w);
  });

  it('DPO without a reference copy: step 1 has policy = reference (loss ln 2), then the margin grows', async () => {
    const { lm } = await fixtureModel();
    const text = readFileSync(new URL('../fixtures/data/dpo.json', import.meta.url), 'utf8');
    const train = preparePreferenceData(parsePreferenceText(text, 'dpo.json').records.slice(0, 2), lm.tokenizer, lm.template, { cutoffLen: 40, shuffle: false }).train;
    const s = job({ stage: 'dpo', per_device_train_batch_size: 2, max_steps: 3, learning_rate: 1e-2, dataset: 'dpo.json' });
    const trainer = Trainer.create({ model: lm.model, settings: s, train, padTokenId: lm.tokenizer.padTokenId ?? 0 });
    const result = await trainer.run();
    const [m1, , m3] = result.metrics as unknown as Record<string, number>[];
    expect(Math.abs(m1!.loss! - Math.LN2)).toBeLessThan(1e-5);
    expect(Math.abs(m1!['rewards/margins']!)).toBeLessThan(1e-5);
    expect(m3!.loss).toBeLessThan(Math.LN2);
    expect(m3!['rewards/margins']).toBeGreaterThan(0);
    trainer.dispose();
  });
});
