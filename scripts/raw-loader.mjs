// Teaches Node (and tsx) Vite's `?raw` imports, so that the engine's `import src from '...wgsl?raw'` works
// outside Vite: the `graft` command (bin/graft.mjs) and the benchmarks (`tsx --import ./scripts/raw-loader.mjs
// bench/kernels.ts`) register it before they import any engine module.
// The module registers resolve/load hooks (Node's module.register); a `?raw` specifier resolves relative to
// its importer and loads as a module whose default export is the file's text. Hooks registered later run
// first, so registering this after tsx's hooks keeps tsx from seeing `?raw` specifiers at all.
import { register } from 'node:module';

const hooks = `
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
export async function resolve(specifier, context, next) {
  if (specifier.endsWith('?raw') && context.parentURL) {
    return { url: new URL(specifier, context.parentURL).href, shortCircuit: true };
  }
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (url.startsWith('file:') && url.endsWith('?raw')) {
    const text = await readFile(fileURLToPath(url.slice(0, -'?raw'.length)), 'utf8');
    return { format: 'module', source: 'export default ' + JSON.stringify(text) + ';', shortCircuit: true };
  }
  return next(url, context);
}
`;

register('data:text/javascript,' + encodeURIComponent(hooks));
