// A completed run's files, built from the trainer the same way for the command line and the app: the adapter
// folder of its kind (PEFT LoRA, Graft's bottleneck adapter, PEFT PROMPT_TUNING), the fine-tuned model as a
// Hugging Face folder (full, freeze), or the reward model (stage rm) with, for LoRA, its PEFT adapter.
import { exportBottleneckAdapter, exportHfModel, exportPeftAdapter, exportPromptTuning, type WeightTensor } from '../export';
import { exportRewardAdapter, exportRewardModel } from '../export/reward-model';
import type { BottleneckConfig } from '../model/bottleneck';
import type { LoadedModel } from '../model/load';
import { PROMPT_EMBEDDINGS } from '../model/prompt-tuning';
import { SCORE_WEIGHT } from '../model/reward-head';
import { readJson, readTokenizerFiles, type ModelSource } from '../model/source';
import { bottleneckKeys } from '../model/bottleneck';
import { bottleneckWeights, loraModuleWeights } from '../train/methods';
import { readParamF32 } from '../model/params';
import type { TrainSettings } from '../train/settings';
import type { Trainer } from '../train/trainer';
import { GRAFT_VERSION } from '../version';
import type { JobResult } from './types';
import { JobError } from './errors';

/** "bottleneck adapter, pfeiffer (after the MLP), reduction factor 16 (size 4), relu". */
export function bottleneckSummary(c: Pick<BottleneckConfig, 'placement' | 'reductionFactor' | 'size' | 'nonLinearity'>): string {
  return `bottleneck adapter, ${c.placement} (${c.placement === 'houlsby' ? 'after attention and MLP' : 'after the MLP'}), reduction factor ${c.reductionFactor} (size ${c.size}), ${c.nonLinearity}`;
}

/** "prompt tuning, 20 virtual tokens (random start)". */
export function promptSummary(n: number, init: 'random' | 'text'): string {
  return `prompt tuning, ${n} virtual token${n === 1 ? '' : 's'} (${init === 'text' ? 'started from a text' : 'random start'})`;
}

/** Every parameter of the model in f32, by Hugging Face name (packed weights widened, quantized ones dequantized). */
async function modelWeights(lm: LoadedModel): Promise<Map<string, WeightTensor>> {
  const weights = new Map<string, WeightTensor>();
  for (const p of lm.model.parameters()) weights.set(p.name, { dtype: 'F32', shape: p.shape, data: await readParamF32(lm.model.ctx, p) });
  return weights;
}

/** A Hugging Face model folder's other files, copied from the base: config, tokenizer, generation config. */
async function baseFolderFiles(source: ModelSource) {
  const generationConfig = await readJson(source, 'generation_config.json', false);
  return {
    config: await readJson(source, 'config.json', true),
    tokenizerFiles: await readTokenizerFiles(source),
    ...(generationConfig ? { generationConfig } : {}),
  };
}

/** The LoRA fields of an adapter that is not LoRA (AdapterDetails: 0, false, []). */
const noLora = () => ({ r: 0, alpha: 0, useRslora: false, targetModules: [] as string[] });

/**
 * The result of a completed run. `modelId`: the base model's id as results name it (base_model_name_or_path);
 * `source`: the base model's files (config, tokenizer) for model folders.
 */
/**
 * How a fully fine-tuned model's weights are written: 'file' (default) in the checkpoint's own precision (a BF16
 * model back as BF16, rounded to nearest even from the f32 master weights), or 'F32' on request.
 */
export type ExportDtype = 'file' | 'F32';

export async function buildResult(
  trainer: Trainer,
  lm: LoadedModel,
  source: ModelSource,
  modelId: string,
  s: TrainSettings,
  opts: { exportDtype?: ExportDtype } = {},
): Promise<JobResult> {
  const revision = s.model_revision !== 'main' ? { revision: s.model_revision } : {};
  const trained = await trainer.trainableWeights();
  const { lora, bottleneck, prompt } = trainer.method;
  const fanInFanOut = lm.config.architecture === 'GPT2LMHeadModel';
  const padTokenId = lm.tokenizer.padTokenId ?? lm.tokenizer.eosTokenIds[0] ?? 0;
  // What a LoRA adapter's adapter_config.json says (the plain adapter's and the reward model's).
  const peft = lora && { baseModel: modelId, ...revision, r: lora.r, alpha: lora.alpha, useRslora: lora.useRslora, dropout: s.lora_dropout, targetModules: lora.targetModules, fanInFanOut };

  if (s.stage === 'rm') {
    const score = trained.get(SCORE_WEIGHT);
    if (!score) throw new JobError('error', 'The reward model run has no score head to save (score.weight).');
    const modules = lora ? loraModuleWeights(lora, trained) : undefined;
    const files = exportRewardModel({
      ...(await baseFolderFiles(source)),
      weights: await modelWeights(lm),
      ...(lora && modules ? { lora: { r: lora.r, alpha: lora.alpha, useRslora: lora.useRslora, fanInFanOut, modules } } : {}),
      score,
      padTokenId,
    });
    if (!peft || !modules) return { kind: 'reward', files };
    return { kind: 'reward', files, adapterFiles: exportRewardAdapter({ ...peft, modules, score }) };
  }
  if (prompt) {
    const files = exportPromptTuning({ baseModel: modelId, ...revision, ...prompt, embeddings: trained.get(PROMPT_EMBEDDINGS)! });
    return { kind: 'adapter', files, adapter: { kind: 'prompt', ...noLora(), modules: prompt.numVirtualTokens, summary: promptSummary(prompt.numVirtualTokens, prompt.init) } };
  }
  if (lora && peft) {
    const files = exportPeftAdapter({ ...peft, modules: loraModuleWeights(lora, trained) });
    const adapter = { kind: 'lora' as const, r: lora.r, alpha: lora.alpha, useRslora: lora.useRslora, targetModules: lora.targetModules, modules: lora.modules.length };
    return { kind: 'adapter', files, adapter };
  }
  if (bottleneck) {
    const files = exportBottleneckAdapter({ adapter: bottleneckWeights(bottleneck, trained), baseModel: modelId, graftVersion: GRAFT_VERSION });
    return { kind: 'adapter', files, adapter: { kind: 'bottleneck', ...noLora(), modules: bottleneckKeys(bottleneck).length, summary: bottleneckSummary(bottleneck) } };
  }
  // Full and freeze: the whole model, in the checkpoint's precision unless F32 is asked for.
  const stored = lm.info.weightDtype.split('+')[0];
  const dtype = opts.exportDtype !== 'F32' && (stored === 'BF16' || stored === 'F16') ? stored : 'F32';
  return { kind: 'model', files: exportHfModel({ ...(await baseFolderFiles(source)), weights: await modelWeights(lm), dtype }) };
}
