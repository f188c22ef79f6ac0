// Loading a model folder onto the GPU, and what the CLI and the app do with it: chat prompts, generation with
// streaming, and adapters — PEFT LoRA and PROMPT_TUNING folders and Graft's bottleneck adapter folders — kept
// under names (adapter-set.ts's AdapterSet) and switched per call without reloading the base.
//
// Files read: config.json (required), tokenizer.json (required), tokenizer_config.json, generation_config.json,
// chat_template.jinja (optional), and the weights (model.safetensors or the sharded index + shards).
import type { GpuContext } from '../engine/context';
import { GpuError, formatBytes } from '../engine/errors';
import { parseConfig, type ModelConfig } from './config';
import { ChatTemplate, type TemplateMessage } from './chat-template';
import { Tokenizer } from './tokenizer';
import { describeFrom, type ModelInfo } from './info';
import { ModelError, readJson, readText, type ModelSource } from './source';
import { SafetensorsWeights, type WeightSource } from './weights';
import type { WeightOptions } from './params';
import { generateWith, generationDefaults, type GenerateOptions, type GenerateResult, type GenerationDefaults } from './generate';
import { ADAPTER_CONFIG, defaultAdapterName, readLoraAdapter } from './adapter';
import { asPrompt, releaseModelAdapter, type ModelAdapter } from './adapters';
import { AdapterSet } from './adapter-set';
import { readPromptAdapter, uploadPromptAdapter, virtualTokens } from './prompt-tuning';
import { uploadBottleneck } from './bottleneck';
import { isBottleneckConfig, readBottleneckAdapter } from './bottleneck-file';
import type { KvCache } from './kv-cache';
import { CausalLM } from './transformer';

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
  /** Positions a generation may span: prompt + new tokens (the CausalLM's maxPositions). */
  readonly maxPositions: number;
  /** Renders one user message (or a message list) with the chat template and the generation prompt, and tokenizes it. */
  chatPromptIds(messages: string | ChatMessage[]): number[];
  /** Generates; calls are queued, so concurrent calls with different adapters never mix. */
  generate(promptIds: number[], opts: GenerateOptions, onToken?: (id: number, textDelta: string) => void): Promise<GenerateResult>;
  /**
   * Reads an adapter folder (adapter_config.json + adapter_model.safetensors: PEFT LoRA or PROMPT_TUNING, or a
   * Graft bottleneck adapter) onto the GPU under `name` (default: the folder's name), replacing one of that name; returns the name.
   */
  loadAdapter(source: ModelSource, name?: string): Promise<string>;
  /** A loaded adapter's tensors (for training that starts from it, or for exporting it); undefined if unknown. */
  getAdapter(name: string): ModelAdapter | undefined;
  /** Frees an adapter's GPU memory. Unknown names are ignored. */
  unloadAdapter(name: string): void;
  dispose(): void;
}

export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  /**
   * The longest prompt + generation (sizes the RoPE table). Default: min(config.json's max_position_embeddings,
   * 8192, the core's DEFAULT_MAX_POSITIONS); GPT-2 is capped by its position table.
   */
  maxPositions?: number;
  /**
   * How the weights are held on the GPU (src/model/params.ts): by default in the checkpoint's precision (16-bit
   * weights stay 16-bit); `{ precision: 'f32' }` widens all; `quantize` holds the blocks' linears 4- or 8-bit.
   */
  weights?: WeightOptions;
}

/** A model folder's tokenizer and chat template, and its generation_config.json (undefined when it has none). */
export interface TextSide {
  tokenizer: Tokenizer;
  template: ChatTemplate;
  genJson: Record<string, unknown> | undefined;
}

/**
 * Reads the tokenizer and chat template of a model folder whose config.json is `configJson` (no GPU: the Data
 * screen's encoding reads them too).
 */
