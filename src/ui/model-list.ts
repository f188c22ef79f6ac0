// The Model screen's list of browser-suited models, and whether a model fits this device. Plain TypeScript. Where
// the list's static numbers come from: docs/ui.md ("The built-in model list").
import type { AdapterSummary } from '../worker/api';
import type { ShapeNumbers } from '../worker/api';

export interface BuiltInModel {
  repo: string;
  /** What it is good for, in a few words. */
  note: string;
  architecture: string;
  parameters: number;
  /** Bytes downloaded (weights, tokenizer, configs), about. */
  downloadBytes: number;
  dtype: 'BF16' | 'F32';
  shape: ShapeNumbers;
  /** The largest weight that must fit one storage binding (f32 bytes on the GPU): an MLP matrix. */
  largestTensor: { name: string; bytes: number };
}

const MB = 1e6;

export const BUILT_IN_MODELS: BuiltInModel[] = [
  {
    repo: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    note: 'The smallest: quick to download and to train, fine for learning how fine-tuning works.',
    architecture: 'LlamaForCausalLM',
    parameters: 134_515_008,
    downloadBytes: 271.2 * MB, // model.safetensors 269.1 MB + tokenizer.json 2.1 MB
    dtype: 'BF16',
    shape: { layers: 30, hidden: 576, intermediate: 1536, heads: 9, kvHeads: 3, headDim: 64, vocab: 49152, gatedMlp: true },
    largestTensor: { name: 'model.layers.0.mlp.gate_proj.weight', bytes: 4 * 1536 * 576 },
  },
  {
    repo: 'HuggingFaceTB/SmolLM2-360M-Instruct',
    note: 'Noticeably better answers than 135M; still trains with LoRA on most laptops.',
    architecture: 'LlamaForCausalLM',
    parameters: 361_821_120,
    downloadBytes: 725.8 * MB, // model.safetensors 723.7 MB + tokenizer.json 2.1 MB
    dtype: 'BF16',
    shape: { layers: 32, hidden: 960, intermediate: 2560, heads: 15, kvHeads: 5, headDim: 64, vocab: 49152, gatedMlp: true },
    largestTensor: { name: 'model.layers.0.mlp.gate_proj.weight', bytes: 4 * 2560 * 960 },
  },
  {
    repo: 'Qwen/Qwen2.5-0.5B-Instruct',
    note: 'The strongest of the list and multilingual; its 152k-token vocabulary makes training heavier.',
    architecture: 'Qwen2ForCausalLM',
    parameters: 494_032_768,
    downloadBytes: 995.2 * MB, // model.safetensors 988.1 MB + tokenizer.json 7.0 MB
    dtype: 'BF16',
    shape: { layers: 24, hidden: 896, intermediate: 4864, heads: 14, kvHeads: 2, headDim: 64, vocab: 151936, gatedMlp: true },
    largestTensor: { name: 'model.layers.0.mlp.gate_proj.weight', bytes: 4 * 4864 * 896 },
  },
  {
    repo: 'google/gemma-3-270m-it',
    note: 'Gemma 3, tiny and multilingual; a 262k-token vocabulary, so most of its memory is the embedding.',
    architecture: 'Gemma3ForCausalLM',
    parameters: 268_098_176,
    downloadBytes: 569.7 * MB, // model.safetensors ≈ 536.2 MB (BF16) + tokenizer.json ≈ 33.4 MB
    dtype: 'BF16',
    shape: { layers: 18, hidden: 640, intermediate: 2048, heads: 4, kvHeads: 1, headDim: 256, vocab: 262144, gatedMlp: true, tied: true, qkNorm: true, sandwichNorms: true, localRope: true, embedScaled: true },
    largestTensor: { name: 'model.layers.0.mlp.gate_proj.weight', bytes: 4 * 2048 * 640 },
  },
  {
    repo: 'Qwen/Qwen3-0.6B',
    note: 'Qwen3 with thinking and non-thinking chat; strong for its size.',
    architecture: 'Qwen3ForCausalLM',
    parameters: 596_049_920,
    downloadBytes: 1203.5 * MB, // model.safetensors ≈ 1192.1 MB (BF16) + tokenizer.json ≈ 11.4 MB
    dtype: 'BF16',
    shape: { layers: 28, hidden: 1024, intermediate: 3072, heads: 16, kvHeads: 8, headDim: 128, vocab: 151936, gatedMlp: true, tied: true, qkNorm: true },
    largestTensor: { name: 'model.layers.0.mlp.gate_proj.weight', bytes: 4 * 3072 * 1024 },
  },
  {
    repo: 'google/gemma-3-1b-it',
    note: 'Gemma 3 1B: a capable chat model; train it with a 4-bit base (QLoRA) on most laptops.',
    architecture: 'Gemma3ForCausalLM',
    parameters: 999_885_952,
    downloadBytes: 2033.2 * MB, // model.safetensors ≈ 1999.8 MB (BF16) + tokenizer.json ≈ 33.4 MB
    dtype: 'BF16',
    shape: { layers: 26, hidden: 1152, intermediate: 6912, heads: 4, kvHeads: 1, headDim: 256, vocab: 262144, gatedMlp: true, tied: true, qkNorm: true, sandwichNorms: true, localRope: true, embedScaled: true },
    largestTensor: { name: 'model.layers.0.mlp.gate_proj.weight', bytes: 4 * 6912 * 1152 },
  },
  {
    repo: 'meta-llama/Llama-3.2-1B-Instruct',
    note: 'Llama 3.2 1B (gated: accept its licence on the hub and set a token); QLoRA keeps it within 2 GiB.',
    architecture: 'LlamaForCausalLM',
    parameters: 1_235_814_400,
    downloadBytes: 2480.7 * MB, // model.safetensors ≈ 2471.6 MB (BF16) + tokenizer.json ≈ 9.1 MB
    dtype: 'BF16',
    shape: { layers: 16, hidden: 2048, intermediate: 8192, heads: 32, kvHeads: 8, headDim: 64, vocab: 128256, gatedMlp: true, tied: true },
    largestTensor: { name: 'model.layers.0.mlp.gate_proj.weight', bytes: 4 * 8192 * 2048 },
  },
  {
    repo: 'Qwen/Qwen2.5-1.5B-Instruct',
    note: 'The largest of the list: train it with a 4-bit base (QLoRA) and gradient checkpointing.',
    architecture: 'Qwen2ForCausalLM',
    parameters: 1_543_714_304,
    downloadBytes: 3094.4 * MB, // model.safetensors ≈ 3087.4 MB (BF16) + tokenizer.json 7.0 MB
    dtype: 'BF16',
    shape: { layers: 28, hidden: 1536, intermediate: 8960, heads: 12, kvHeads: 2, headDim: 128, vocab: 151936, gatedMlp: true, tied: true },
    largestTensor: { name: 'model.layers.0.mlp.gate_proj.weight', bytes: 4 * 8960 * 1536 },
  },
  {
    repo: 'openai-community/gpt2',
    note: 'The classic base model (no chat training): shows what instruction tuning adds.',
    architecture: 'GPT2LMHeadModel',
    parameters: 124_439_808,
    downloadBytes: 549.5 * MB, // model.safetensors 548.1 MB (F32) + tokenizer.json 1.4 MB
    dtype: 'F32',
    shape: { layers: 12, hidden: 768, intermediate: 3072, heads: 12, kvHeads: 12, headDim: 64, vocab: 50257, gatedMlp: false },
    largestTensor: { name: 'h.0.mlp.c_fc.weight', bytes: 4 * 3072 * 768 },
  },
];

