// Service worker registration with a prompt: a new version waits until the person chooses to reload, so a running
// fine-tune is never interrupted by an update (the two callbacks: docs/ui.md, "Updates").
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
