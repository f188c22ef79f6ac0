// Reading the entries an import needs out of a zip, each with a size cap that holds while it inflates (fflate's
// streaming Unzip): entries that are not needed are never inflated. Used by the adapter import (library.ts).
import { Unzip, UnzipInflate } from 'fflate';
import { formatBytes } from '../engine/errors';
import { ModelError } from '../model/source';

/**
 * The most bytes an imported zip's entries may unpack to: an adapter's config is a small JSON file; its weights
 * (adapter_model.safetensors) are at most a few hundred MB even for large models and high ranks.
 */
export const ZIP_ENTRY_CAPS: Readonly<Record<string, number>> = {
  'adapter_config.json': 1024 * 1024,
  'adapter_model.safetensors': 2 * 1024 * 1024 * 1024,
  'adapter_model.bin': 2 * 1024 * 1024 * 1024,
};

/**
 * Bytes of the zip handed to the unpacker at a time: what one push can inflate past a cap is bounded by it
 * (deflate expands at most about 1032 times: 4 MiB).
 */
const ZIP_PUSH_BYTES = 4 * 1024;

/**
 * The entries of a zip whose file name (the last part of the path) `caps` lists, each the first of its name:
 * only those are inflated, each stopped as soon as it passes its cap (a zip bomb in an unused entry costs
 * nothing; one in a used entry is refused after at most its cap). Throws ModelError naming the zip and entry.
 */
export function readZipEntries(zipName: string, bytes: Uint8Array, caps: Readonly<Record<string, number>>): Map<string, Uint8Array> {
  const found = new Map<string, Uint8Array>();
  let failure: ModelError | undefined;
  const unzip = new Unzip((file) => {
    const base = file.name.split('/').pop()!;
    const cap = caps[base];
    if (cap === undefined || found.has(base) || failure) return; // not used: never inflated
    const refuse = () =>
      new ModelError('bad-file', `${zipName}: ${file.name} unpacks to more than ${formatBytes(cap)}, the most Graft reads for ${base}; it was not read. Pick the adapter's own files, or a zip that holds them.`, { file: base });
    if (file.originalSize !== undefined && file.originalSize > cap) {
      failure = refuse();
      return;
    }
    const parts: Uint8Array[] = [];
    let total = 0;
    file.ondata = (err, chunk, final) => {
      if (failure) return;
      if (err) {
        failure = new ModelError('bad-file', `${zipName} is not a zip file Graft can read (${file.name}: ${err.message}).`, { file: zipName });
        return;
      }
      total += chunk.length;
      if (total > cap) {
        failure = refuse();
        file.terminate();
        parts.length = 0;
        return;
      }
      parts.push(chunk);
      if (final) {
        const out = new Uint8Array(total);
        let at = 0;
        for (const p of parts) {
          out.set(p, at);
          at += p.length;
        }
        found.set(base, out);
      }
    };
    try {
      file.start();
    } catch (e) {
      failure = new ModelError('bad-file', `${zipName}: ${file.name} is stored in a way Graft cannot unpack (${e instanceof Error ? e.message : String(e)}).`, { file: zipName });
    }
  });
  unzip.register(UnzipInflate);
  try {
    for (let at = 0; at < bytes.length && !failure; at += ZIP_PUSH_BYTES) unzip.push(bytes.subarray(at, at + ZIP_PUSH_BYTES), at + ZIP_PUSH_BYTES >= bytes.length);
    if (bytes.length === 0) unzip.push(bytes, true);
  } catch (e) {
    failure ??= new ModelError('bad-file', `${zipName} is not a zip file Graft can read (${e instanceof Error ? e.message : String(e)}).`, { file: zipName });
  }
  if (failure) throw failure;
  return found;
}