export async function readTextSide(source: ModelSource, configJson: Record<string, unknown>): Promise<TextSide> {
  const genJson = await readJson(source, 'generation_config.json', false);
  const tokenizerJson = await readText(source, 'tokenizer.json', true, 'the model needs it to turn text into tokens');
  const tokenizerConfig = await readJson(source, 'tokenizer_config.json', false);
  const chatTemplateJinja = await readText(source, 'chat_template.jinja', false);
  // Without generation_config.json, transformers derives one from config.json (GenerationConfig.from_model_config):
  // its bos/eos/pad ids count then.
  const genIds = genJson ?? Object.fromEntries(['bos_token_id', 'eos_token_id', 'pad_token_id'].filter((k) => configJson[k] != null).map((k) => [k, configJson[k]]));
  const tokenizer = new Tokenizer({ tokenizerJson, tokenizerConfig, generationConfig: genIds });
  const template = ChatTemplate.fromModelFiles({ tokenizerConfig, chatTemplateJinja: chatTemplateJinja ?? null });
  return { tokenizer, template, genJson };
}

export async function loadModel(ctx: GpuContext, source: ModelSource, opts: LoadOptions = {}): Promise<LoadedModel> {
  if (opts.maxPositions !== undefined && (!Number.isInteger(opts.maxPositions) || opts.maxPositions <= 0)) {
    throw new ModelError('bad-options', `maxPositions must be a positive whole number, not ${opts.maxPositions}.`);
  }

  const configJson = await readJson(source, 'config.json', true, 'every model folder needs one');
  const config = parseConfig(configJson); // UnsupportedModelError for what Graft cannot run
  const { tokenizer, template, genJson } = await readTextSide(source, configJson);

  const weights = await SafetensorsWeights.read(source, (p) => opts.onProgress?.({ phase: 'read', ...p }));
  const info = describeFrom(configJson, weights.headers());

  // Upload progress: the core reads each tensor through float32() or bits16() just before uploading it.
  const totalBytes = weights.byteLength;
  let uploaded = 0;
  const counted = <T>(name: string, data: T): T => {
    const t = weights.info(name);
    uploaded += t.end - t.begin;
    opts.onProgress?.({ phase: 'upload', loadedBytes: uploaded, totalBytes, file: name });
    return data;
  };
  const counting: WeightSource = {
    names: weights.names,
    info: (name) => weights.info(name),
    float32: (name) => counted(name, weights.float32(name)),
    bits16: (name) => counted(name, weights.bits16(name)),
  };
  let model: CausalLM;
  try {
    // The core bounds positions by min(config, DEFAULT_MAX_POSITIONS) unless told (GPT-2 also by its wpe table).
    model = CausalLM.create(ctx, config, counting, {
      ...(opts.maxPositions === undefined ? {} : { maxPositions: opts.maxPositions }),
      ...(opts.weights ? { weights: opts.weights } : {}),
    });
  } finally {
    weights.release();
  }
  try {
    await ctx.sync(); // surfaces an out-of-memory from the uploads here, as a GpuError
  } catch (e) {
    model.dispose();
    // WebGPU does not tell how much memory a GPU has, so the estimate can only be compared after the fact.
    if (e instanceof GpuError && e.code === 'out-of-memory') {
      throw new GpuError(
        'out-of-memory',
        `${source.name} needs about ${formatBytes(info.estimates.inferenceBytes)} of GPU memory to run, more than this GPU could give. Close other tabs or programs that use the GPU, or pick a smaller model.`,
        { cause: e },
      );
    }
    throw e;
  }
  opts.onProgress?.({ phase: 'upload', loadedBytes: totalBytes, totalBytes });
  return new Loaded(ctx, info, config, tokenizer, template, model, generationDefaults(genJson));
}

