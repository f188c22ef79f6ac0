// graft info: what a model is and what it needs (from config.json and the weight headers; no GPU memory is
// used), the adapter given with --adapter (PEFT LoRA or a Graft bottleneck adapter), and the GPU adapter Dawn
// offers. With --budget, the longest training sequence (batch 1) that the memory planner (src/model/memory-plan.ts)
// fits in that many bytes: WebGPU tells the largest buffer and binding but not how much memory the device has,
// so the budget is the person's.
import type { AdapterSummary } from '../engine/adapter-info';
import { formatBytes } from '../engine/errors';
import { describeModel, ESTIMATE_LORA_RANK, ESTIMATE_SEQ_LEN, planShapeFromNumbers, shapeNumbers, type ModelInfo } from '../model/info';
import { largestFittingSeqLen, PLAN_PRECISIONS, type PlanPrecision } from '../model/memory-plan';
import { DEFAULT_MAX_POSITIONS } from '../model/transformer';
import { readAdapter } from '../model/adapter';
import { bottleneckKeys } from '../model/bottleneck';
import { isBottleneckConfig, parseBottleneckConfig, readBottleneckAdapter } from '../model/bottleneck-file';
import { parseConfig, UnsupportedModelError } from '../model/config';
import { loraScale } from '../model/lora';
import { readPromptAdapter } from '../model/prompt-tuning';
import { readJson, type ModelSource } from '../model/source';
import { stringOption, requiredString, UsageError, type CommandSpec, type Parsed } from './args';
import { describeGpu } from './gpu';
import { MODEL_OPTIONS, resolveAdapterArg, resolveModelArg, type CliEnv } from './model-arg';

export const infoSpec: CommandSpec = {
  name: 'info',
  summary: 'Describe a model (architecture, parameters, memory needed), an adapter, and the GPU.',
  usage: 'info --model <dir|repo> [--adapter <dir>] [--budget 4GB] [--json]',
  details:
    'Reads config.json and the safetensors headers only. Memory estimates are for batch 1 and\n' +
    `${ESTIMATE_SEQ_LEN} tokens with f32 weights (LoRA rank ${ESTIMATE_LORA_RANK} on every projection): the memory planner's\n` +
    'predicted peak of a training step. --budget: the longest training sequence that fits that much\n' +
    'GPU memory (WebGPU does not report how much a device has, so say it).',
  options: {
    ...MODEL_OPTIONS,
    adapter: { type: 'string', value: '<dir|repo>', description: 'An adapter folder or hub adapter id (owner/name[@revision]) to describe (PEFT LoRA or PROMPT_TUNING, or bottleneck).' },
    budget: { type: 'string', value: 'SIZE', description: 'GPU memory to plan training for, e.g. 4GB, 512MiB (batch 1).' },
    json: { type: 'boolean', description: 'Print one JSON object.' },
  },
  examples: ['graft info --model HuggingFaceTB/SmolLM2-135M --budget 4GB', 'graft info --model ./my-model --adapter ./my-adapter --json'],
};

export type AdapterConfigSummary = LoraAdapterSummary | BottleneckAdapterSummary | PromptAdapterSummary;

/** A PEFT PROMPT_TUNING folder (README "Prompt tuning"), checked against the model. */
export interface PromptAdapterSummary {
  peftType: 'PROMPT_TUNING';
  numVirtualTokens: number;
  tokenDim: number;
  /** prompt_tuning_init as written (RANDOM, TEXT) and its text. */
  init: string | null;
  initText: string | null;
  baseModel?: string;
  parameters: number;
}

/** A Graft bottleneck adapter folder (README "Bottleneck adapters"), checked against the model. */
export interface BottleneckAdapterSummary {
  adapterType: 'bottleneck';
  placement: string;
  reductionFactor: number;
  bottleneckSize: number;
  nonLinearity: string;
  baseModel?: string;
  /** Adapters in the model (one or two per layer). */
  modules: number;
  parameters: number;
}