export function builtInModel(repo: string): BuiltInModel | undefined {
  return BUILT_IN_MODELS.find((m) => m.repo === repo);
}

// ---- does it fit? -------------------------------------------------------------------------------------------

const GiB = 1024 ** 3;

/** The budget when the browser does not report its memory. */
export const DEFAULT_BUDGET_BYTES = 4 * GiB;
/** The smallest budget Graft assumes. */
export const MIN_BUDGET_BYTES = 2 * GiB;

/**
 * GPU memory this device can be expected to give one tab, in bytes: a heuristic, because WebGPU does not expose
 * how much memory a GPU has. Half the device memory the browser reports (navigator.deviceMemory, in GB, which
 * browsers round and cap at 8), at least 2 GiB; 4 GiB when the browser does not report it. Integrated GPUs share
 * that memory with everything else; a discrete GPU may well have more than this budget, which is why a model
 * beyond it is marked "may not fit", never refused.
 */
export function memoryBudget(deviceMemoryGB?: number): number {
  if (deviceMemoryGB === undefined || !Number.isFinite(deviceMemoryGB) || deviceMemoryGB <= 0) return DEFAULT_BUDGET_BYTES;
  return Math.max(MIN_BUDGET_BYTES, (deviceMemoryGB / 2) * GiB);
}

