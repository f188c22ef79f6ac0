// A LoRA adapter merged into its base model's weights (W + scale·B·A), as a Hugging Face model folder: config,
// weights in f32, tokenizer files and generation config copied from the base.
import { exportHfModel, mergeLora, type WeightTensor } from '../export/merged-model';
import { readAdapter } from '../model/adapter';
import { parseConfig } from '../model/config';
import { readJson, readTokenizerFiles, type ModelSource } from '../model/source';
import { SafetensorsWeights } from '../model/weights';

export async function mergedModelFiles(base: ModelSource, adapter: ModelSource): Promise<Map<string, Uint8Array>> {
  const configJson = await readJson(base, 'config.json', true);
  const cfg = parseConfig(configJson);
  const lora = await readAdapter(adapter, cfg);
  const weightsFile = await SafetensorsWeights.read(base);
  const weights = new Map<string, WeightTensor>();
  for (const name of weightsFile.names) weights.set(name, { dtype: 'F32', shape: weightsFile.info(name).shape, data: weightsFile.float32(name) });
  weightsFile.release();
  const r = lora.config.r;
  const merged = mergeLora(weights, {
    r,
    alpha: lora.config.alpha,
    useRslora: lora.config.useRslora,
    fanInFanOut: cfg.architecture === 'GPT2LMHeadModel',
    modules: new Map([...lora.modules].map(([m, w]) => [m, { a: w.a, aShape: [r, w.inFeatures] as const, b: w.b, bShape: [w.outFeatures, r] as const }])),
  });
  const generationConfig = await readJson(base, 'generation_config.json', false);
  return exportHfModel({ config: configJson, weights: merged, tokenizerFiles: await readTokenizerFiles(base), ...(generationConfig ? { generationConfig } : {}) });
}
