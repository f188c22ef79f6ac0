// LoRA adapters as the model sees them: per Hugging Face module path, the low-rank pair A [r, in], B [out, r]
// on the GPU. y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ with scale = alpha/r, or alpha/√r with rsLoRA (PEFT's rule).
// Reading and writing PEFT files is the loader's job (src/model/adapter.ts); this file only names things.
import type { Tensor } from '../engine/tensor';

export interface LoraModule {
  a: Tensor; // [r, in]
  b: Tensor; // [out, r]
}

export interface LoraAdapter {
  /** The ModelAdapter discriminant (adapters.ts); may be left out. */
  kind?: 'lora';
  name: string;
  r: number;
  alpha: number;
  useRslora: boolean;
  /** Keyed by the Hugging Face module path, e.g. 'model.layers.0.self_attn.q_proj' (GPT-2: 'transformer.h.0.attn.c_attn'). */
  modules: Map<string, LoraModule>;
}

/** PEFT's scaling: alpha / r, or alpha / √r with rsLoRA. */
export function loraScale(adapter: Pick<LoraAdapter, 'r' | 'alpha' | 'useRslora'>): number {
  return adapter.useRslora ? adapter.alpha / Math.sqrt(adapter.r) : adapter.alpha / adapter.r;
}

/** The PEFT tensor name of a module's A or B: 'base_model.model.<module>.lora_A.weight'. */
export function loraParamName(module: string, which: 'A' | 'B'): string {
  return `base_model.model.${module}.lora_${which}.weight`;
}

/** Splits a PEFT tensor name into its module path and A/B; undefined for other names. */
export function parseLoraParamName(name: string): { module: string; which: 'A' | 'B' } | undefined {
  const m = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$/.exec(name);
  return m ? { module: m[1]!, which: m[2] as 'A' | 'B' } : undefined;
}

/** Every A and B of an adapter as [PEFT name, tensor] pairs, in module order. */
export function loraParameters(adapter: LoraAdapter): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  for (const [module, { a, b }] of adapter.modules) {
    out.push([loraParamName(module, 'A'), a], [loraParamName(module, 'B'), b]);
  }
  return out;
}
