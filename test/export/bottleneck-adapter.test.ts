// The bottleneck adapter folder: adapter_config.json's fields, the safetensors tensors (names, shapes, order,
// values), reading it back against the base model's config, and the refusals of folders that do not fit.
import { describe, expect, it } from 'vitest';
import { bottleneckAdapterConfig, exportBottleneckAdapter } from '../../src/export/bottleneck-adapter';
import { bottleneckShapes, type BottleneckConfig, type CpuBottleneckAdapter } from '../../src/model/bottleneck';
import { readBottleneckAdapter } from '../../src/model/bottleneck-file';
import { SafetensorsFile } from '../../src/model/safetensors';
import { memorySource } from '../../src/model/source';
import { makeRandomModel, RANDOM_MODELS } from '../helpers/random-model';
import { Rng } from '../helpers/rng';

const m = makeRandomModel(RANDOM_MODELS.llamaGqaUntied!); // hidden 36, 2 layers
const config: BottleneckConfig = { placement: 'houlsby', reductionFactor: 4, size: 9, nonLinearity: 'gelu', hiddenSize: 36, numLayers: 2 };

function adapter(): CpuBottleneckAdapter {
  const rng = new Rng(3);
  const tensors = new Map<string, Float32Array>();
  for (const [name, shape] of bottleneckShapes(config)) tensors.set(name, Float32Array.from(rng.tensor(shape.reduce((a, b) => a * b, 1))));
  return { config, tensors };
}

const json = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;

describe('bottleneck adapter folder', () => {
  it('writes the config and sorted F32 tensors; reads back the same numbers', async () => {
    const a = adapter();
    const files = exportBottleneckAdapter({ adapter: a, baseModel: 'org/base', graftVersion: '1.2.3' });
    expect([...files.keys()].sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect(json(files.get('adapter_config.json')!)).toEqual({
      adapter_type: 'bottleneck',
      placement: 'houlsby',
      reduction_factor: 4,
      bottleneck_size: 9,
      non_linearity: 'gelu',
      hidden_size: 36,
      num_layers: 2,
      base_model_name_or_path: 'org/base',
      graft_version: '1.2.3',
    });
    const st = new SafetensorsFile(files.get('adapter_model.safetensors')!, 'adapter_model.safetensors');
    expect(st.names).toHaveLength(16);
    expect([...st.names]).toEqual([...st.names].sort());
    expect(st.info('layers.1.attn_adapter.down.weight')).toMatchObject({ dtype: 'F32', shape: [9, 36] });
    expect(st.info('layers.0.mlp_adapter.up.weight')).toMatchObject({ dtype: 'F32', shape: [36, 9] });
    expect(st.info('layers.0.mlp_adapter.up.bias')).toMatchObject({ dtype: 'F32', shape: [36] });
    const back = await readBottleneckAdapter(memorySource('saved', files), m.cfg);
    expect(back.config).toEqual(config);
    for (const [name, t] of a.tensors) expect(back.tensors.get(name), name).toEqual(t);
  });

  it('refuses adapters for another model, broken configs and missing, extra or mis-shaped tensors', async () => {
    const files = exportBottleneckAdapter({ adapter: adapter(), baseModel: 'org/base', graftVersion: '1.2.3' });
    const cfgJson = json(files.get('adapter_config.json')!);
    const withConfig = (over: Record<string, unknown>) => {
      const f = new Map(files);
      f.set('adapter_config.json', new TextEncoder().encode(JSON.stringify({ ...cfgJson, ...over })));
      return memorySource('x', f);
    };
    const qwen3 = makeRandomModel(RANDOM_MODELS.qwen3!).cfg;
    await expect(readBottleneckAdapter(memorySource('x', files), qwen3)).rejects.toThrow(
      'The adapter x cannot be used: it was made for a model with hidden_size 36 and 2 layers (org/base); this Qwen3ForCausalLM has hidden_size 20 and 2 layers.',
    );
    await expect(readBottleneckAdapter(withConfig({ placement: 'parallel' }), m.cfg)).rejects.toThrow('placement "parallel" is not one of "houlsby", "pfeiffer".');
    await expect(readBottleneckAdapter(withConfig({ non_linearity: 'tanh' }), m.cfg)).rejects.toThrow('non_linearity "tanh" is not one of "relu", "silu", "gelu".');
    await expect(readBottleneckAdapter(withConfig({ bottleneck_size: 8 }), m.cfg)).rejects.toThrow('bottleneck_size 8 × reduction_factor 4 is not hidden_size 36.');
    await expect(readBottleneckAdapter(withConfig({ reduction_factor: 0 }), m.cfg)).rejects.toThrow('reduction_factor in adapter_config.json must be a whole number ≥ 1, not 0.');
    // houlsby tensors read as pfeiffer: the attention adapters are extra.
    await expect(readBottleneckAdapter(withConfig({ placement: 'pfeiffer' }), m.cfg)).rejects.toThrow(
      'adapter_model.safetensors holds layers.0.attn_adapter.down.bias, which a pfeiffer adapter on 2 layers does not have.',
    );
    const fewer = adapter();
    fewer.tensors.delete('layers.1.mlp_adapter.up.bias');
    expect(() => exportBottleneckAdapter({ adapter: fewer, baseModel: 'b', graftVersion: 'v' })).toThrow('exportBottleneckAdapter: layers.1.mlp_adapter.up.bias is missing; [36] needs 36');
    const { writeSafetensors } = await import('../../src/model/safetensors');
    const st = new SafetensorsFile(files.get('adapter_model.safetensors')!, 'w');
    const rewrite = (skip: string, reshape?: [string, number[]]) => {
      const f = new Map(files);
      const tensors = st.names
        .filter((n) => n !== skip)
        .map((n) => ({ name: n, dtype: 'F32' as const, shape: reshape?.[0] === n ? reshape[1] : st.info(n).shape, data: st.float32(n) }));
      f.set('adapter_model.safetensors', writeSafetensors(tensors));
      return memorySource('x', f);
    };
    await expect(readBottleneckAdapter(rewrite('layers.1.mlp_adapter.up.bias'), m.cfg)).rejects.toThrow('adapter_model.safetensors lacks layers.1.mlp_adapter.up.bias');
    await expect(readBottleneckAdapter(rewrite('', ['layers.0.attn_adapter.down.weight', [36, 9]]), m.cfg)).rejects.toThrow(
      'layers.0.attn_adapter.down.weight is [36, 9]; hidden_size 36 and bottleneck_size 9 need [9, 36].',
    );
    expect(bottleneckAdapterConfig({ adapter: adapter(), baseModel: 'b', graftVersion: 'v' }).adapter_type).toBe('bottleneck');
  });
});
