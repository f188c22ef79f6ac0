// The Method screen's guide: a few questions → which way of adapting a model fits, why, and what each needs in GPU
// memory. Pure TypeScript, so every branch is unit-tested; where the advice comes from: docs/ui.md ("The method
// guide").
import { choices } from './settings-form';

/** How many labelled examples there are. */
export type DataSize = 'none' | 'few' | 'hundreds' | 'many';
/** How far the task's text is from what the model saw in pre-training. */
export type DomainDistance = 'close' | 'some' | 'far';
/** What the examples are: nothing yet, input → output pairs, or preference pairs (a better and a worse answer). */
export type LabelKind = 'none' | 'pairs' | 'preferences';

export interface GuideAnswers {
  dataSize: DataSize;
  domain: DomainDistance;
  /** The facts the answers depend on change daily (prices, news, stock, schedules). */
  changesDaily: boolean;
  /** The output must follow a strict format (JSON, a fixed label set, a template). */
  strictFormat: boolean;
  labels: LabelKind;
  /** One base model should serve several different tasks. */
  severalTasks: boolean;
}

export const DEFAULT_ANSWERS: GuideAnswers = {
  dataSize: 'hundreds',
  domain: 'close',
  changesDaily: false,
  strictFormat: false,
  labels: 'pairs',
  severalTasks: false,
};

/** The guide's questions in the order the Method screen asks them. */
export const GUIDE_QUESTIONS: { key: keyof GuideAnswers; legend: string; options: { value: string | boolean; label: string }[] }[] = [
  {
    key: 'dataSize',
    legend: 'How many examples do you have?',
    options: choices(['none', 'None yet'], ['few', 'Under 100'], ['hundreds', '100 to 10,000'], ['many', 'More than 10,000']),
  },
  {
    key: 'labels',
    legend: 'What do the examples hold?',
    options: choices(['pairs', 'An input and the answer I want'], ['preferences', 'A prompt with a better and a worse answer'], ['none', 'Plain text, no answers']),
  },
  {
    key: 'domain',
    legend: 'How far is your text from what the model knows?',
    options: choices(
      ['close', 'Close: everyday language, general topics'],
      ['some', 'Somewhat: a specialised field with its own terms'],
      ['far', 'Far: a new language, notation or code it rarely saw'],
    ),
  },
  { key: 'changesDaily', legend: 'Do the facts in the answers change daily (prices, news, stock, schedules)?', options: choices<boolean>([false, 'No'], [true, 'Yes']) },
  { key: 'strictFormat', legend: 'Must the output follow a strict format (JSON, a fixed set of labels, a template)?', options: choices<boolean>([false, 'No'], [true, 'Yes']) },
  { key: 'severalTasks', legend: 'Should one model serve several different tasks?', options: choices<boolean>([false, 'No, one task'], [true, 'Yes, several']) },
];

export type MethodId = 'full' | 'lora' | 'freeze' | 'adapter' | 'prompt-tuning' | 'rag' | 'prompting';

export interface MethodDescription {
  name: string;
  /** What it does, in one sentence. */
  what: string;
  /** What Graft's job settings can do with it. */
  inGraft: string;
  /** The settings the "use this" button applies; undefined when the job settings have no way to ask for it. */
  settings?: Record<string, string | number | boolean>;
}

