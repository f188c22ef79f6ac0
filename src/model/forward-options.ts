// What one forward is asked to do (CausalLM.forward): which logits to make, whether to keep what a backward
// needs and how (activation checkpointing), the LoRA dropout of a training step, and the adapter of that call.
import type { ModelAdapter } from './adapters';

export interface ForwardOptions {
  /**
   * 'full' (default): acts.logits is [N, V], assembled when the vocabulary is split. 'chunks': only
   * acts.logitChunks, one per vocabulary block (for chunked cross-entropy when [N, V] is too large to bind).
   * 'none': no lm_head at all (a head of its own reads acts.hidden, e.g. a reward model's score).
   */
  logits?: 'full' | 'chunks' | 'none';
  /**
   * false: keep nothing for a backward (evaluation, DPO's reference log-probs): each layer's tensors are freed
   * as soon as the next layer has run, and backward() refuses these activations. Default true.
   */
  saveForBackward?: boolean;
  /**
   * Activation checkpointing (with saveForBackward): keep only each layer's input [N, H]; the backward runs a
   * layer's forward again (the same kernels on the same input, adapter and dropout masks, so the same saved
   * tensors bit for bit) just before that layer's backward and frees them after it. Saves about
   * (L − 1)·(a layer's saved activations − N·H) of the step's peak for about one more forward pass.
   */
  checkpoint?: boolean;
  /**
   * PEFT's lora_dropout for this forward (training only: evaluation, generation and reference forwards leave
   * it out). Each linear with a LoRA module computes scale·(dropout(x)·Aᵀ)·Bᵀ, its base path x·Wᵀ unchanged.
   * Ignored without an adapter or with p = 0 (then nothing differs from a forward without it, bit for bit).
   */
  loraDropout?: LoraDropout;
  /**
   * The adapter for this forward only (null: the base model); undefined: the one set with setAdapter. Checked
   * against the model like setAdapter's.
   */
  adapter?: ModelAdapter | null;
}

/**
 * LoRA dropout for one forward: probability p ∈ [0, 1], and the Philox seed and first counter (integers).
 *
 * Counters: the adapted linears draw consecutive ranges from `offset`, in linearModules() order (layer by
 * layer; within a layer q, k, v (GPT-2: c_attn), o, gate, up, down — the order the forward runs them),
 * skipping modules without an adapter: with N = B·T tokens, module k masks its input [N, in_k] with counters
 * [offset + c_k, offset + c_k + N·in_k), c_k = Σ_{j<k} N·in_j. So q, k and v, which read the same input, get
 * independent masks, as PEFT's separate nn.Dropout modules do. One forward draws
 * CausalLM.loraDropoutCounters(N) counters in all; a following forward with the same seed must start at
 * offset + that count or later for its masks not to repeat.
 */
export interface LoraDropout {
  p: number;
  seed: number;
  offset: number;
}
