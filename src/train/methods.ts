// What trains: LLaMA-Factory's `finetuning_type` (lora, adapter, full, freeze, prompt) on the model core, and
// which parameters decay; docs/training.md ("Methods").
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';
import { SeededRandom } from '../data/shuffle';
import type { ModelAdapter } from '../model/adapters';
import {
  bottleneckParameters,
  bottleneckShapes,
  bottleneckSize,
  releaseBottleneck,
  uploadBottleneck,
  type BottleneckConfig,
  type CpuBottleneckAdapter,
} from '../model/bottleneck';
import { loraParamName, loraParameters, type LoraAdapter, type LoraModule } from '../model/lora';
import { PROMPT_EMBEDDINGS, randomPromptInit, textInitIds, type PromptAdapter, type PromptTuningInit } from '../model/prompt-tuning';
import type { CausalLM } from '../model/transformer';
import { widenParam } from '../model/params';
import { SettingsError, type FinetuningType, type TrainSettings } from './settings';

/** One trainable parameter: its name (Hugging Face or PEFT), full shape and its row blocks on the GPU. */
export interface TrainableParam {
  name: string;
  shape: number[];
  /** Row blocks in order (usually one); gradients and optimizer moments have the same blocks. */
  parts: Tensor[];
  /** Whether AdamW's weight decay applies (Hugging Face's rule: not biases, not norm weights). */
  decay: boolean;
  /** This parameter's learning rate ÷ the schedule's (LoRA+: loraplus_lr_ratio for lora_B); 1 when absent. */
  lrScale?: number;
}

/** The LoRA settings a run really uses (from the job, or from the adapter it starts from). */
export interface LoraSpec {
  r: number;
  alpha: number;
  useRslora: boolean;
  /** Module names as PEFT's target_modules lists them (q_proj, ...), sorted. */
  targetModules: string[];
  /** The module paths adapted. */
  modules: string[];
}

/** The prompt-tuning settings a run uses (what adapter_config.json records). */
export interface PromptSpec {
  numVirtualTokens: number;
  /** The model's hidden size (PEFT's token_dim). */
  tokenDim: number;
  /** config.json's attention heads and layers, which PEFT's config records. */
  numAttentionHeads: number;
  numLayers: number;
  init: PromptTuningInit;
  initText: string | null;
}

export interface MethodSetup {
  kind: FinetuningType;
  /** Every trainable parameter, in the order the optimizer and checkpoints use. */
  params: TrainableParam[];
  /** The adapter being trained (LoRA, bottleneck or prompt), owned by this setup; null otherwise. */
  adapter: ModelAdapter | null;
  lora: LoraSpec | null;
  /** The bottleneck adapter's shape (finetuning_type "adapter"); null otherwise. */
  bottleneck: BottleneckConfig | null;
  /** Prompt tuning: its settings (the embeddings are params[0], set on the model); null otherwise. */
  prompt: PromptSpec | null;
  /** For CausalLM.createGradients. */
  select: 'all' | 'lora' | 'adapter' | ((name: string) => boolean);
  /** Remarks for the person (e.g. settings the starting adapter overrides). */
  notes: string[];
  /** Frees what the setup owns (the adapter's tensors). */
  release(): void;
}

/** A starting LoRA adapter on the CPU (src/model/adapter.ts's CpuLoraAdapter fits). */
export interface StartingLoraAdapter {
  config: { r: number; alpha: number; useRslora: boolean };
  modules: ReadonlyMap<string, { a: Float32Array; b: Float32Array; inFeatures: number; outFeatures: number }>;
}

/** The adapter a run continues (adapter_name_or_path): LoRA, or a bottleneck adapter (readBottleneckAdapter). */
export type StartingAdapter = StartingLoraAdapter | CpuBottleneckAdapter;

const isStartingBottleneck = (a: StartingAdapter): a is CpuBottleneckAdapter => 'tensors' in a;

const problem = (key: keyof TrainSettings, message: string): SettingsError => new SettingsError('the job', [{ key, message }]);

/** Hugging Face's weight-decay rule: biases and normalisation weights do not decay. */
export function decays(name: string): boolean {
  if (/\.bias$/.test(name) || /(?:^|\.)bias(?:$|\.)/.test(name)) return false;
  // transformers: LayerNorm modules by type, plus names matching layernorm, rmsnorm, (^|.)norm($|.), _norm($|.)
  if (/layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)|(?:^|\.)ln_(?:\d+|f)(?:$|\.)/i.test(name)) return false;
  return true;
}

