// Gradient buffers, by parameter name. A name that is missing is frozen: the backward pass computes no
// gradient for it and allocates nothing. Base weights use their Hugging Face names (GPT-2 with the
// `transformer.` prefix; a tied lm_head is the embedding), LoRA tensors their PEFT names
// ('base_model.model.<module>.lora_A.weight'). A parameter larger than one GPU binding is held as row
// blocks, and so is its gradient: `get` returns the blocks in the parameter's order (usually one).
import type { GpuContext } from '../engine/context';
import type { Tensor } from '../engine/tensor';

export class Gradients {
  private readonly map = new Map<string, Tensor[]>();

  constructor(readonly ctx: GpuContext) {}

  /** The gradient blocks of `name`, or undefined when `name` is frozen. */
  get(name: string): Tensor[] | undefined {
    return this.map.get(name);
  }

  /** The gradient of a parameter held in one block; undefined when frozen. Throws for a split parameter. */
  tensor(name: string): Tensor | undefined {
    const parts = this.map.get(name);
    if (parts && parts.length !== 1) throw new Error(`Gradients: ${name} is split into ${parts.length} blocks; use get()`);
    return parts?.[0];
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  set(name: string, parts: Tensor | Tensor[]): void {
    this.map.set(name, Array.isArray(parts) ? parts : [parts]);
  }

  get names(): string[] {
    return [...this.map.keys()];
  }

  get size(): number {
    return this.map.size;
  }

  entries(): IterableIterator<[string, Tensor[]]> {
    return this.map.entries();
  }

  /** Every gradient block, flat (for the gradient norm). */
  tensors(): Tensor[] {
    return [...this.map.values()].flat();
  }

  /** Clears every gradient to zero (recorded, in order with other work). */
  zero(): void {
    for (const t of this.tensors()) this.ctx.fill(t, 0);
  }

  release(): void {
    for (const t of this.tensors()) t.release();
    this.map.clear();
  }
}