export const METHODS: Record<MethodId, MethodDescription> = {
  full: {
    name: 'Full fine-tuning',
    what: 'Every weight of the model trains. The most capacity to change the model, and the most memory: weights, gradients and two optimizer moments for every parameter.',
    inGraft: 'finetuning_type: full',
    settings: { finetuning_type: 'full', learning_rate: '1e-5' },
  },
  lora: {
    name: 'LoRA',
    what: 'The weights stay frozen; small low-rank matrices added beside them train (a few MB). Close to full fine-tuning on most tasks, at a fraction of the memory, and the result is a small PEFT adapter.',
    inGraft: 'finetuning_type: lora',
    settings: { finetuning_type: 'lora', learning_rate: '1e-4' },
  },
  freeze: {
    name: 'Freeze tuning',
    what: 'Only the last few layers train; the lower layers, which already represent the inputs well, stay frozen.',
    inGraft: 'finetuning_type: freeze (freeze_trainable_layers)',
    settings: { finetuning_type: 'freeze', freeze_trainable_layers: '2', learning_rate: '5e-5' },
  },
  adapter: {
    name: 'Bottleneck adapters',
    what: 'A small bottleneck layer is inserted after the MLP (and, Houlsby-style, after attention) of each block; only these train. One adapter per task, all sharing one frozen base.',
    inGraft: 'finetuning_type: adapter (adapter_placement, reduction_factor, adapter_non_linearity); the Chat screen switches between saved adapters',
    settings: { finetuning_type: 'adapter', adapter_placement: 'pfeiffer', reduction_factor: '16', adapter_non_linearity: 'relu', learning_rate: '1e-4' },
  },
  'prompt-tuning': {
    name: 'Prompt tuning',
    what: 'A few "virtual tokens" (learned vectors) are put in front of every input and only they train: a few thousand parameters, hard to overfit with little data.',
    inGraft: 'finetuning_type: prompt (num_virtual_tokens, prompt_tuning_init); the result is a PEFT PROMPT_TUNING adapter',
    // Prompt tuning wants a far larger step than LoRA: only the input vectors move (PEFT's examples use 3e-2).
    settings: { finetuning_type: 'prompt', num_virtual_tokens: '20', prompt_tuning_init: 'random', learning_rate: '3e-2' },
  },
  rag: {
    name: 'Retrieval (RAG)',
    what: 'Nothing trains: at answer time the relevant documents are looked up and put into the prompt, so the answer uses today’s facts.',
    inGraft: 'No training: keep the documents current and put the relevant ones into the prompt.',
  },
  prompting: {
    name: 'Prompting',
    what: 'Nothing trains: clear instructions and a few worked examples in the prompt (few-shot).',
    inGraft: 'No training: try the model on the Model screen (“Try it: chat with a model”).',
  },
};

/** What the memory figures of a model are made of (src/model/info.ts's estimates, batch 1). */
export interface MemoryFigures {
  parameters: number;
  layers: number;
  /** Bytes: generating, LoRA training, full fine-tuning (estimateMemory; the first two at the base's precision). */
  inferenceBytes: number;
  loraTrainBytes: number;
  fullTrainBytes: number;
  /** Bytes the frozen base's precision (16-bit, 8-bit, 4-bit) saves against f32 weights (0 or absent: f32). */
  frozenBaseSaving?: number;
}

/** The job settings methodMemory reads (form values are strings; missing ones take the defaults). */
export interface MethodMemorySettings {
  /** freeze_trainable_layers (default 2). */
  freezeLayers?: number;
  /** reduction_factor (default 16) and adapter_placement (default pfeiffer: one site a layer; houlsby: two). */
  reductionFactor?: number;
  placement?: 'pfeiffer' | 'houlsby';
  /** num_virtual_tokens (default 20) and cutoff_len, the tokens the estimates are for (default 512). */
  virtualTokens?: number;
  seqLen?: number;
}

/**
 * GPU memory a method needs for the model, in bytes, from the three estimates of src/model/info.ts (f32,
 * batch 1, cutoff_len = T tokens). With W = 4·P the weights and A = full − 16·P the saved activations (with the
 * logits and the step's transient buffers):
 *   full, lora: the estimates themselves;
 *   freeze (last n of L layers): W + 12·P·n/L + A (gradients and Adam moments for the trained share, an upper bound);
 *   adapter: W + A + 16·Pa — the frozen weights, the same activations, and weights, gradients and two Adam moments
 *     for the adapter's Pa = P·sites / (6·reduction_factor) parameters (a block has about 12·H² weights and an
 *     adapter site 2·H²/reduction_factor; sites 1 for pfeiffer, 2 for houlsby);
 *   prompt tuning: W + A·(T + n)/T: gradients reach the input through every layer, and the n virtual tokens
 *     lengthen every sequence (the prompt vectors themselves are negligible);
 *   rag, prompting: generating only.
 */
export function methodMemory(id: MethodId, m: MemoryFigures, settings: MethodMemorySettings | number = {}): number {
  const o: MethodMemorySettings = typeof settings === 'number' ? { freezeLayers: settings } : settings;
  const weights = 4 * m.parameters;
  const activations = Math.max(0, m.fullTrainBytes - 16 * m.parameters);
  switch (id) {
    case 'full':
      return m.fullTrainBytes;
    case 'lora':
      return m.loraTrainBytes;
    case 'adapter': {
      const sites = o.placement === 'houlsby' ? 2 : 1;
      const adapterParams = (m.parameters * sites) / (6 * Math.max(1, o.reductionFactor ?? 16));
      return weights + activations + 16 * adapterParams - (m.frozenBaseSaving ?? 0);
    }
    case 'freeze': {
      const share = m.layers > 0 ? Math.min(1, Math.abs(o.freezeLayers ?? 2) / m.layers) : 1;
      return weights + 12 * m.parameters * share + activations;
    }
    case 'prompt-tuning': {
      const T = Math.max(1, o.seqLen ?? 512);
      return weights + (activations * (T + Math.max(0, o.virtualTokens ?? 20))) / T - (m.frozenBaseSaving ?? 0);
    }
    case 'rag':
    case 'prompting':
      return m.inferenceBytes;
  }
}

