// A LoRA adapter merged into its base model's weights (W + scale·B·A), as a Hugging Face model folder: config,
// weights in f32 (sharded at maxShardBytes), tokenizer files and generation config copied from the base. Without an
// adapter, the base itself in that form (graft export without adapter_name_or_path).
import { exportHfModel, mergeLora, type WeightTensor } from '../export/merged-model';
import { readAdapter } from '../model/adapter';
import { parseConfig } from '../model/config';
import { readJson, readTokenizerFiles, type ModelSource } from '../model/source';
import { SafetensorsWeights } from '../model/weights';
import { blockLinearWeights, type WeightOptions } from '../model/params';
import { dequantizeWeight, quantizeWeight } from '../engine/quantize';

/**
 * `quantize`: the adapter was trained on a quantized base (quantization_bit): it is merged into the weights it
 * trained against — the blocks' linears quantized and dequantized exactly as the run held them (src/engine/
 * quantize.ts) — not the checkpoint's original ones, and the folder's README.md says so.
 */
export async function mergedModelFiles(
  base: ModelSource,
  adapter: ModelSource | undefined,
  opts: { quantize?: WeightOptions['quantize']; maxShardBytes?: number } = {},
): Promise<Map<string, Uint8Array>> {
  const configJson = await readJson(base, 'config.json', true);
  const cfg = parseConfig(configJson);
  const lora = adapter ? await readAdapter(adapter, cfg) : undefined;
  const weightsFile = await SafetensorsWeights.read(base);
  const weights = new Map<string, WeightTensor>();
  for (const name of weightsFile.names) weights.set(name, { dtype: 'F32', shape: weightsFile.info(name).shape, data: weightsFile.float32(name) });
  const q = opts.quantize;
  if (q) {
    for (const l of blockLinearWeights(cfg, weightsFile)) {
      const w = weights.get(l.name)!;
      const [r, c] = l.shape as [number, number];
      const values = w.data as Float32Array;
      // As the loader quantizes: [out, in] order (a Conv1D weight transposed first, and back after).
      const t = (x: Float32Array, rows: number, cols: number) => {
        const o = new Float32Array(x.length);
        for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) o[j * rows + i] = x[i * cols + j]!;
        return o;
      };
      const ordered = l.inOut ? t(values, r, c) : values;
      const deq = dequantizeWeight(quantizeWeight(ordered, q.format, q.doubleQuant), ordered.length);
      weights.set(l.name, { ...w, data: l.inOut ? t(deq, c, r) : deq });
    }
  }
  weightsFile.release();
  const r = lora?.config.r ?? 0;
  const merged = lora
    ? mergeLora(weights, {
        r,
        alpha: lora.config.alpha,
        useRslora: lora.config.useRslora,
        fanInFanOut: cfg.architecture === 'GPT2LMHeadModel',
        modules: new Map([...lora.modules].map(([m, w]) => [m, { a: w.a, aShape: [r, w.inFeatures] as const, b: w.b, bShape: [w.outFeatures, r] as const }])),
      })
    : weights;
  const generationConfig = await readJson(base, 'generation_config.json', false);
  const files = exportHfModel({
    config: configJson,
    weights: merged,
    tokenizerFiles: await readTokenizerFiles(base),
    ...(generationConfig ? { generationConfig } : {}),
    ...(opts.maxShardBytes !== undefined ? { maxShardBytes: opts.maxShardBytes } : {}),
  });
  if (q) files.set('README.md', new TextEncoder().encode(quantizedMergeNote(base.name, q)));
  return files;
}

/** What a merge into a quantized base's weights wrote, for the folder's README.md. */
export function quantizedMergeNote(base: string, q: NonNullable<WeightOptions['quantize']>): string {
  const how = q.format === 'int8' ? "8-bit (Graft's blockwise int8)" : `4-bit (${q.format.toUpperCase()}${q.doubleQuant ? ', double quantization' : ''}, as bitsandbytes computes it)`;
  return (
    `# ${base} with a LoRA adapter merged in\n\n` +
    `The adapter was trained on a ${how} base (quantization_bit ${q.format === 'int8' ? 8 : 4}), so it was merged into the weights it trained against: ` +
    'the linear layers of every block quantized and dequantized as during training, plus scale · B · A. ' +
    'Those layers therefore differ from the original checkpoint by the quantization error; the embeddings, norms and lm_head are the original ones. ' +
    'The weights are stored as F32.\n'
  );
}
