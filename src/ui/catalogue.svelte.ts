// The models stored on this device and the storage they use, shared by the Models and Chat panels. The worker
// owns IndexedDB; this is the page's copy, refreshed after each change.
import type { Remote } from 'comlink';
import type { CachedModel, EngineApi, StorageInfo } from '../worker/api';
import { errorView, type ErrorView } from './models';

export class Catalogue {
  models = $state<CachedModel[]>([]);
  storage = $state<StorageInfo | undefined>(undefined);
  /** Set once the first listing arrived (the page shows "loading" until then). */
  ready = $state(false);
  error = $state<ErrorView | undefined>(undefined);

  constructor(private readonly engine: Remote<EngineApi>) {}

  get complete(): CachedModel[] {
    return this.models.filter((m) => m.complete);
  }

  async refresh(): Promise<void> {
    try {
      const [models, storage] = await Promise.all([this.engine.listModels(), this.engine.storageEstimate()]);
      this.models = models.sort((a, b) => a.repo.localeCompare(b.repo) || a.revision.localeCompare(b.revision));
      this.storage = storage;
      this.error = undefined;
    } catch (e) {
      this.error = errorView(e);
    } finally {
      this.ready = true;
    }
  }
}