export interface MethodOption {
  id: MethodId;
  name: string;
  /** Bytes, when the model's figures are known. */
  memoryBytes?: number;
  /** Whether it fits the memory budget, when both are known. */
  fits?: boolean;
}

export interface Recommendation {
  primary: MethodId;
  /** Other methods worth a look, best first. */
  alternatives: MethodId[];
  /** Why, in sentences for the person. */
  why: string[];
  /** The training stage: 'sft', 'dpo', or null when nothing trains. */
  stage: 'sft' | 'dpo' | null;
  /** Settings to apply (LLaMA-Factory names, form values); empty when nothing trains or the method has none. */
  settings: Record<string, string | number | boolean>;
  /** Every method with its memory for the model (when known), primary first. */
  options: MethodOption[];
  /** Which rule decided (for tests and for people curious about the logic). */
  rule: string;
}

const ALL: MethodId[] = ['lora', 'full', 'freeze', 'adapter', 'prompt-tuning', 'rag', 'prompting'];

const gib = (b: number) => `${(b / 1024 ** 3).toFixed(1)} GiB`;

/**
 * Recommends a method. `memory`: the chosen model's figures; `budgetBytes`: what this device can be expected to
 * give (see model-list.ts's memoryBudget). With both, a recommendation of full fine-tuning that does not fit
 * falls back to LoRA and says so.
 */
export function recommendMethod(a: GuideAnswers, memory?: MemoryFigures, budgetBytes?: number, settings: MethodMemorySettings = {}): Recommendation {
  const r = decide(a);
  if (r.primary === 'full' && memory && budgetBytes !== undefined && methodMemory('full', memory) > budgetBytes) {
    r.why.push(
      `Full fine-tuning of this model needs about ${gib(methodMemory('full', memory))}, more than the ${gib(budgetBytes)} this device can be expected to give, so LoRA with a higher rank is recommended instead; choose a smaller model for full fine-tuning.`,
    );
    r.alternatives = ['full', ...r.alternatives.filter((x) => x !== 'lora' && x !== 'full')];
    r.primary = 'lora';
    r.settings = { ...METHODS.lora.settings, lora_rank: '32', lora_alpha: '64' };
    r.rule = `${r.rule}+memory`;
  }
  const order = [r.primary, ...r.alternatives, ...ALL.filter((x) => x !== r.primary && !r.alternatives.includes(x))];
  r.options = order.map((id) => {
    const o: MethodOption = { id, name: METHODS[id].name };
    if (memory) {
      o.memoryBytes = methodMemory(id, memory, settings);
      if (budgetBytes !== undefined) o.fits = o.memoryBytes <= budgetBytes;
    }
    return o;
  });
  return r;
}