/**
 * LoRA+'s learning-rate multiplier of a trainable parameter (LLaMA-Factory's _create_loraplus_optimizer, PEFT's
 * create_loraplus_optimizer): lora_B matrices and 1-D parameters train at learning_rate × ratio, the rest
 * (lora_A) at learning_rate. Graft's LoRA adapts linear layers only, so the embedding group (lora_embedding_B,
 * loraplus_lr_embedding) never has members.
 */
export function loraPlusLrScale(name: string, shape: readonly number[], ratio: number): number {
  return /(?:^|\.)lora_B(?:\.|$)/.test(name) || shape.length === 1 ? ratio : 1;
}

/** The last part of a module path: 'model.layers.0.self_attn.q_proj' → 'q_proj'. */
export const moduleLeaf = (module: string): string => module.slice(module.lastIndexOf('.') + 1);

/**
 * The module paths lora_target selects: ["all"] = every linear layer of the blocks; otherwise each name must
 * be the last part (or a dotted suffix) of at least one linear's path. Throws SettingsError naming a target
 * that matches nothing.
 */
export function resolveLoraTargets(model: CausalLM, targets: readonly string[]): string[] {
  const all = model.linearModules().map((m) => m.module);
  if (targets.length === 1 && targets[0] === 'all') return all;
  const leaves = [...new Set(all.map(moduleLeaf))];
  for (const t of targets) {
    if (!all.some((m) => m === t || m.endsWith(`.${t}`))) {
      throw problem('lora_target', `"${t}" is not a linear layer of this ${model.cfg.architecture}; its linear layers are ${leaves.join(', ')} (or "all")`);
    }
  }
  return all.filter((m) => targets.some((t) => m === t || m.endsWith(`.${t}`)));
}

/** PEFT's kaiming_uniform_(a = √5) for A [r, in]: uniform(−1/√in, 1/√in); B = 0. */
export function initLoraWeights(modules: readonly { module: string; inFeatures: number; outFeatures: number }[], r: number, seed: number) {
  const rng = new SeededRandom(seed);
  return modules.map(({ module, inFeatures, outFeatures }) => {
    const bound = 1 / Math.sqrt(inFeatures);
    const a = new Float32Array(r * inFeatures);
    for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
    return { module, a, b: new Float32Array(outFeatures * r), inFeatures, outFeatures };
  });
}

/** A new adapter's weights (docs/training.md, "Methods": N(0, 0.02²) down weight, in name order): down weight ~ N(0, 0.02²) from `seed`, the rest 0. */
export function initBottleneckWeights(config: BottleneckConfig, seed: number, std = 0.02): CpuBottleneckAdapter {
  const rng = new SeededRandom(seed);
  const normal = (): number => {
    const u = Math.max(rng.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  };
  const tensors = new Map<string, Float32Array>();
  for (const [name, shape] of bottleneckShapes(config)) {
    const t = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('.down.weight')) for (let i = 0; i < t.length; i++) t[i] = std * normal();
    tensors.set(name, t);
  }
  return { config, tensors };
}

/**
 * The parameter names freeze tuning trains (LLaMA-Factory's rule, docs/training.md "Methods"). Throws SettingsError
 * for a module name the model does not have.
 */
export function freezeTrainableNames(model: CausalLM, s: Pick<TrainSettings, 'freeze_trainable_layers' | 'freeze_trainable_modules' | 'freeze_extra_modules'>): string[] {
  const names = model.parameters().map((p) => p.name);
  const L = model.cfg.numLayers;
  const n = s.freeze_trainable_layers;
  const ids = n > 0 ? range(Math.max(0, L - n), L) : range(0, Math.min(-n, L));
  const hidden = new Set<string>();
  const nonHidden = new Set<string>();
  for (const name of names) {
    const m = /\.(\d+)\.([^.]+)/.exec(name);
    if (m) hidden.add(m[2]!);
    else {
      const parts = name.split('.');
      if (parts.length >= 2) nonHidden.add(parts[parts.length - 2]!);
    }
  }
  const patterns: string[] = [];
  for (const mod of s.freeze_trainable_modules) {
    if (mod !== 'all' && !hidden.has(mod)) {
      throw problem('freeze_trainable_modules', `"${mod}" is not a module of this model's layers; they have ${[...hidden].join(', ')} (or "all")`);
    }
    for (const i of ids) patterns.push(`.${i}.${mod === 'all' ? '' : mod}`);
  }
  for (const mod of s.freeze_extra_modules ?? []) {
    if (!nonHidden.has(mod)) {
      const tied = mod === 'lm_head' && model.cfg.tieWordEmbeddings;
      throw problem(
        'freeze_extra_modules',
        tied
          ? `"lm_head" is tied to the token embedding in this model; name "${[...nonHidden].find((x) => /embed|wte/.test(x)) ?? 'embed_tokens'}" to train it`
          : `"${mod}" is not a module outside this model's layers; those are ${[...nonHidden].join(', ')}`,
      );
    }
    patterns.push(mod);
  }
  return names.filter((name) => patterns.some((p) => name.includes(p)));
}

