// What LLaMA-Factory and merging cannot take, in sentences the app and the command line both show: plain
// strings, no imports but types, so that the page can read them without loading the worker.
import type { AdapterKind } from '../model/adapters';
import type { FinetuningType } from '../train/settings';

/** Why an adapter of a kind has no merged model (LoRA merges: B·A adds into the weights). */
const MERGE_REFUSALS = new Map<AdapterKind, string>([
  ['bottleneck', 'A bottleneck adapter adds layers to the model, so it cannot be merged into the base weights. Download the adapter folder instead: graft generate --adapter applies it to the base model.'],
  ['prompt', 'A prompt-tuning adapter is a set of virtual tokens in front of the input, not a change of the weights, so there is no merged model. Download the adapter folder instead: PEFT (PeftModel.from_pretrained) and graft generate --adapter apply it.'],
]);

/** Why a run of a finetuning_type cannot be written as a LLaMA-Factory job (lora, full and freeze can). */
const LLAMA_FACTORY_REFUSALS = new Map<FinetuningType, string>([
  ['adapter', 'LLaMA-Factory has no bottleneck adapters, so this run cannot be written as a LLaMA-Factory job. Download the adapter folder instead (Graft’s graft generate --adapter loads it), or train with LoRA to get a job LLaMA-Factory runs.'],
  ['prompt', 'LLaMA-Factory has no prompt tuning, so this run cannot be written as a LLaMA-Factory job. Download the adapter folder instead: it is PEFT’s PROMPT_TUNING format, which PeftModel.from_pretrained loads.'],
]);

/** Why an adapter of this kind has no merged model, or undefined (LoRA merges). */
export function mergeRefusal(kind: AdapterKind): string | undefined {
  return MERGE_REFUSALS.get(kind);
}

/** Why a run cannot be written as a LLaMA-Factory job, or undefined when it can. */
export function llamaFactoryRefusal(method: FinetuningType): string | undefined {
  return LLAMA_FACTORY_REFUSALS.get(method);
}
