// Reading a saved bottleneck adapter folder (the format src/export/bottleneck-adapter.ts writes and README.md
// documents: adapter_config.json with "adapter_type": "bottleneck", adapter_model.safetensors with
// layers.<i>.<attn|mlp>_adapter.<down|up>.<weight|bias>) into a CpuBottleneckAdapter, checked against the base
// model before anything reaches the GPU: hidden_size and num_layers must be the model's, the placement, the
// reduction factor and the non-linearity known, and the tensors exactly those the config implies, with their
// shapes. A mismatch is a ModelError('bad-adapter') that says which model the adapter was made for.
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, parseAdapterWeights } from './adapter';
import {
  BOTTLENECK_NON_LINEARITIES,
  BOTTLENECK_PLACEMENTS,
  bottleneckShapes,
  type BottleneckConfig,
  type BottleneckNonLinearity,
  type BottleneckPlacement,
  type CpuBottleneckAdapter,
} from './bottleneck';
import type { ModelConfig } from './config';
import { ModelError, readJson, type ModelSource } from './source';

/** Whether an adapter_config.json describes a Graft bottleneck adapter (rather than a PEFT one). */
export function isBottleneckConfig(json: Record<string, unknown>): boolean {
  return json.adapter_type === 'bottleneck';
}

/** Checks adapter_config.json of a bottleneck adapter; `where` names the adapter in messages. */
export function parseBottleneckConfig(json: Record<string, unknown>, where: string): BottleneckConfig & { baseModel: string | null } {
  const bad = (why: string) => new ModelError('bad-adapter', `The adapter ${where} cannot be used: ${why}`, { file: ADAPTER_CONFIG });
  if (!isBottleneckConfig(json)) throw bad(`${ADAPTER_CONFIG} has adapter_type ${JSON.stringify(json.adapter_type)}, not "bottleneck".`);
  const whole = (key: string): number => {
    const v = json[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw bad(`${key} in ${ADAPTER_CONFIG} must be a whole number ≥ 1, not ${JSON.stringify(v)}.`);
    return v;
  };
  const placement = json.placement as BottleneckPlacement;
  if (!BOTTLENECK_PLACEMENTS.includes(placement)) throw bad(`placement ${JSON.stringify(json.placement)} is not one of ${BOTTLENECK_PLACEMENTS.map((p) => `"${p}"`).join(', ')}.`);
  const nonLinearity = json.non_linearity as BottleneckNonLinearity;
  if (!BOTTLENECK_NON_LINEARITIES.includes(nonLinearity)) {
    throw bad(`non_linearity ${JSON.stringify(json.non_linearity)} is not one of ${BOTTLENECK_NON_LINEARITIES.map((p) => `"${p}"`).join(', ')}.`);
  }
  const config = {
    placement,
    reductionFactor: whole('reduction_factor'),
    size: whole('bottleneck_size'),
    nonLinearity,
    hiddenSize: whole('hidden_size'),
    numLayers: whole('num_layers'),
    baseModel: typeof json.base_model_name_or_path === 'string' ? json.base_model_name_or_path : null,
  };
  if (config.size * config.reductionFactor !== config.hiddenSize) {
    throw bad(`bottleneck_size ${config.size} × reduction_factor ${config.reductionFactor} is not hidden_size ${config.hiddenSize}.`);
  }
  return config;
}

/** Reads and checks a bottleneck adapter folder against the base model's config; nothing touches the GPU. */
export async function readBottleneckAdapter(source: ModelSource, cfg: ModelConfig): Promise<CpuBottleneckAdapter> {
  const where = source.name;
  const json = await readJson(source, ADAPTER_CONFIG, true, 'an adapter folder needs adapter_config.json and adapter_model.safetensors');
  const config = parseBottleneckConfig(json, where);
  const bad = (why: string, file = ADAPTER_WEIGHTS) => new ModelError('bad-adapter', `The adapter ${where} cannot be used: ${why}`, { file });
  if (config.hiddenSize !== cfg.hiddenSize || config.numLayers !== cfg.numLayers) {
    throw bad(
      `it was made for a model with hidden_size ${config.hiddenSize} and ${config.numLayers} layers${config.baseModel ? ` (${config.baseModel})` : ''}; ` +
        `this ${cfg.architecture} has hidden_size ${cfg.hiddenSize} and ${cfg.numLayers} layers. Load it on the model it was trained on.`,
      ADAPTER_CONFIG,
    );
  }
  const bytes = await source.readFile(ADAPTER_WEIGHTS);
  if (!bytes) throw new ModelError('missing-file', `${ADAPTER_WEIGHTS} is missing from ${where}: an adapter folder needs adapter_config.json and adapter_model.safetensors.`, { file: ADAPTER_WEIGHTS });
  const file = parseAdapterWeights(bytes, where);
  const shapes = bottleneckShapes(config);
  for (const name of file.names) {
    if (!shapes.has(name)) throw bad(`${ADAPTER_WEIGHTS} holds ${name}, which a ${config.placement} adapter on ${config.numLayers} layers does not have.`);
  }
  const tensors = new Map<string, Float32Array>();
  for (const [name, shape] of shapes) {
    if (!file.names.includes(name)) throw bad(`${ADAPTER_WEIGHTS} lacks ${name} (a ${config.placement} adapter has one per layer).`);
    const got = file.info(name).shape;
    if (got.join(',') !== shape.join(',')) throw bad(`${name} is [${got.join(', ')}]; hidden_size ${config.hiddenSize} and bottleneck_size ${config.size} need [${shape.join(', ')}].`);
    try {
      tensors.set(name, file.float32(name));
    } catch (e) {
      throw bad(e instanceof Error ? e.message : String(e));
    }
  }
  const { baseModel: _base, ...shape } = config;
  return { config: shape, tensors };
}