function range(a: number, b: number): number[] {
  return Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
}

function uploadAdapter(ctx: GpuContext, name: string, spec: { r: number; alpha: number; useRslora: boolean }, modules: ReturnType<typeof initLoraWeights>): LoraAdapter {
  const out = new Map<string, LoraModule>();
  for (const m of modules) {
    out.set(m.module, {
      a: ctx.upload([spec.r, m.inFeatures], m.a, 'f32', { persistent: true, label: `${m.module}.lora_A (training)` }),
      b: ctx.upload([m.outFeatures, spec.r], m.b, 'f32', { persistent: true, label: `${m.module}.lora_B (training)` }),
    });
  }
  return { name, r: spec.r, alpha: spec.alpha, useRslora: spec.useRslora, modules: out };
}

/**
 * Refuses the method settings Graft cannot honour, before anything is loaded. None at present: lora_dropout
 * (PEFT's dropout on the LoRA input) is applied by the trainer's training forwards (trainer.ts); callers keep
 * calling this so that a future limit is refused before loading.
 */
export function checkMethodSettings(_settings: TrainSettings): void {}

/**
 * Sets the model up for `settings.finetuning_type`: makes (and sets) the LoRA adapter, or picks the base
 * parameters that train. lora_dropout is the trainer's (it passes the masks to each training forward).
 */
export function setupMethod(
  model: CausalLM,
  settings: TrainSettings,
  opts: {
    startingAdapter?: StartingAdapter;
    /** prompt_tuning_init "text": the token ids of prompt_tuning_init_text (with special tokens, as PEFT's tokenizer(text)). */
    promptInitIds?: readonly number[];
  } = {},
): MethodSetup {
  const kind = settings.finetuning_type;
  const notes: string[] = [];
  const starting = opts.startingAdapter;
  if (starting && kind !== 'lora' && kind !== 'adapter') {
    throw problem('adapter_name_or_path', `continues LoRA or bottleneck adapters; finetuning_type "${kind}" starts from the model alone`);
  }
  if (starting && kind === 'lora' && isStartingBottleneck(starting)) {
    throw problem('adapter_name_or_path', 'is a bottleneck adapter; continue it with finetuning_type "adapter"');
  }
  if (starting && kind === 'adapter' && !isStartingBottleneck(starting)) {
    throw problem('adapter_name_or_path', 'is a LoRA adapter; continue it with finetuning_type "lora" (finetuning_type "adapter" continues bottleneck adapters)');
  }
  if (kind === 'prompt') return setupPromptTuning(model, settings, opts.promptInitIds);
  if (kind === 'lora') {
    checkMethodSettings(settings);
    const infos = new Map(model.linearModules().map((m) => [m.module, m]));
    let spec: { r: number; alpha: number; useRslora: boolean };
    let weights: ReturnType<typeof initLoraWeights>;
    if (starting && !isStartingBottleneck(starting)) {
      const a = starting;
      spec = { r: a.config.r, alpha: a.config.alpha, useRslora: a.config.useRslora };
      weights = [];
      // In the model's module order.
      for (const module of infos.keys()) {
        const m = a.modules.get(module);
        if (m) weights.push({ module, a: Float32Array.from(m.a), b: Float32Array.from(m.b), inFeatures: m.inFeatures, outFeatures: m.outFeatures });
      }
      if (weights.length !== a.modules.size) {
        const unknown = [...a.modules.keys()].find((k) => !infos.has(k));
        throw problem('adapter_name_or_path', `the adapter adapts ${unknown}, which is not a linear layer of this model`);
      }
      const differs: string[] = [];
      if (settings.lora_rank !== spec.r) differs.push(`lora_rank ${settings.lora_rank} → ${spec.r}`);
      if (settings.lora_alpha !== spec.alpha) differs.push(`lora_alpha ${settings.lora_alpha} → ${spec.alpha}`);
      if (settings.use_rslora !== spec.useRslora) differs.push(`use_rslora ${settings.use_rslora} → ${spec.useRslora}`);
      if (differs.length) notes.push(`training continues the adapter ${settings.adapter_name_or_path ?? ''} with its own settings (${differs.join(', ')})`.replace('  ', ' '));
    } else {
      spec = { r: settings.lora_rank, alpha: settings.lora_alpha, useRslora: settings.use_rslora };
      const modules = resolveLoraTargets(model, settings.lora_target).map((m) => infos.get(m)!);
      weights = initLoraWeights(modules, spec.r, settings.seed);
    }
    const adapter = uploadAdapter(model.ctx, 'training', spec, weights);
    try {
      model.setAdapter(adapter);
    } catch (e) {
      for (const m of adapter.modules.values()) {
        m.a.release();
        m.b.release();
      }
      throw e;
    }
    const ratio = settings.loraplus_lr_ratio;
    const params: TrainableParam[] = loraParameters(adapter).map(([name, t]) => ({
      name,
      shape: [...t.shape],
      parts: [t],
      decay: decays(name),
      ...(ratio !== undefined && { lrScale: loraPlusLrScale(name, t.shape, ratio) }),
    }));
    const modules = [...adapter.modules.keys()];
    return {
      kind,
      params,
      adapter,
      lora: { ...spec, modules, targetModules: [...new Set(modules.map(moduleLeaf))].sort() },
      bottleneck: null,
      prompt: null,
      select: 'lora',
      notes,
      release() {
        if (model.adapter === adapter) model.setAdapter(null);
        for (const m of adapter.modules.values()) {
          m.a.release();
          m.b.release();
        }
      },
    };
  }

  if (kind === 'adapter') return setupBottleneck(model, settings, notes, starting && isStartingBottleneck(starting) ? starting : undefined);

  model.setAdapter(null);
  const base = model.parameters();
  let chosen: Set<string>;
  if (kind === 'full') chosen = new Set(base.map((p) => p.name));
  else {
    chosen = new Set(freezeTrainableNames(model, settings));
    if (chosen.size === 0) throw problem('freeze_trainable_layers', 'selects no parameter of this model');
  }
  // What trains becomes f32 (a 16-bit checkpoint's weights get exact f32 master copies); the rest stays packed.
  const params: TrainableParam[] = base
    .filter((p) => chosen.has(p.name))
    .map((p) => ({ name: p.name, shape: [...p.shape], parts: widenParam(model.ctx, p), decay: decays(p.name) }));
  return {
    kind,
    params,
    adapter: null,
    lora: null,
    bottleneck: null,
    prompt: null,
    select: kind === 'full' ? 'all' : (name: string) => chosen.has(name),
    notes,
    release() {},
  };
}

