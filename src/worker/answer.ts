// One answer to a prompt, as the chat screens ask for it: models.ts (the loaded model) and compare.ts (base and
// tuned side by side) both generate through it.
import type { GenerateOptions } from '../model/generate';
import type { LoadedModel } from '../model/load';
import { ModelError } from '../model/source';
import type { ChatOptions, ChatResult } from './protocol';

/** The sampling options a request may set; those it leaves out take the model's defaults. */
const SAMPLING = ['greedy', 'temperature', 'topK', 'topP', 'repetitionPenalty', 'seed', 'stopAtEos'] as const;

/**
 * Generates an answer to `prompt` (in the model's chat template unless `options.chat` is false), timed;
 * `run` names the adapter and the abort signal, `onToken(delta)` streams the text.
 */
export async function answerPrompt(
  lm: LoadedModel,
  prompt: string,
  options: ChatOptions,
  run: Pick<GenerateOptions, 'adapter' | 'signal'>,
  onToken?: (textDelta: string, id: number) => void,
): Promise<ChatResult> {
  const ids = options.chat === false ? lm.tokenizer.encode(prompt) : lm.chatPromptIds(prompt);
  if (ids.length === 0) throw new ModelError('bad-options', 'The prompt is empty: write something for the model to answer.');
  const sampling = Object.fromEntries(SAMPLING.filter((k) => options[k] !== undefined).map((k) => [k, options[k]]));
  const t0 = performance.now();
  const result = await lm.generate(ids, { maxNewTokens: options.maxNewTokens, ...run, ...sampling }, onToken ? (id, delta) => onToken(delta, id) : undefined);
  return { ...result, ms: performance.now() - t0 };
}
