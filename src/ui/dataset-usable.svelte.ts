// How many records of the chosen dataset can be trained on, for the navigation's Data mark (journey.ts): the Data
// screen says it whenever it shows a summary; after a reload the worker is asked once for the kept dataset.
import { engine } from './context.svelte';
import { app } from './state.svelte';

class DatasetUsable {
  /** The last count known, and the dataset it is of. */
  known = $state<{ id: string; valid: number } | undefined>(undefined);

  constructor() {
    $effect.root(() => {
      $effect(() => {
        const id = app.dataset?.id;
        if (!id || this.known?.id === id) return;
        engine.restoreDataset(id).then(
          (s) => {
            if (s && app.dataset?.id === id && this.known?.id !== id) this.known = { id, valid: s.valid };
          },
          () => undefined,
        );
      });
    });
  }

  /** The Data screen's summary of a dataset. */
  set(id: string, valid: number): void {
    this.known = { id, valid };
  }

  /** Usable records of the chosen dataset; undefined while not known (or none is chosen). */
  get count(): number | undefined {
    const id = app.dataset?.id;
    return id && this.known?.id === id ? this.known.valid : undefined;
  }
}

export const datasetUsable = new DatasetUsable();
