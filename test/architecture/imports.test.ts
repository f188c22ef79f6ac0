// The layers of docs/architecture.md, checked on the import graph of src/ (madge, type imports included):
//   ui → worker → job → train / model / data / export / eval → engine → shaders;  hub beside;  storage below
// no import circle anywhere (a circle of type imports counts too: it is how the page and the worker once
// came to import each other), and each layer imports only the layers below it.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import madge from 'madge';
import { beforeAll, describe, expect, it } from 'vitest';

/** Which top-level parts of src/ each part may import (besides itself). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  'main.ts': ['ui'],
  ui: ['worker'],
  worker: ['job', 'train', 'model', 'data', 'export', 'eval', 'engine', 'hub', 'storage', 'version.ts'],
  cli: ['job', 'train', 'model', 'data', 'export', 'eval', 'engine', 'hub', 'version.ts'],
  job: ['train', 'model', 'data', 'export', 'eval', 'engine', 'hub', 'version.ts'],
  train: ['model', 'data', 'export', 'engine', 'hub', 'storage'],
  model: ['train', 'data', 'export', 'engine', 'hub'],
  data: ['train', 'model', 'export', 'engine', 'hub'],
  export: ['train', 'model', 'data', 'engine', 'hub'],
  // generation metrics (BLEU, ROUGE) and their segmenter: beside data, below job
  eval: ['data', 'engine'],
  hub: ['engine', 'storage'],
  engine: [],
  storage: [],
  'version.ts': [],
};

/** What the page may take from the worker: its protocol and the values and error classes it shares. */
const PAGE_FACING = ['worker/api.ts', 'worker/protocol.ts', 'worker/constants.ts', 'worker/adapter-kinds.ts', 'worker/transfer.ts'];

const part = (file: string) => file.split('/')[0]!;

let graph: Record<string, string[]>;
let circles: string[][];

beforeAll(async () => {
  const result = await madge('src', { fileExtensions: ['ts'], tsConfig: 'tsconfig.json', detectiveOptions: { ts: { skipTypeImports: false } } });
  graph = result.obj();
  circles = result.circular();
}, 60_000);

/** Imports of the Svelte components (madge reads .ts only): the specifiers of their script blocks. */
function svelteImports(): [string, string][] {
  const out: [string, string][] = [];
  for (const name of readdirSync('src/ui')) {
    if (!name.endsWith('.svelte')) continue;
    for (const m of readFileSync(join('src/ui', name), 'utf8').matchAll(/^\s*import\s[^'"]*['"](\.[^'"]+)['"]/gm)) {
      const to = join('ui', m[1]!).replace(/\\/g, '/');
      out.push([`ui/${name}`, /\.[a-z]+$/.test(to) ? to : `${to}.ts`]);
    }
  }
  return out;
}

describe('the import graph of src/', () => {
  it('reads the whole tree', () => {
    expect(Object.keys(graph).length).toBeGreaterThan(150);
    for (const p of Object.keys(MAY_IMPORT)) expect(Object.keys(graph).some((f) => part(f) === p), p).toBe(true);
  });

  it('has no import circle', () => {
    expect(circles).toEqual([]);
  });

  it('imports only downwards through the layers', () => {
    const wrong: string[] = [];
    const edges: [string, string][] = [...Object.entries(graph).flatMap(([f, deps]) => deps.map((d) => [f, d] as [string, string])), ...svelteImports()];
    for (const [from, to] of edges) {
      const a = part(from);
      const b = part(to);
      const allowed = MAY_IMPORT[a];
      expect(allowed, `${from} is in a part of src/ the layer table does not know`).toBeDefined();
      if (a !== b && !allowed!.includes(b)) wrong.push(`${from} → ${to}`);
      if (a === 'ui' && b === 'worker' && !PAGE_FACING.includes(to)) wrong.push(`${from} → ${to} (the page takes only ${PAGE_FACING.join(', ')})`);
    }
    expect(wrong).toEqual([]);
  });

  it('keeps the engine free of test references: nothing outside src/engine/ref imports them', () => {
    const users = Object.entries(graph).filter(([f, deps]) => !f.startsWith('engine/ref/') && deps.some((d) => d.startsWith('engine/ref/')));
    expect(users.map(([f]) => f)).toEqual([]);
  });
});
