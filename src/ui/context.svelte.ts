// What every screen shares: the engine worker, the stored models, the GPU check, the running download. One of
// each for the page's life; screens import them from here.
import { Catalogue } from './catalogue.svelte';
import { Downloads } from './downloads.svelte';
import { getEngine } from './engine';
import { runGpuCheck, type GpuCheck } from './gpu-check';

export const engine = getEngine();
export const catalogue = new Catalogue(engine);
export const downloads = new Downloads(engine, catalogue);

class GpuStatus {
  check = $state<GpuCheck>({ adapter: { status: 'searching' }, selfTest: { status: 'waiting' } });
  private started = false;

  /** Finds the adapter and runs the kernel self-test, once. */
  start(): void {
    if (this.started) return;
    this.started = true;
    void runGpuCheck(engine, (next) => (this.check = next));
  }

  get adapter() {
    return this.check.adapter.status === 'found' ? this.check.adapter.adapter : undefined;
  }
}

export const gpu = new GpuStatus();

/** navigator.deviceMemory (GB, rounded and capped by the browser), when the browser reports it. */
export function deviceMemoryGB(): number | undefined {
  const v = (navigator as Navigator & { deviceMemory?: number }).deviceMemory;
  return typeof v === 'number' && v > 0 ? v : undefined;
}

/**
 * Asks the browser to keep this site's storage (models, datasets) until the person deletes it; true when it
 * promised. Only a page can ask (navigator.storage.persist is not offered to workers); the worker reports the result.
 */
export async function keepStorage(): Promise<boolean> {
  let granted = false;
  try {
    granted = (await navigator.storage?.persist?.()) ?? false;
  } catch {
    granted = false;
  }
  if (!granted) granted = await engine.persistStorage();
  return granted;
}
