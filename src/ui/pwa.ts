// Service worker registration with a prompt: a new version is installed in the background and waits until
// the person chooses to reload, so a running fine-tune is never interrupted by an update.
//
// Two ways a new version reaches this page:
//   onNeedRefresh: a new service worker is installed and waiting; the page offers "Reload" (update(true) tells
//     the waiting worker to take over, and the page reloads into the new version through onNeedReload).
//   onNeedReload: a new service worker took control of this page, because this page asked for it (Reload) or
//     because another tab of Graft did. Without this callback the plugin reloads the page at once; the app
//     passes one so that a page in the middle of a training run is not reloaded (UpdatePrompt.svelte).
import { registerSW } from 'virtual:pwa-register';

export interface PwaEvents {
  onNeedRefresh(): void;
  onNeedReload(): void;
  onOfflineReady(): void;
  onRegisterError(error: unknown): void;
}

/** Registers the service worker; returns the function that activates a waiting update and reloads. */
export function registerServiceWorker(events: PwaEvents): (reload?: boolean) => Promise<void> {
  if (!('serviceWorker' in navigator)) return async () => {};
  return registerSW({
    immediate: true,
    onNeedRefresh: events.onNeedRefresh,
    onNeedReload: events.onNeedReload,
    onOfflineReady: events.onOfflineReady,
    onRegisterError: events.onRegisterError,
  });
}
