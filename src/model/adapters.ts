// The adapters a CausalLM can run with (ModelAdapter: lora, bottleneck, prompt) — at most one per forward, chosen
// per call, never copying the base; a named set of them is adapter-set.ts. docs/model.md ("Adapters").

import type { Tensor } from '../engine/tensor';
import { bottleneckParameters, releaseBottleneck, type BottleneckAdapter } from './bottleneck';
import { loraParameters, type LoraAdapter } from './lora';
import { PROMPT_EMBEDDINGS, type PromptAdapter } from './prompt-tuning';

export type ModelAdapter = LoraAdapter | BottleneckAdapter | PromptAdapter;
export type AdapterKind = 'lora' | 'bottleneck' | 'prompt';

export function adapterKind(adapter: ModelAdapter): AdapterKind {
  return adapter.kind ?? 'lora';
}

/** The adapter if it is a LoRA adapter, else null. */
export function asLora(adapter: ModelAdapter | null | undefined): LoraAdapter | null {
  return adapter && adapterKind(adapter) === 'lora' ? (adapter as LoraAdapter) : null;
}

/** The adapter if it is a bottleneck adapter, else null. */
export function asBottleneck(adapter: ModelAdapter | null | undefined): BottleneckAdapter | null {
  return adapter?.kind === 'bottleneck' ? adapter : null;
}

/** The adapter if it is a prompt-tuning adapter, else null. */
export function asPrompt(adapter: ModelAdapter | null | undefined): PromptAdapter | null {
  return adapter?.kind === 'prompt' ? adapter : null;
}

/** Every trainable tensor of an adapter as [name, tensor] pairs (PEFT names for LoRA and prompt tuning). */
export function adapterParameters(adapter: ModelAdapter): [string, Tensor][] {
  if (adapter.kind === 'prompt') return [[PROMPT_EMBEDDINGS, adapter.embeddings]];
  return adapter.kind === 'bottleneck' ? bottleneckParameters(adapter) : loraParameters(adapter);
}

/** Frees an adapter's GPU tensors. */
export function releaseModelAdapter(adapter: ModelAdapter): void {
  if (adapter.kind === 'bottleneck') {
    releaseBottleneck(adapter);
    return;
  }
  if (adapter.kind === 'prompt') {
    adapter.embeddings.release();
    return;
  }
  for (const m of adapter.modules.values()) {
    m.a.release();
    m.b.release();
  }
  adapter.modules.clear();
}
