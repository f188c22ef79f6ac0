// A model's numbers for the Model and Method screens: parameters, sizes and memory estimates, from the static
// list (model-list.ts) or from the worker's describeModelCard (a stored model, or one on the hub). Estimates are
// asked for the job's cutoff_len and lora_rank; answers are cached per model and settings.
import type { Remote } from 'comlink';
import type { EngineApi } from '../worker/api';
import type { MemoryEstimates, PlanPrecision } from '../worker/api';
import type { MemoryFigures } from './method-guide';
import { builtInModel } from './model-list';

export type FiguresFrom = 'list' | 'device' | 'hub';

export interface ModelFigures {
  repo: string;
  revision: string;
  from: FiguresFrom;
  architecture: string;
  supported: boolean;
  unsupportedReason?: string;
  parameters: number;
  layers: number;
  downloadBytes: number;
  largestTensorBytes: number;
  estimates: MemoryEstimates;
}

const cache = new Map<string, Promise<ModelFigures>>();

export function modelFigures(engine: Remote<EngineApi>, repo: string, revision: string, from: FiguresFrom, seqLen: number, loraRank: number): Promise<ModelFigures> {
  const key = `${repo}@${revision}|${from}|${seqLen}|${loraRank}`;
  let p = cache.get(key);
  if (!p) {
    p = compute(engine, repo, revision, from, seqLen, loraRank);
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

async function compute(engine: Remote<EngineApi>, repo: string, revision: string, from: FiguresFrom, seqLen: number, loraRank: number): Promise<ModelFigures> {
  const listed = from === 'list' ? builtInModel(repo) : undefined;
  if (listed) {
    return {
      repo,
      revision,
      from,
      architecture: listed.architecture,
      supported: true,
      parameters: listed.parameters,
      layers: listed.shape.layers,
      downloadBytes: listed.downloadBytes,
      largestTensorBytes: listed.largestTensor.bytes,
      estimates: await engine.estimateModelMemory(listed.parameters, listed.shape, seqLen, loraRank, listed.dtype === 'BF16' ? '16-bit' : 'f32'),
    };
  }
  const card = await engine.describeModelCard(repo, revision, { seqLen, loraRank, from: from === 'hub' ? 'hub' : 'device' });
  const f: ModelFigures = {
    repo,
    revision,
    from: card.from,
    architecture: card.info.architecture,
    supported: card.info.supported,
    parameters: card.info.parameters,
    layers: card.info.layers,
    downloadBytes: card.downloadBytes,
    largestTensorBytes: card.largestTensor.bytes,
    estimates: card.estimates,
  };
  if (card.info.unsupportedReason) f.unsupportedReason = card.info.unsupportedReason;
  return f;
}

/**
 * The figures the method guide reads, with the frozen base held at `precision` (default: as the checkpoint
 * stores it, 16-bit for BF16): LoRA training and generating at that precision, full fine-tuning in f32 (every
 * weight trains), and what the precision saves against f32 for the other frozen-base methods.
 */
export function memoryFigures(f: ModelFigures, precision: PlanPrecision = f.estimates.defaultPrecision): MemoryFigures {
  const e = f.estimates;
  return {
    parameters: f.parameters,
    layers: f.layers,
    inferenceBytes: e.inferenceByPrecision[precision],
    loraTrainBytes: e.loraTrainByPrecision[precision],
    fullTrainBytes: e.fullTrainBytes,
    frozenBaseSaving: e.loraTrainByPrecision.f32 - e.loraTrainByPrecision[precision],
  };
}

/** The precision a job's quantization_bit asks for ('' or unset: the checkpoint's own). */
export function precisionOfSetting(quantizationBit: unknown, defaultPrecision: PlanPrecision): PlanPrecision {
  const q = String(quantizationBit ?? '').trim();
  return q === '4' ? '4-bit' : q === '8' ? '8-bit' : defaultPrecision;
}