export interface LoraAdapterSummary {
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
 * Reads an adapter folder and checks it against the model: a PEFT LoRA one (every module a linear layer of the
 * model, with its shapes) or a bottleneck one (hidden size, layers, every tensor's shape); throws the model
 * layer's ModelError naming what does not fit.
 */
export async function describeAdapterFolder(adapter: ModelSource, model: ModelSource): Promise<AdapterConfigSummary> {
  const cfg = parseConfig(await readJson(model, 'config.json', true, 'every model folder needs one'));
  const json = await readJson(adapter, 'adapter_config.json', false);
  if (json && isBottleneckConfig(json)) {
    const bn = await readBottleneckAdapter(adapter, cfg);
    const base = parseBottleneckConfig(json, adapter.name).baseModel;
    const c = bn.config;
    return {
      adapterType: 'bottleneck',
      placement: c.placement,
      reductionFactor: c.reductionFactor,
      bottleneckSize: c.size,
      nonLinearity: c.nonLinearity,
      ...(base !== null ? { baseModel: base } : {}),
      modules: bottleneckKeys(c).length,
      parameters: [...bn.tensors.values()].reduce((n, t) => n + t.length, 0),
    };
  }
  if (json?.peft_type === 'PROMPT_TUNING') {
    const p = await readPromptAdapter(adapter, cfg);
    return {
      peftType: 'PROMPT_TUNING',
      numVirtualTokens: p.numVirtualTokens,
      tokenDim: p.tokenDim,
      init: typeof json.prompt_tuning_init === 'string' ? json.prompt_tuning_init : null,
      initText: typeof json.prompt_tuning_init_text === 'string' ? json.prompt_tuning_init_text : null,
      ...(p.baseModel !== null ? { baseModel: p.baseModel } : {}),
      parameters: p.embeddings.length,
    };
  }
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

/**
 * The longest training sequences (batch 1, multiples of 64) the planner fits in a budget, up to the positions a
 * model instance holds by default (min(max_position_embeddings, 8192)), which also size its RoPE table.
 */
export interface FitReport {
  budgetBytes: number;
  maxPositions: number;
  loraRank: number;
  /** The precision the frozen base is held in by default (the checkpoint's: 16-bit for F16/BF16, else f32). */
  defaultPrecision: PlanPrecision;
  /** LoRA at the default precision. 0: not even 64 tokens fit. */
  loraMaxSeqLen: number;
  /** Full fine-tuning (every weight trains in f32, whatever the checkpoint's precision). */
  fullMaxSeqLen: number;
  /** LoRA with the base held f32, 16-bit, 8-bit and 4-bit (quantization_bit 8 / 4). */
  loraMaxSeqLenByPrecision: Record<PlanPrecision, number>;
  /**
   * When LoRA does not fit at the default precision: the smallest base LoRA allows (4-bit, quantization_bit 4)
   * and a sentence saying so; absent when it fits as it is.
   */
  pick?: { precision: PlanPrecision; maxSeqLen: number; sentence: string };
}

/** The setting that holds the base at `p` (for sentences). */
export function precisionSetting(p: PlanPrecision): string {
  return p === '4-bit' ? 'quantization_bit 4' : p === '8-bit' ? 'quantization_bit 8' : p === '16-bit' ? "the checkpoint's 16-bit weights" : 'f32 weights';
}

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/** "4GB", "4 GiB", "512MB", "1e9": bytes. */
export function parseByteSize(text: string, flag = '--budget'): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(text);
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  const bytes = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!(bytes > 0) || !Number.isFinite(bytes)) throw new UsageError(`info: ${flag} ${JSON.stringify(text)} is not a memory size; write it like 4GB, 512MiB or 2e9`);
  return Math.floor(bytes);
}

export function fitReport(info: ModelInfo, cfg: Record<string, unknown>, budgetBytes: number): FitReport {
  const plan = planShapeFromNumbers(shapeNumbers(cfg), info.parameters);
  const declared = [cfg.max_position_embeddings, cfg.n_positions].find((x): x is number => typeof x === 'number' && x > 0);
  const maxPositions = Math.min(declared ?? DEFAULT_MAX_POSITIONS, DEFAULT_MAX_POSITIONS);
  const o = { batch: 1, loraRank: ESTIMATE_LORA_RANK, maxPositions, limit: maxPositions };
  const defaultPrecision = info.estimates.defaultPrecision;
  const byPrecision = Object.fromEntries(
    PLAN_PRECISIONS.map((p) => [p, largestFittingSeqLen(plan, budgetBytes, { ...o, method: 'lora', precision: p })]),
  ) as Record<PlanPrecision, number>;
  const report: FitReport = {
    budgetBytes,
    maxPositions,
    loraRank: ESTIMATE_LORA_RANK,
    defaultPrecision,
    loraMaxSeqLen: byPrecision[defaultPrecision],
    fullMaxSeqLen: largestFittingSeqLen(plan, budgetBytes, { ...o, method: 'full' }),
    loraMaxSeqLenByPrecision: byPrecision,
  };
  if (report.loraMaxSeqLen === 0) {
    // LoRA, bottleneck adapters and prompt tuning allow a 4-bit base: the smallest there is.
    const len = byPrecision['4-bit'];
    const budget = formatBytes(budgetBytes);
    report.pick = {
      precision: '4-bit',
      maxSeqLen: len,
      sentence:
        len > 0
          ? `LoRA does not fit ${budget} with ${precisionSetting(defaultPrecision)}; with quantization_bit 4 (QLoRA: a 4-bit NF4 base) it fits up to ${count(len)} tokens.`
          : `LoRA does not fit ${budget} even with quantization_bit 4 (a 4-bit base, the smallest there is): pick a smaller model or give more memory.`,
    };
  }
  return report;
}

export interface InfoReport {
  model: { name: string; dir: string; repo?: string } & ModelInfo;
  fit?: FitReport;
  adapter?: AdapterConfigSummary & { dir: string };
  gpu: (AdapterSummary & { swiftshader: boolean }) | { error: string; code?: string };
}

export async function runInfo(args: Parsed, io: CliEnv): Promise<number> {
  const v = args.values;
  const modelArg = requiredString('info', v, 'model', '<dir|repo>');
  const revision = stringOption('info', v, 'revision');
  const adapterArg = stringOption('info', v, 'adapter');
  const budgetArg = stringOption('info', v, 'budget');
  const budget = budgetArg !== undefined ? parseByteSize(budgetArg) : undefined;
  const resolved = await resolveModelArg(modelArg, io, revision !== undefined ? { revision } : {});
  const info = await describeModel(resolved.source);
  const report: InfoReport = {
    model: { name: resolved.source.name, dir: resolved.dir, ...(resolved.repo ? { repo: resolved.repo } : {}), ...info },
    gpu: { error: '' },
  };
  if (budget !== undefined) {
    report.fit = fitReport(info, await readJson(resolved.source, 'config.json', true, 'every model folder needs one'), budget);
  }
  if (adapterArg !== undefined) {
    const source = await resolveAdapterArg(adapterArg, io);
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
  const dp = m.estimates.defaultPrecision;
  rows.push([`LoRA training by how the base is held (${ESTIMATE_SEQ_LEN} tokens, r=${ESTIMATE_LORA_RANK})`, '']);
  for (const p of PLAN_PRECISIONS) {
    const note = p === dp ? 'as it loads by default' : p === '8-bit' ? 'quantization_bit 8' : p === '4-bit' ? 'quantization_bit 4 (QLoRA)' : p === 'f32' ? 'every weight f32' : '';
    rows.push([`  ${p}`, `${formatBytes(m.estimates.loraTrainByPrecision[p])}${note ? `  (${note})` : ''}`]);
  }
  if (r.fit) {
    const f = r.fit;
    const len = (n: number) => (n > 0 ? `${count(n)} tokens` : 'does not fit (not even 64 tokens)');
    rows.push([`Longest training sequence in ${formatBytes(f.budgetBytes)} (batch 1, at most ${count(f.maxPositions)})`, '']);
    rows.push([`  LoRA (r=${f.loraRank})`, `${len(f.loraMaxSeqLen)}  (${f.defaultPrecision} base)`]);
    for (const p of ['8-bit', '4-bit'] as const) rows.push([`  LoRA, ${p} base (quantization_bit ${p === '8-bit' ? 8 : 4})`, len(f.loraMaxSeqLenByPrecision[p])]);
    rows.push(['  full fine-tuning', len(f.fullMaxSeqLen)]);
    if (f.pick) rows.push([`  ${f.pick.sentence}`, '']);
  }
  if (r.adapter && 'adapterType' in r.adapter) {
    const a = r.adapter;
    rows.push(['Adapter', `bottleneck (${a.placement}), size ${a.bottleneckSize} = hidden / ${a.reductionFactor}, ${a.nonLinearity}`]);
    rows.push(['  layers adapted', `${a.modules} adapters (${count(a.parameters)} parameters), all fit this model`]);
    if (a.baseModel) rows.push(['  trained on', a.baseModel]);
    rows.push(['  folder', r.adapter.dir]);
  } else if (r.adapter && r.adapter.peftType === 'PROMPT_TUNING') {
    const a = r.adapter;
    const init = a.init ? `, init ${a.init}${a.initText !== null ? ` ${JSON.stringify(a.initText)}` : ''}` : '';
    rows.push(['Adapter', `PROMPT_TUNING, ${a.numVirtualTokens} virtual tokens × ${a.tokenDim} (${count(a.parameters)} parameters)${init}, fits this model`]);
    if (a.baseModel) rows.push(['  trained on', a.baseModel]);
    rows.push(['  folder', a.dir]);
  } else if (r.adapter) {
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
