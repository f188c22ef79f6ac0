// LoRA adapters for the model tests, each on the GPU and as the float64 reference's copy: a PEFT adapter file
// (the loader's readLoraAdapter does this for real, with its checks), or random A and B on every linear module.
import type { GpuContext } from '../../src/engine/context';
import type { Tensor } from '../../src/engine/tensor';
import { loraScale, parseLoraParamName, type LoraAdapter } from '../../src/model/lora';
import type { SafetensorsFile } from '../../src/model/safetensors';
import type { CausalLM } from '../../src/model/transformer';
import type { RefLora } from '../model-ref/transformer';
import type { Rng } from './rng';

/** A PEFT adapter_model.safetensors as a LoraAdapter (named init_adapter) and as the reference's copy. */
export function loraFromFile(ctx: GpuContext, file: SafetensorsFile, r: number, alpha: number): { adapter: LoraAdapter; refLora: RefLora } {
  const adapter: LoraAdapter = { name: 'init_adapter', r, alpha, useRslora: false, modules: new Map() };
  const refLora: RefLora = { scale: loraScale(adapter), modules: new Map() };
  for (const name of file.names) {
    const parsed = parseLoraParamName(name);
    if (!parsed) continue;
    const values = file.float32(name);
    const t = ctx.upload(file.info(name).shape, values, 'f32', { persistent: true, label: name });
    const m = adapter.modules.get(parsed.module) ?? ({} as { a: Tensor; b: Tensor });
    const rm = refLora.modules.get(parsed.module) ?? { a: new Float64Array(), b: new Float64Array(), r };
    if (parsed.which === 'A') [m.a, rm.a] = [t, Float64Array.from(values)];
    else [m.b, rm.b] = [t, Float64Array.from(values)];
    adapter.modules.set(parsed.module, m);
    refLora.modules.set(parsed.module, rm);
  }
  return { adapter, refLora };
}

/** Random A [r, in] and B [out, r] (N(0, 0.3²)) on every linear module of the model, in the model's order. */
export function randomLora(
  ctx: GpuContext,
  model: CausalLM,
  rng: Rng,
  r: number,
  alpha: number,
  options: { name?: string; useRslora?: boolean } = {},
): { adapter: LoraAdapter; refLora: RefLora } {
  const useRslora = options.useRslora ?? false;
  const adapter: LoraAdapter = { name: options.name ?? 'random', r, alpha, useRslora, modules: new Map() };
  const refLora: RefLora = { scale: useRslora ? alpha / Math.sqrt(r) : alpha / r, modules: new Map() };
  for (const { module, inFeatures, outFeatures } of model.linearModules()) {
    const a = rng.tensor(r * inFeatures, 0.3, 0);
    const b = rng.tensor(outFeatures * r, 0.3, 0);
    refLora.modules.set(module, { a, b, r });
    adapter.modules.set(module, {
      a: ctx.upload([r, inFeatures], Float32Array.from(a), 'f32', { persistent: true }),
      b: ctx.upload([outFeatures, r], Float32Array.from(b), 'f32', { persistent: true }),
    });
  }
  return { adapter, refLora };
}

/** Frees an adapter's A and B tensors. */
export function releaseLora(adapter: LoraAdapter): void {
  for (const { a, b } of adapter.modules.values()) {
    a.release();
    b.release();
  }
}
