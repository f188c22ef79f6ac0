// The client and the IndexedDB store run in browsers and workers: neither they nor anything they import may
// use Node. And HubErrors survive the worker boundary through their wire form.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HubError, isSerializedHubError, reviveHubError, serializeHubError } from '../../src/hub/errors';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Every source file reachable from `entry` through relative imports. */
function closure(entry: string): Map<string, string> {
  const seen = new Map<string, string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    seen.set(file, text);
    for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec.endsWith('.ts') ? spec : `${spec}.ts`));
    }
  };
  visit(join(SRC, entry));
  return seen;
}

describe('browser-safe hub modules', () => {
  for (const entry of ['hub/index.ts', 'hub/client.ts', 'hub/store-idb.ts']) {
    it(`${entry} and its imports use no Node module or global`, () => {
      const files = closure(entry);
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
