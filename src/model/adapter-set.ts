// Named adapters kept on the GPU beside one base model, so a person can keep one adapter per task and switch
// between them per request: load(name, adapter) checks the adapter against the model and keeps it under a
// name; list(); get/resolve by name (resolve throws with the loaded names); unload(name) frees its GPU tensors
// (and switches the model back to the base if it was the current adapter). Selecting per request is passing
// resolve(name) as ForwardOptions.adapter, or to CausalLM.setAdapter before a generation.
import { releaseModelAdapter, type ModelAdapter } from './adapters';
import type { CausalLM } from './transformer';

/** Named adapters on one base model. */
export class AdapterSet {
  private readonly map = new Map<string, ModelAdapter>();

  constructor(readonly model: CausalLM) {}

  /**
   * Keeps `adapter` under `name` after checking that it fits the model (throws otherwise, keeping nothing).
   * Returns the adapter it replaces under that name, which the caller frees (releaseFreed) once no running
   * work uses it; undefined when the name was free.
   */
  load(name: string, adapter: ModelAdapter): ModelAdapter | undefined {
    if (!name) throw new Error('AdapterSet.load: an adapter needs a name');
    this.model.checkAdapter(adapter);
    const old = this.map.get(name);
    this.map.set(name, adapter);
    return old;
  }

  /** The loaded names, in load order. */
  list(): string[] {
    return [...this.map.keys()];
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  get(name: string): ModelAdapter | undefined {
    return this.map.get(name);
  }

  /** The adapter named `name` (null: the base model). Throws, naming the loaded ones, for an unknown name. */
  resolve(name: string | null): ModelAdapter | null {
    if (name === null) return null;
    const a = this.map.get(name);
    if (!a) {
      const known = this.list();
      throw new Error(`No adapter named "${name}" is loaded${known.length ? `; loaded: ${known.map((n) => `"${n}"`).join(', ')}` : ''}.`);
    }
    return a;
  }

  /**
   * Takes an adapter out of the set without freeing it or touching the model (work still running with it keeps
   * running); free it later with releaseFreed.
   */
  remove(name: string): ModelAdapter | undefined {
    const a = this.map.get(name);
    if (!a) return undefined;
    this.map.delete(name);
    return a;
  }

  /** Frees an adapter taken out by remove or replaced by load: the model drops it first if it is the current one. */
  releaseFreed(adapter: ModelAdapter): void {
    if (this.model.adapter === adapter) this.model.setAdapter(null);
    releaseModelAdapter(adapter);
  }

  /** Removes an adapter and frees its GPU tensors now (the model runs the base if it was current). Returns whether the name was loaded. */
  unload(name: string): boolean {
    const a = this.remove(name);
    if (a) this.releaseFreed(a);
    return a !== undefined;
  }

  /** Unloads every adapter. */
  clear(): void {
    for (const name of this.list()) this.unload(name);
  }
}
