// graft info: what a model is and what it needs (from config.json and the weight headers; no GPU memory is
// used), the adapter given with --adapter, and the GPU adapter Dawn offers.
import type { AdapterSummary } from '../engine/adapter-info';
import { formatBytes } from '../hub/errors';
import { describeModel, ESTIMATE_LORA_RANK, ESTIMATE_SEQ_LEN, type ModelInfo } from '../model/info';
import { readAdapter } from '../model/adapter';
import { parseConfig, UnsupportedModelError } from '../model/config';
import { loraScale } from '../model/lora';
import { readJson, type ModelSource } from '../model/source';
import { stringOption, requiredString, type CommandSpec, type Parsed } from './args';
import { describeGpu } from './gpu';
import { resolveAdapterArg, resolveModelArg, type CliEnv } from './model-arg';

export const infoSpec: CommandSpec = {
  name: 'info',
  summary: 'Describe a model (architecture, parameters, memory needed), an adapter, and the GPU.',
  usage: 'info --model <dir|repo> [--adapter <dir>] [--json]',
  details:
    'Reads config.json and the safetensors headers only. Memory estimates are for batch 1 and\n' +
    `${ESTIMATE_SEQ_LEN} tokens with f32 weights (LoRA rank ${ESTIMATE_LORA_RANK} on every projection).`,
  positionals: [],
  required: 0,
  options: {
    model: { type: 'string', short: 'm', value: '<dir|repo>', description: 'Model folder or hub model id.' },
    revision: { type: 'string', value: 'R', description: 'Hub revision of a hub model (default main).' },
    adapter: { type: 'string', value: '<dir>', description: 'A PEFT LoRA adapter folder to describe.' },
    json: { type: 'boolean', description: 'Print one JSON object.' },
  },
  examples: ['graft info --model HuggingFaceTB/SmolLM2-135M', 'graft info --model ./my-model --adapter ./my-adapter --json'],
};

export interface AdapterConfigSummary {
  peftType: 'LORA';
  r: number;
  alpha: number;
  /** alpha / r, or alpha / sqrt(r) with rsLoRA. */
  scaling: number;
  useRslora: boolean;
  /** target_modules as written (module-name suffixes, or a regular expression). */
  targets: string[];
  baseModel?: string;
  /** The adapted layers found in adapter_model.safetensors, checked against the model's shapes. */
  modules: number;
  /** LoRA parameters (A and B of every module). */
  parameters: number;
}

/**
 * Reads a PEFT LoRA adapter folder and checks it against the model (every module a linear layer of the model,
 * with its shapes); throws the model layer's ModelError naming what does not fit.
 */
export async function describeAdapterFolder(adapter: ModelSource, model: ModelSource): Promise<AdapterConfigSummary> {
  const cfg = parseConfig(await readJson(model, 'config.json', true, 'every model folder needs one'));
  const { config, modules } = await readAdapter(adapter, cfg);
  let parameters = 0;
  for (const m of modules.values()) parameters += m.a.length + m.b.length;
  const tm = config.targetModules;
  const out: AdapterConfigSummary = {
    peftType: 'LORA',
    r: config.r,
    alpha: config.alpha,
    scaling: loraScale({ r: config.r, alpha: config.alpha, useRslora: config.useRslora }),
    useRslora: config.useRslora,
    targets: Array.isArray(tm) ? tm : typeof tm === 'string' ? [tm] : [],
    modules: modules.size,
    parameters,
  };
  if (config.baseModel !== null) out.baseModel = config.baseModel;
  return out;
}

export interface InfoReport {
  model: { name: string; dir: string; repo?: string } & ModelInfo;
  adapter?: AdapterConfigSummary & { dir: string };
  gpu: (AdapterSummary & { swiftshader: boolean }) | { error: string; code?: string };
}

