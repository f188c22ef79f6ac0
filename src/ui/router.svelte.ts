// Hash routing between the screens: #/start, #/model, #/data, ... A reload keeps the screen, and the browser's
// back button goes to the previous one. Any other hash (#main from the skip link) leaves the screen as it is.
import { SCREEN_IDS, type ScreenId } from './screen-ids';

function fromHash(hash: string): ScreenId | undefined {
  const m = /^#\/([a-z-]+)/.exec(hash);
  const id = m?.[1];
  return id && (SCREEN_IDS as readonly string[]).includes(id) ? (id as ScreenId) : undefined;
}

class Router {
  current = $state<ScreenId>(fromHash(globalThis.location?.hash ?? '') ?? 'start');

  constructor() {
    globalThis.addEventListener?.('hashchange', () => {
      const id = fromHash(location.hash);
      if (id) this.current = id;
    });
  }

  go(id: ScreenId): void {
    if (location.hash !== `#/${id}`) location.hash = `#/${id}`;
    this.current = id;
  }

  href(id: ScreenId): string {
    return `#/${id}`;
  }
}

export const router = new Router();