/** finetuning_type "adapter": a new bottleneck adapter, set on the model; only its tensors train. */
function setupBottleneck(model: CausalLM, settings: TrainSettings, notes: string[], starting?: CpuBottleneckAdapter): MethodSetup {
  const H = model.cfg.hiddenSize;
  if (starting) {
    const c = starting.config;
    if (c.hiddenSize !== H || c.numLayers !== model.cfg.numLayers) {
      throw problem(
        'adapter_name_or_path',
        `the adapter was made for a model with hidden_size ${c.hiddenSize} and ${c.numLayers} layers; this ${model.cfg.architecture} has hidden_size ${H} and ${model.cfg.numLayers} layers`,
      );
    }
    const differs: string[] = [];
    if (settings.adapter_placement !== c.placement) differs.push(`adapter_placement ${settings.adapter_placement} → ${c.placement}`);
    if (settings.reduction_factor !== c.reductionFactor) differs.push(`reduction_factor ${settings.reduction_factor} → ${c.reductionFactor}`);
    if (settings.adapter_non_linearity !== c.nonLinearity) differs.push(`adapter_non_linearity ${settings.adapter_non_linearity} → ${c.nonLinearity}`);
    if (differs.length) notes.push(`training continues the adapter ${settings.adapter_name_or_path ?? ''} with its own settings (${differs.join(', ')})`.replace('  ', ' '));
  }
  let size: number;
  try {
    size = starting ? starting.config.size : bottleneckSize(H, settings.reduction_factor);
  } catch {
    const divisors = Array.from({ length: H }, (_, i) => i + 1).filter((d) => H % d === 0 && d > 1 && d <= 64);
    throw problem('reduction_factor', `${settings.reduction_factor} does not divide this model's hidden size ${H}; choose one of ${divisors.join(', ')}`);
  }
  const config: BottleneckConfig = starting
    ? { ...starting.config }
    : {
        placement: settings.adapter_placement,
        reductionFactor: settings.reduction_factor,
        size,
        nonLinearity: settings.adapter_non_linearity,
        hiddenSize: H,
        numLayers: model.cfg.numLayers,
      };
  const weights = starting
    ? { config, tensors: new Map([...bottleneckShapes(config).keys()].map((name) => [name, Float32Array.from(bottleneckTensor(starting, name))])) }
    : initBottleneckWeights(config, settings.seed);
  const adapter = uploadBottleneck(model.ctx, weights, 'training');
  try {
    model.setAdapter(adapter);
  } catch (e) {
    releaseBottleneck(adapter);
    throw e;
  }
  const params: TrainableParam[] = bottleneckParameters(adapter).map(([name, t]) => ({ name, shape: [...t.shape], parts: [t], decay: decays(name) }));
  return {
    kind: 'adapter',
    params,
    adapter,
    lora: null,
    bottleneck: config,
    prompt: null,
    select: 'adapter',
    notes,
    release() {
      if (model.adapter === adapter) model.setAdapter(null);
      releaseBottleneck(adapter);
    },
  };
}