export async function runInfo(args: Parsed, io: CliEnv): Promise<number> {
  const v = args.values;
  const modelArg = requiredString('info', v, 'model', '<dir|repo>');
  const revision = stringOption('info', v, 'revision');
  const adapterArg = stringOption('info', v, 'adapter');
  const resolved = await resolveModelArg(modelArg, io, revision !== undefined ? { revision } : {});
  const info = await describeModel(resolved.source);
  const report: InfoReport = {
    model: { name: resolved.source.name, dir: resolved.dir, ...(resolved.repo ? { repo: resolved.repo } : {}), ...info },
    gpu: { error: '' },
  };
  if (adapterArg !== undefined) {
    const source = await resolveAdapterArg(adapterArg);
    if (!info.supported) throw new UnsupportedModelError(`${info.unsupportedReason ?? `${info.architecture} is not supported.`} An adapter can only be checked against a supported model.`);
    report.adapter = { dir: source.dir, ...(await describeAdapterFolder(source, resolved.source)) };
  }
  try {
    const gpu = await describeGpu();
    report.gpu = { ...gpu.adapter, swiftshader: gpu.swiftshaderIcd !== undefined };
  } catch (e) {
    // No GPU is worth reporting, not failing over: the model facts above are still right.
    report.gpu = { error: e instanceof Error ? e.message : String(e), ...((e as { code?: string }).code ? { code: (e as { code: string }).code } : {}) };
  }
  io.stdout.write(v.json ? `${JSON.stringify(report, null, 2)}\n` : formatInfo(report));
  return 0;
}

const count = (n: number) => n.toLocaleString('en-US');

function millions(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

export function formatInfo(r: InfoReport): string {
  const m = r.model;
  const rows: [string, string][] = [];
  rows.push(['Model', m.repo ? `${m.repo} (cached in ${m.dir})` : m.dir]);
  rows.push(['Architecture', m.supported ? `${m.architecture}` : `${m.architecture} — not supported: ${m.unsupportedReason ?? ''}`]);
  rows.push(['Parameters', `${count(m.parameters)} (${millions(m.parameters)})`]);
  rows.push(['Shape', `${m.layers} layers, hidden ${count(m.hidden)}, vocabulary ${count(m.vocab)}`]);
  rows.push(['Weights', `${m.weightDtype}, ${formatBytes(m.weightBytes)} in ${m.files.length} file${m.files.length === 1 ? '' : 's'}`]);
  rows.push([`Memory (${ESTIMATE_SEQ_LEN} tokens, f32)`, '']);
  rows.push(['  generate', formatBytes(m.estimates.inferenceBytes)]);
  rows.push([`  LoRA training (r=${ESTIMATE_LORA_RANK})`, formatBytes(m.estimates.loraTrainBytes)]);
  rows.push(['  full fine-tuning', formatBytes(m.estimates.fullTrainBytes)]);
  if (r.adapter) {
    const a = r.adapter;
    rows.push(['Adapter', `${a.peftType} r=${a.r}, alpha=${a.alpha} (scaling ${+a.scaling.toFixed(4)}${a.useRslora ? ', rsLoRA' : ''})`]);
    rows.push(['  targets', a.targets.join(', ') || 'none listed']);
    rows.push(['  layers adapted', `${a.modules} (${count(a.parameters)} LoRA parameters), all fit this model`]);
    if (a.baseModel) rows.push(['  trained on', a.baseModel]);
    rows.push(['  folder', a.dir]);
  }
  if ('error' in r.gpu) {
    rows.push(['GPU', `none: ${r.gpu.error}`]);
  } else {
    const g = r.gpu;
    const name = g.description || [g.vendor, g.architecture].filter((s) => s && s !== 'unknown').join(' ') || 'WebGPU adapter';
    rows.push(['GPU', `${name}${g.swiftshader ? ' (SwiftShader, software)' : g.isFallback ? ' (fallback adapter)' : ''}`]);
    rows.push(['  vendor / architecture', `${g.vendor} / ${g.architecture}`]);
    rows.push(['  shader-f16', g.features.shaderF16 ? 'yes' : 'no (f32 kernels)']);
    rows.push(['  subgroups', g.features.subgroups ? 'yes' : 'no']);
    rows.push(['  maxBufferSize', formatBytes(g.limits.maxBufferSize)]);
    rows.push(['  maxStorageBufferBindingSize', formatBytes(g.limits.maxStorageBufferBindingSize)]);
    rows.push(['  maxComputeWorkgroupStorageSize', formatBytes(g.limits.maxComputeWorkgroupStorageSize)]);
    rows.push(['  maxComputeInvocationsPerWorkgroup', count(g.limits.maxComputeInvocationsPerWorkgroup)]);
  }
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, val]) => (val ? `${k.padEnd(width)}${val}` : k)).join('\n') + '\n';
}
