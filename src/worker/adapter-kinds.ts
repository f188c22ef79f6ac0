// What the app says about the three kinds of adapter (LoRA, bottleneck, prompt) and what each allows (merging, a
// LLaMA-Factory job, training further; docs/worker.md, "Adapter kinds"). Pure data and sentences, without imports
// that pull the worker in, so that the page and the worker share them.
import type { AdapterKind } from '../model/adapters';
import type { FinetuningType } from '../train/settings';

export { llamaFactoryRefusal, mergeRefusal } from '../job/method-limits';

/** finetuning_type: lora, full, freeze, adapter (bottleneck adapters) or prompt (prompt tuning). */
export type FinetuningKind = FinetuningType;
export type { AdapterKind };

export const FINETUNING_KINDS: readonly FinetuningKind[] = ['lora', 'full', 'freeze', 'adapter', 'prompt'];

/** A job's finetuning_type (LLaMA-Factory's default lora when it names none or one Graft does not know). */
export function methodOf(input: Record<string, unknown>): FinetuningKind {
  const t = String(input.finetuning_type ?? 'lora').trim() as FinetuningKind;
  return FINETUNING_KINDS.includes(t) ? t : 'lora';
}

/** The finetuning_type that trains an adapter of this kind. */
export function methodOfAdapter(kind: AdapterKind): FinetuningKind {
  return kind === 'bottleneck' ? 'adapter' : kind;
}

/** The finetuning_type that continues an adapter of this kind, or undefined (prompt tuning does not continue). */
export function continuesWith(kind: AdapterKind): FinetuningKind | undefined {
  return kind === 'lora' ? 'lora' : kind === 'bottleneck' ? 'adapter' : undefined;
}

/** The kinds in words, for sentences ("… is a bottleneck adapter"). */
export const KIND_NAMES: Record<AdapterKind, string> = { lora: 'LoRA adapter', bottleneck: 'bottleneck adapter', prompt: 'prompt-tuning adapter' };

/** The end of an adapter zip's name and folder: "<label>-adapter" (LoRA), "-bottleneck-adapter", "-prompt-tuning". */
export const ADAPTER_FOLDER_SUFFIX: Record<AdapterKind, string> = { lora: 'adapter', bottleneck: 'bottleneck-adapter', prompt: 'prompt-tuning' };

/** The Export screen's title and line for an adapter folder of each kind. */
export const ADAPTER_FOLDER_TEXT: Record<AdapterKind, { title: string; detail: string }> = {
  lora: { title: 'PEFT adapter', detail: 'adapter_model.safetensors + adapter_config.json: PEFT, vLLM and LLaMA-Factory load it as it is.' },
  bottleneck: {
    title: 'Bottleneck adapter',
    detail: 'adapter_model.safetensors + adapter_config.json (adapter_type "bottleneck", Graft’s format): graft generate --adapter and this app’s import load it.',
  },
  prompt: {
    title: 'Prompt-tuning adapter (PEFT)',
    detail: 'adapter_model.safetensors (prompt_embeddings) + adapter_config.json (peft_type PROMPT_TUNING): PeftModel.from_pretrained and graft generate --adapter load it.',
  },
};

/** What a result is, in a few words, for the Chat and Export screens' lists. */
export function resultKindLabel(e: { ref: { kind: 'adapter' | 'model' }; adapterKind?: AdapterKind; reward?: true }): string {
  if (e.reward) return 'reward model';
  if (e.ref.kind === 'model') return 'model';
  return KIND_NAMES[e.adapterKind ?? 'lora'];
}

/** A result as the Chat and Export screens' pickers list it: name, kind, base, and "(imported)" once. */
export function resultChoiceText(e: { label: string; baseRepo: string; origin?: 'run' | 'import'; ref: { kind: 'adapter' | 'model' }; adapterKind?: AdapterKind; reward?: true }): string {
  // Adapters imported before names were kept plain carry "(imported)" in their name already.
  const imported = e.origin === 'import' && !/\(imported\)\s*$/i.test(e.label) ? ' (imported)' : '';
  return `${e.label} — ${resultKindLabel(e)} on ${e.baseRepo}${imported}`;
}
