// The tiny-llama tokenizer and template, and the reference JSON, for the data and tokenizer tests.
import { readFileSync } from 'node:fs';
import { ChatTemplate } from '../../src/model/chat-template';
import { Tokenizer } from '../../src/model/tokenizer';

const dir = new URL('../fixtures/tiny-llama/', import.meta.url);
export const readModelFile = (p: string) => readFileSync(new URL(p, dir), 'utf8');
export const readData = (p: string) => readFileSync(new URL(`../fixtures/data/${p}`, import.meta.url), 'utf8');

export const tokenizerJson = () => JSON.parse(readModelFile('tokenizer.json')) as Record<string, unknown> & { model: { merges: unknown[] } };
export const tokenizerConfig = () => JSON.parse(readModelFile('tokenizer_config.json')) as Record<string, unknown>;
export const generationConfig = () => JSON.parse(readModelFile('generation_config.json')) as Record<string, unknown>;

export interface Reference {
  sft_batch: { cutoff_len: number; input_ids: number[][]; labels: number[][]; attention_mask: number[][] };
  greedy: { prompt_text: string; prompt_ids: number[] };
}
export const reference = () => JSON.parse(readModelFile('reference/reference.json')) as Reference;

export function fixtureTokenizer(): Tokenizer {
  return new Tokenizer({ tokenizerJson: tokenizerJson(), tokenizerConfig: tokenizerConfig(), generationConfig: generationConfig() });
}

export function fixtureTemplate(): ChatTemplate {
  return ChatTemplate.fromModelFiles({ tokenizerConfig: tokenizerConfig() });
}