class Loaded implements LoadedModel {
  private readonly set: AdapterSet;
  /** Generation and adapter changes run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(
    private readonly ctx: GpuContext,
    readonly info: ModelInfo,
    readonly config: ModelConfig,
    readonly tokenizer: Tokenizer,
    readonly template: ChatTemplate,
    readonly model: CausalLM,
    readonly generationDefaults: GenerationDefaults,
  ) {
    this.set = new AdapterSet(model);
  }

  get maxPositions(): number {
    return this.model.maxPositions;
  }

  get adapters(): string[] {
    return this.set.list();
  }

  private alive(): void {
    if (this.disposed) throw new ModelError('bad-options', 'This model was unloaded; load it again.');
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  chatPromptIds(messages: string | ChatMessage[]): number[] {
    const list: TemplateMessage[] = typeof messages === 'string' ? [{ role: 'user', content: messages }] : messages.map((m) => ({ ...m }));
    return this.tokenizer.encode(this.template.render(list, { addGenerationPrompt: true }));
  }

  generate(promptIds: number[], opts: GenerateOptions, onToken?: (id: number, textDelta: string) => void): Promise<GenerateResult> {
    try {
      this.alive();
    } catch (e) {
      return Promise.reject(e);
    }
    const name = opts.adapter ?? null;
    if (name !== null && !this.set.has(name)) {
      const known = this.adapters;
      return Promise.reject(
        new ModelError('bad-options', `No adapter named "${name}" is loaded${known.length ? `; loaded: ${known.map((n) => `"${n}"`).join(', ')}` : ''}.`),
      );
    }
    return this.serial(async () => {
      this.alive();
      const adapter = name === null ? null : this.set.get(name);
      if (adapter === undefined) throw new ModelError('bad-options', `The adapter "${name}" was unloaded before generation started.`);
      this.model.setAdapter(adapter);
      for (const id of promptIds) {
        if (Number.isInteger(id) && (id < 0 || id >= this.config.vocabSize)) {
          throw new ModelError('bad-options', `The prompt holds token id ${id}, outside this model's vocabulary of ${this.config.vocabSize}.`);
        }
      }
      return generateWith<KvCache>(
        {
          model: this.model,
          tokenizer: this.tokenizer,
          // A prompt adapter's virtual tokens take positions too.
          maxPositions: this.maxPositions - virtualTokens(asPrompt(adapter)),
          defaults: this.generationDefaults,
          disposeCache: (c) => c.release(),
        },
        promptIds,
        opts,
        onToken,
      );
    });
  }

  async loadAdapter(source: ModelSource, name?: string): Promise<string> {
    this.alive();
    const id = name ?? defaultAdapterName(source);
    const json = await readJson(source, ADAPTER_CONFIG, false);
    let adapter: ModelAdapter;
    if (json && isBottleneckConfig(json)) adapter = uploadBottleneck(this.ctx, await readBottleneckAdapter(source, this.config), id);
    else if (json?.peft_type === 'PROMPT_TUNING') {
      const p = await readPromptAdapter(source, this.config);
      adapter = uploadPromptAdapter(this.ctx, id, p.embeddings, p.numVirtualTokens, p.tokenDim);
    } else adapter = await readLoraAdapter(this.ctx, source, this.config, id);
    await this.ctx.sync();
    if (this.disposed) {
      releaseModelAdapter(adapter);
      this.alive();
    }
    let old: ModelAdapter | undefined;
    try {
      old = this.set.load(id, adapter);
    } catch (e) {
      releaseModelAdapter(adapter);
      throw new ModelError('bad-adapter', `The adapter ${source.name} cannot be used: ${e instanceof Error ? e.message : String(e)}`);
    }
    // A name loaded again replaces the old adapter (released once running generations are done).
    if (old) void this.serial(async () => this.set.releaseFreed(old));
    return id;
  }

  getAdapter(name: string): ModelAdapter | undefined {
    return this.set.get(name);
  }

  unloadAdapter(name: string): void {
    const adapter = this.set.remove(name);
    if (!adapter) return;
    void this.serial(async () => this.set.releaseFreed(adapter));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const adapters = this.set.list().map((n) => this.set.remove(n)!);
    void this.serial(async () => {
      this.model.setAdapter(null);
      for (const a of adapters) releaseModelAdapter(a);
      this.model.dispose();
    });
  }
}
