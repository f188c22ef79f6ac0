// Hub settings in the worker: the endpoint is stored on the device (IndexedDB: the "graft" database's `settings`
// store, key "hub"); the access token lives in the worker's memory only, unless the person ticks "remember",
// which stores it too. The page never gets the token back, only whether one is set.
import { GraftDbConnection } from '../storage';
import { DEFAULT_ENDPOINT, endpointProblem } from '../hub/client';
import { HubError } from '../hub/errors';
import type { HubSettings, HubSettingsUpdate } from './api';

const HUB_KEY = 'hub';

interface StoredHubSettings {
  endpoint?: string;
  token?: string;
  rememberToken?: boolean;
}

/**
 * Checks and normalizes an endpoint: an https URL (plain http only for a hub on this computer) without a
 * trailing slash.
 */
export function normalizeEndpoint(raw: string): string {
  const s = raw.trim();
  if (s === '') return DEFAULT_ENDPOINT;
  const problem = endpointProblem(s);
  if (problem) throw new HubError('bad-endpoint', `${problem[0]!.toUpperCase()}${problem.slice(1)}.`);
  const url = new URL(s);
  if (url.search || url.hash) throw new HubError('bad-endpoint', `The hub address must not have a query or fragment: ${s}`);
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

export class HubSettingsStore {
  private endpoint = DEFAULT_ENDPOINT;
  private token: string | undefined;
  private rememberToken = false;
  private loaded: Promise<void> | undefined;
  private readonly connection: GraftDbConnection;

  /** `indexedDB`: the IndexedDB factory (default globalThis.indexedDB; tests pass fake-indexeddb's). */
  constructor(indexedDB?: IDBFactory) {
    this.connection = new GraftDbConnection(indexedDB);
  }

  /** Reads the stored settings once; storage that cannot be read leaves the defaults. */
  private ensureLoaded(): Promise<void> {
    this.loaded ??= (async () => {
      try {
        const s = (await (await this.connection.get()).get('settings', HUB_KEY)) as StoredHubSettings | undefined;
        if (s?.endpoint) this.endpoint = s.endpoint;
        if (s?.rememberToken && s.token) {
          this.token = s.token;
          this.rememberToken = true;
        }
      } catch (e) {
        console.warn('Graft: the hub settings could not be read; using the defaults.', e);
      }
    })();
    return this.loaded;
  }

  async get(): Promise<HubSettings> {
    await this.ensureLoaded();
    return this.view();
  }

  /** What the hub client needs. */
  async current(): Promise<{ endpoint: string; token?: string }> {
    await this.ensureLoaded();
    return this.token ? { endpoint: this.endpoint, token: this.token } : { endpoint: this.endpoint };
  }

  async update(u: HubSettingsUpdate): Promise<HubSettings> {
    await this.ensureLoaded();
    const endpoint = u.endpoint !== undefined ? normalizeEndpoint(u.endpoint) : this.endpoint;
    this.endpoint = endpoint;
    if (u.token === null) this.token = undefined;
    else if (u.token !== undefined) this.token = u.token.trim() || undefined;
    if (u.rememberToken !== undefined) this.rememberToken = u.rememberToken;
    const stored: StoredHubSettings = { endpoint: this.endpoint, rememberToken: this.rememberToken };
    if (this.rememberToken && this.token) stored.token = this.token;
    await (await this.connection.get()).put('settings', stored, HUB_KEY);
    return this.view();
  }

  private view(): HubSettings {
    return { endpoint: this.endpoint, defaultEndpoint: DEFAULT_ENDPOINT, hasToken: this.token !== undefined, rememberToken: this.rememberToken };
  }
}