/** Prompt tuning: makes the virtual-token embeddings (docs/training.md, "Methods") and sets them on the model. */
function setupPromptTuning(model: CausalLM, settings: TrainSettings, initIds: readonly number[] | undefined): MethodSetup {
  model.setAdapter(null);
  const n = settings.num_virtual_tokens;
  const H = model.cfg.hiddenSize;
  if (n >= model.maxPositions) {
    throw problem('num_virtual_tokens', `${n} virtual tokens leave no position for the text in the ${model.maxPositions} this model instance holds; use fewer`);
  }
  let embeddings: Tensor;
  if (settings.prompt_tuning_init === 'text') {
    if (!initIds) throw problem('prompt_tuning_init_text', 'was not tokenized: the trainer needs its token ids (promptInitIds) to start the virtual tokens from');
    if (initIds.length === 0) throw problem('prompt_tuning_init_text', 'has no tokens; give a text, or use prompt_tuning_init: random');
    embeddings = model.tokenEmbeddings(textInitIds(initIds, n));
  } else {
    embeddings = model.ctx.upload([n, H], randomPromptInit(n, H, settings.seed), 'f32', { persistent: true, label: `${PROMPT_EMBEDDINGS} (training)` });
  }
  const adapter: PromptAdapter = { kind: 'prompt', name: 'training', embeddings };
  try {
    model.setAdapter(adapter);
  } catch (e) {
    embeddings.release();
    throw e;
  }
  return {
    kind: 'prompt',
    params: [{ name: PROMPT_EMBEDDINGS, shape: [n, H], parts: [embeddings], decay: decays(PROMPT_EMBEDDINGS) }],
    adapter,
    lora: null,
    bottleneck: null,
    prompt: { numVirtualTokens: n, tokenDim: H, numAttentionHeads: model.cfg.numHeads, numLayers: model.cfg.numLayers, init: settings.prompt_tuning_init, initText: settings.prompt_tuning_init_text ?? null },
    select: 'adapter',
    notes: [],
    release() {
      if (model.adapter === adapter) model.setAdapter(null);
      embeddings.release();
    },
  };
}

/** One tensor of a starting bottleneck adapter (readBottleneckAdapter checked that all are there). */
function bottleneckTensor(a: CpuBottleneckAdapter, name: string): Float32Array {
  const t = a.tensors.get(name);
  if (!t) throw problem('adapter_name_or_path', `the adapter lacks ${name}`);
  return t;
}

/** The trained bottleneck tensors by name, from the trainable weights (Trainer.trainableWeights). */
export function bottleneckWeights(config: BottleneckConfig, weights: ReadonlyMap<string, Float32Array>): CpuBottleneckAdapter {
  const tensors = new Map<string, Float32Array>();
  for (const name of bottleneckShapes(config).keys()) {
    const w = weights.get(name);
    if (!w) throw new Error(`bottleneckWeights: no weights for ${name}`);
    tensors.set(name, w);
  }
  return { config, tensors };
}

/** A LoRA pair as the exports take it (src/export's LoraModuleWeights). */
export interface LoraPairWeights {
  a: Float32Array;
  aShape: readonly [number, number];
  b: Float32Array;
  bShape: readonly [number, number];
}

/** The trained LoRA pairs by module path, from the trainable weights by PEFT name (Trainer.trainableWeights). */
export function loraModuleWeights(lora: LoraSpec, weights: ReadonlyMap<string, Float32Array>): Map<string, LoraPairWeights> {
  return new Map(
    lora.modules.map((m) => {
      const a = weights.get(loraParamName(m, 'A'));
      const b = weights.get(loraParamName(m, 'B'));
      if (!a || !b) throw new Error(`loraModuleWeights: no weights for ${m}`);
      return [m, { a, aShape: [lora.r, a.length / lora.r] as const, b, bShape: [b.length / lora.r, lora.r] as const }];
    }),
  );
}