function decide(a: GuideAnswers): Recommendation {
  const base = (primary: MethodId, rule: string, alternatives: MethodId[], why: string[], stage: 'sft' | 'dpo' | null = 'sft'): Recommendation => ({
    primary,
    alternatives,
    why,
    stage,
    settings: stage === null ? {} : { ...(METHODS[primary].settings ?? {}), ...(stage === 'dpo' ? { stage: 'dpo' } : { stage: 'sft' }) },
    options: [],
    rule,
  });

  // 1. Facts that change daily do not belong in weights.
  if (a.changesDaily) {
    const why = [
      'The answers depend on facts that change daily. Fine-tuning bakes facts into the weights, and they would be out of date tomorrow; retrieving the current documents at answer time keeps answers fresh without retraining.',
    ];
    const alternatives: MethodId[] = ['prompting'];
    if (a.strictFormat && a.labels === 'pairs' && (a.dataSize === 'hundreds' || a.dataSize === 'many')) {
      why.push('The strict output format can still be taught: combine retrieval for the facts with a LoRA adapter trained on your examples for the format.');
      alternatives.unshift('lora');
    }
    return base('rag', 'changes-daily', alternatives, why, null);
  }

  // 2. Nothing to learn from.
  if (a.labels === 'none' || a.dataSize === 'none') {
    return base(
      'prompting',
      'no-labels',
      ['rag'],
      [
        'There are no labelled examples to learn from, so there is nothing to fine-tune on yet. Write clear instructions and two to five worked examples into the prompt.',
        'Collecting about a hundred input → output examples opens up LoRA; if the model lacks knowledge, give it reference text in the prompt (retrieval).',
      ],
      null,
    );
  }

  // 3. Preference pairs: DPO, with LoRA (the reference model is the base with the adapter switched off: no second copy).
  if (a.labels === 'preferences') {
    const why = [
      'Preference pairs (a better and a worse answer to one prompt) train with DPO (stage: dpo), which teaches the model to prefer the better answer.',
      'LoRA keeps DPO light: the frozen base with the adapter switched off serves as the reference model, so no second copy of the model is needed.',
    ];
    if (a.dataSize === 'few') why.push('DPO needs a few hundred pairs to move a model reliably; with fewer, expect a small effect.');
    return base('lora', 'preferences', ['full'], why, 'dpo');
  }

  // 4. Few examples (under 100).
  if (a.dataSize === 'few') {
    if (a.strictFormat) {
      return base(
        'prompt-tuning',
        'few-strict',
        ['prompting', 'lora'],
        [
          'With under a hundred examples a large trainable set overfits. Prompt tuning learns only a few virtual tokens, enough to lock in a strict output format; it needs a large learning rate (3e-2) and more epochs than LoRA.',
          'Try prompting with the format spelled out first; if the format still slips, train.',
        ],
      );
    }
    return base(
      'prompting',
      'few',
      ['prompt-tuning', 'lora'],
      [
        'Under a hundred examples fit into a prompt as worked examples (few-shot), and that often works as well as training on them.',
        'If the prompt gets too long or answers drift, LoRA with a small rank (r 4 to 8) and a few epochs is the next step.',
      ],
    );
  }

  // 5. Several tasks on one base.
  if (a.severalTasks) {
    return base(
      'adapter',
      'several-tasks',
      ['lora'],
      [
        'One frozen base with a small adapter per task serves several tasks: each adapter trains on its own data and is swapped in at answer time, and the tasks cannot overwrite each other.',
        'Train one bottleneck adapter per task (finetuning_type adapter) and switch between them on the Chat screen; LoRA adapters do the same job and can also be merged into the model or run in LLaMA-Factory, which has no bottleneck adapters.',
      ],
    );
  }

  // 6. Much data far from the model's world: the most capacity.
  if (a.dataSize === 'many' && a.domain === 'far') {
    return base(
      'full',
      'many-far',
      ['lora', 'freeze'],
      [
        'More than ten thousand examples of text far from what the model knows (a new language, notation or code) can use the full capacity of the model: every weight trains.',
        'It needs four times the model’s weights in memory before activations; if that does not fit, LoRA with a high rank (32 to 64) comes close.',
      ],
    );
  }

  // 7. Much data close to the model's world: train the top layers.
  if (a.dataSize === 'many' && a.domain === 'close') {
    return base(
      'freeze',
      'many-close',
      ['lora', 'full'],
      [
        'The inputs look like what the model already knows, so its lower layers represent them well; with many examples, training the last layers (freeze tuning) changes the behaviour where it matters at a part of full fine-tuning’s memory.',
        'LoRA over every layer is the usual alternative and gives a small adapter file.',
      ],
    );
  }

  // 8. Hundreds to thousands of examples (or many, somewhat specialised): LoRA.
  const why = [
    'Hundreds to thousands of examples are the sweet spot of LoRA: it adapts every layer through small low-rank updates, rarely overfits, needs little memory beyond the frozen weights, and gives a small adapter.',
  ];
  const r = base('lora', a.domain === 'far' ? 'lora-far' : 'lora', ['full', 'freeze'], why);
  if (a.domain === 'far') {
    why.push('The domain is far from what the model knows: a higher rank (16) gives the adapter more room; train for more epochs and watch the validation loss.');
    r.settings = { ...r.settings, lora_rank: '16', lora_alpha: '32' };
  }
  if (a.strictFormat) why.push('A strict format is learned well from examples that all follow it exactly; keep train_on_prompt off so that the loss falls on the answers.');
  return r;
}
