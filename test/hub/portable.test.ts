// The client and the IndexedDB store run in browsers and workers: neither they nor anything they import may
// use Node. And HubErrors survive the worker boundary through their wire form.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import madge from 'madge';
import { describe, expect, it } from 'vitest';
import { HubError, isSerializedHubError, reviveHubError, serializeHubError } from '../../src/hub/errors';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Every source file reachable from `entry` (madge's import graph, type imports included), with its code. */
async function closure(entry: string): Promise<Map<string, string>> {
  const graph = (await madge(join(SRC, entry), { baseDir: SRC, fileExtensions: ['ts'], tsConfig: 'tsconfig.json', detectiveOptions: { ts: { skipTypeImports: false } } })).obj();
  const files = new Set([...Object.keys(graph), ...Object.values(graph).flat()]);
  const seen = new Map<string, string>();
  for (const f of files) seen.set(f, readFileSync(join(SRC, f), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, ''));
  return seen;
}

describe('browser-safe hub modules', () => {
  for (const entry of ['hub/index.ts', 'hub/client.ts', 'hub/store-idb.ts']) {
    it(`${entry} and its imports use no Node module or global`, async () => {
      const files = await closure(entry);
      expect(files.size).toBeGreaterThan(1);
      expect([...files.keys()].some((f) => f.endsWith('store-node.ts'))).toBe(false);
      for (const [file, text] of files) {
        const code = text;
        expect(code, file).not.toMatch(/from\s+['"](node:|fs|path|os|http|crypto)['"/]/);
        expect(code, file).not.toMatch(/\b(require\(|process\.|Buffer\.|__dirname)/);
      }
    });
  }
});

describe('HubError across the worker boundary', () => {
  it('keeps code, file, status and message through structured cloning of its wire form', () => {
    const e = new HubError('unauthorized', 'needs a token', { file: 'config.json', status: 401 });
    const wire = structuredClone(serializeHubError(e));
    expect(isSerializedHubError(wire)).toBe(true);
    expect(isSerializedHubError(new Error('x'))).toBe(false);
    const back = reviveHubError(wire);
    expect(back).toBeInstanceOf(HubError);
    expect(back).toMatchObject({ code: 'unauthorized', file: 'config.json', status: 401, message: 'needs a token' });
  });
});
