// Loading a model folder onto the GPU, and what the CLI and the app do with it: chat prompts, generation with
// streaming, and PEFT LoRA adapters switched per call without reloading the base.
//
// Files read: config.json (required), tokenizer.json (required), tokenizer_config.json, generation_config.json,
// chat_template.jinja (optional), and the weights (model.safetensors or the sharded index + shards).
import type { GpuContext } from '../engine/context';
import { parseConfig, type ModelConfig } from './config';
import type { ChatTemplate } from './chat-template';
import type { Tokenizer } from './tokenizer';
import type { ModelInfo } from './info';
import type { ModelSource } from './source';
import type { GenerateOptions, GenerateResult, GenerationDefaults } from './generate';

/** Placeholder until src/model/transformer.ts (the model core's CausalLM) lands; the facade then exposes CausalLM. */
export interface CausalLM {
  dispose(): void;
}

export interface LoadProgress {
  /** 'read': weight bytes read from the source; 'upload': weight bytes uploaded to the GPU. */
  phase: 'read' | 'upload';
  loadedBytes: number;
  totalBytes: number;
  file?: string;
}

export type ChatMessage = { role: 'system' | 'user' | 'assistant'; content: string };

export interface LoadedModel {
  readonly info: ModelInfo;
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  readonly template: ChatTemplate;
  readonly model: CausalLM;
  /** Names of the loaded adapters. */
  readonly adapters: string[];
  /** Sampling defaults from generation_config.json. */
  readonly generationDefaults: GenerationDefaults;
  /** Positions the KV cache may span: prompt + new tokens. */
  readonly maxPositions: number;
  /** Renders one user message (or a message list) with the chat template and the generation prompt, and tokenizes it. */
  chatPromptIds(messages: string | ChatMessage[]): number[];
  /** Generates; calls are queued, so concurrent calls with different adapters never mix. */
  generate(promptIds: number[], opts: GenerateOptions, onToken?: (id: number, textDelta: string) => void): Promise<GenerateResult>;
  /** Reads a PEFT LoRA folder (adapter_config.json + adapter_model.safetensors) onto the GPU; returns its name. */
  loadAdapter(source: ModelSource, name?: string): Promise<string>;
  /** Frees an adapter's GPU memory. Unknown names are ignored. */
  unloadAdapter(name: string): void;
  dispose(): void;
}

export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  /** Bounds the positions (and so the RoPE table and KV caches) below config.json's max_position_embeddings. */
  maxPositions?: number;
}

export async function loadModel(ctx: GpuContext, source: ModelSource, opts: LoadOptions = {}): Promise<LoadedModel> {
  void ctx;
  void source;
  void opts;
  void parseConfig;
  throw new Error('loadModel: waiting for the model core (CausalLM)');
}