/** The tooltip that says how the verdict is made. */
export const FIT_EXPLANATION =
  'WebGPU does not tell a web page how much memory the GPU has, so this is an estimate. A model will not fit when one of its weights is larger ' +
  'than the biggest buffer this GPU allows (maxStorageBufferBindingSize, maxBufferSize). It may not fit when the memory estimate is above ' +
  'a budget of half the memory the browser reports (navigator.deviceMemory, at least 2 GiB; 4 GiB when not reported). A large GPU can hold more: ' +
  'then try it.';

export type FitLevel = 'fits' | 'tight' | 'no';

export interface FitVerdict {
  level: FitLevel;
  /** "fits", "may not fit", "will not fit" */
  label: string;
  /** Why, in one sentence. */
  reason: string;
}

export interface FitInput {
  /** The memory estimate of what is asked (LoRA or full training, or generating). */
  needBytes: number;
  /** The largest weight that must fit one storage binding. */
  largestTensorBytes: number;
  adapter?: { limits: Pick<AdapterSummary['limits'], 'maxBufferSize' | 'maxStorageBufferBindingSize'> } | undefined;
  budgetBytes: number;
}

const gib = (b: number) => (b >= 0.95 * GiB ? `${(b / GiB).toFixed(1)} GiB` : `${Math.round(b / 1024 ** 2)} MiB`);

export function fitVerdict(i: FitInput): FitVerdict {
  const limits = i.adapter?.limits;
  if (limits) {
    const binding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    if (i.largestTensorBytes > binding) {
      return {
        level: 'no',
        label: 'will not fit',
        reason: `Its largest weight needs ${gib(i.largestTensorBytes)} in one buffer; this GPU allows ${gib(binding)}.`,
      };
    }
  }
  if (i.needBytes > i.budgetBytes) {
    return {
      level: 'tight',
      label: 'may not fit',
      reason: `About ${gib(i.needBytes)}, more than the ${gib(i.budgetBytes)} this device can be expected to give a tab.`,
    };
  }
  return { level: 'fits', label: 'fits', reason: `About ${gib(i.needBytes)}, within the ${gib(i.budgetBytes)} this device can be expected to give a tab.` };
}

/** "135M", "1.2B" */
export function formatParameters(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${Math.round(n / 1e6)}M`;
  if (n >= 1e3) return `${Math.round(n / 1e3)}k`;
  return String(n);
}

/** "271 MB", "1.0 GB": download sizes in decimal units, as the hub shows them. */
export function formatDownload(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${Math.round(bytes / 1e6)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

/** Memory in binary units: "1.2 GiB", "630 MiB". */
export function formatMemory(bytes: number): string {
  return gib(bytes);
}
