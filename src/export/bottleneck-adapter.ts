// A bottleneck adapter saved on its own, in Graft's format (read back by src/model/bottleneck-file.ts): the two
// files and why it is not a PEFT folder, docs/export.md ("A bottleneck adapter").
import { bottleneckShapes, type CpuBottleneckAdapter } from '../model/bottleneck';
import { writeSafetensors, type TensorToWrite } from '../model/safetensors';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from './peft-adapter';

export const BOTTLENECK_ADAPTER_TYPE = 'bottleneck';

export interface BottleneckAdapterInput {
  adapter: CpuBottleneckAdapter;
  /** The base model (hub id or folder name) the adapter was trained on. */
  baseModel: string;
  /**
   * Graft's version (package.json), recorded for whoever reads the folder later; left out of the config when
   * not given (training checkpoints, written where the version is not known).
   */
  graftVersion?: string;
}

/** adapter_config.json's object. */
export function bottleneckAdapterConfig(input: BottleneckAdapterInput): Record<string, unknown> {
  const c = input.adapter.config;
  return {
    adapter_type: BOTTLENECK_ADAPTER_TYPE,
    placement: c.placement,
    reduction_factor: c.reductionFactor,
    bottleneck_size: c.size,
    non_linearity: c.nonLinearity,
    hidden_size: c.hiddenSize,
    num_layers: c.numLayers,
    base_model_name_or_path: input.baseModel,
    ...(input.graftVersion !== undefined ? { graft_version: input.graftVersion } : {}),
  };
}

/** The tensors, sorted by name; throws when one is missing or holds the wrong number of values. */
export function bottleneckAdapterTensors(adapter: CpuBottleneckAdapter): TensorToWrite[] {
  const c = adapter.config;
  if (c.size * c.reductionFactor !== c.hiddenSize) {
    throw new Error(`exportBottleneckAdapter: bottleneck size ${c.size} × reduction_factor ${c.reductionFactor} is not the hidden size ${c.hiddenSize}`);
  }
  const tensors: TensorToWrite[] = [];
  for (const [name, shape] of bottleneckShapes(c)) {
    const data = adapter.tensors.get(name);
    const n = shape.reduce((a, b) => a * b, 1);
    if (!data || data.length !== n) throw new Error(`exportBottleneckAdapter: ${name} ${data ? `holds ${data.length} values` : 'is missing'}; [${shape.join(', ')}] needs ${n}`);
    tensors.push({ name, dtype: 'F32', shape, data });
  }
  if (adapter.tensors.size !== tensors.length) {
    const extra = [...adapter.tensors.keys()].find((k) => !tensors.some((t) => t.name === k));
    throw new Error(`exportBottleneckAdapter: ${extra} is not a tensor of a ${c.placement} adapter on ${c.numLayers} layers`);
  }
  tensors.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  return tensors;
}

/** adapter_model.safetensors + adapter_config.json, as files (name → bytes). */
export function exportBottleneckAdapter(input: BottleneckAdapterInput): Map<string, Uint8Array> {
  const weights = writeSafetensors(bottleneckAdapterTensors(input.adapter), { format: 'pt' });
  const config = new TextEncoder().encode(`${JSON.stringify(bottleneckAdapterConfig(input), null, 2)}\n`);
  return new Map([
    [ADAPTER_CONFIG, config],
    [ADAPTER_WEIGHTS, weights],
  ]);
}
