// The adapters a CausalLM can run with — at most one per forward, chosen per call, never copying the base —
// and a named set of them kept on the GPU beside one base model, so a person can keep one adapter per task
// and switch between them per request.
//
// ModelAdapter is a union discriminated by `kind`:
//   'lora'        LoRA pairs on linear layers (lora.ts; `kind` may be left out: older code builds them bare)
//   'bottleneck'  residual bottleneck MLPs after the attention and/or MLP outputs (bottleneck.ts)
//   'prompt'      prompt tuning's virtual-token embeddings in front of every sequence (prompt-tuning.ts)
// A new kind (e.g. prompt tuning) adds its type to the union and a case to adapterParameters and
// releaseModelAdapter; the transformer's checkAdapter and forward switch on adapterKind.
//
// AdapterSet: load(name, adapter) checks the adapter against the model and keeps it under a name; list();
// get/resolve by name (resolve throws with the loaded names); unload(name) frees its GPU tensors (and switches
// the model back to the base if it was the current adapter). Selecting per request is passing
// resolve(name) as ForwardOptions.adapter, or to CausalLM.setAdapter before a generation.
import type { Tensor } from '../engine/tensor';
import { bottleneckParameters, releaseBottleneck, type BottleneckAdapter } from './bottleneck';
import { loraParameters, type LoraAdapter } from './lora';
import { PROMPT_EMBEDDINGS, type PromptAdapter } from './prompt-tuning';
import type { CausalLM } from './transformer';

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

/** Named adapters on one base model. */
export class AdapterSet {
  private readonly map = new Map<string, ModelAdapter>();

  constructor(readonly model: CausalLM) {}

  /**
   * Keeps `adapter` under `name` after checking that it fits the model (throws otherwise, keeping nothing).
   * Returns the adapter it replaces under that name, which the caller frees (releaseFreed) once no running
   * work uses it; undefined when the name was free.
   */
  load(name: string, adapter: ModelAdapter): ModelAdapter | undefined {
    if (!name) throw new Error('AdapterSet.load: an adapter needs a name');
    this.model.checkAdapter(adapter);
    const old = this.map.get(name);
    this.map.set(name, adapter);
    return old;
  }

  /** The loaded names, in load order. */
  list(): string[] {
    return [...this.map.keys()];
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  get(name: string): ModelAdapter | undefined {
    return this.map.get(name);
  }

  /** The adapter named `name` (null: the base model). Throws, naming the loaded ones, for an unknown name. */
  resolve(name: string | null): ModelAdapter | null {
    if (name === null) return null;
    const a = this.map.get(name);
    if (!a) {
      const known = this.list();
      throw new Error(`No adapter named "${name}" is loaded${known.length ? `; loaded: ${known.map((n) => `"${n}"`).join(', ')}` : ''}.`);
    }
    return a;
  }

  /**
   * Takes an adapter out of the set without freeing it or touching the model (work still running with it keeps
   * running); free it later with releaseFreed.
   */
  remove(name: string): ModelAdapter | undefined {
    const a = this.map.get(name);
    if (!a) return undefined;
    this.map.delete(name);
    return a;
  }

  /** Frees an adapter taken out by remove or replaced by load: the model drops it first if it is the current one. */
  releaseFreed(adapter: ModelAdapter): void {
    if (this.model.adapter === adapter) this.model.setAdapter(null);
    releaseModelAdapter(adapter);
  }

  /** Removes an adapter and frees its GPU tensors now (the model runs the base if it was current). Returns whether the name was loaded. */
  unload(name: string): boolean {
    const a = this.remove(name);
    if (a) this.releaseFreed(a);
    return a !== undefined;
  }

  /** Unloads every adapter. */
  clear(): void {
    for (const name of this.list()) this.unload(name);
  }
}
