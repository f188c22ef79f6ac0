// The one model download the page runs at a time, shared by the Model screen's list and the Models panel: the
// state the panel shows (status, progress, error) and the actions (start, cancel).
import { proxy, type Remote } from 'comlink';
import type { DownloadProgress, EngineApi } from '../worker/api';
import type { Catalogue } from './catalogue.svelte';
import { graftDebug } from './gpu-check';
import { errorView, type ErrorView } from './models';

export type DownloadStatus = 'idle' | 'downloading' | 'done' | 'error' | 'cancelled';

export class Downloads {
  status = $state<DownloadStatus>('idle');
  activeRepo = $state('');
  progress = $state<DownloadProgress | undefined>(undefined);
  error = $state<ErrorView | undefined>(undefined);

  constructor(
    private readonly engine: Remote<EngineApi>,
    private readonly catalogue: Catalogue,
  ) {}

  get busy(): boolean {
    return this.status === 'downloading';
  }

  /** Downloads (or resumes) `repo`; resolves when it ended, whichever way. Returns whether it completed. */
  async start(repo: string): Promise<boolean> {
    const id = repo.trim();
    if (!id || this.busy) return false;
    this.activeRepo = id;
    this.status = 'downloading';
    this.error = undefined;
    this.progress = undefined;
    const debug = graftDebug(this.engine);
    const onProgress = proxy((p: DownloadProgress) => {
      this.progress = p;
      debug.downloadEvents.push(p);
      if (debug.downloadEvents.length > 500) debug.downloadEvents.shift();
    });
    try {
      await this.engine.downloadModel(id, onProgress);
      this.status = 'done';
      return true;
    } catch (e) {
      this.error = errorView(e);
      this.status = this.error.name === 'HubError' && this.error.code === 'aborted' ? 'cancelled' : 'error';
      return false;
    } finally {
      await this.catalogue.refresh();
    }
  }

  async cancel(): Promise<void> {
    await this.engine.cancelDownload(this.activeRepo);
  }
}
