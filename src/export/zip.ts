// One zip of an export's files, for the app's single-download buttons. fflate builds it in memory (no ZIP64:
// the archive and each file must stay under 4 GiB; a larger merged model is downloaded file by file).
// Files that do not shrink (safetensors weights, already-compressed data) are stored, the rest deflated.
import { zipSync, type Zippable } from 'fflate';

export const ZIP_LIMIT_BYTES = 0xffffffff;

export interface ZipOptions {
  /** Modification time of the entries (default: now). */
  mtime?: Date;
  /** Deflate level for compressible files, 0–9 (default 6). */
  level?: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
}

const STORED = /\.(safetensors|parquet|zip|gz|bin|png|jpe?g)$/i;

/** A zip of `files` (path → bytes; "/" in a path makes folders). */
export function zipFiles(files: ReadonlyMap<string, Uint8Array>, options: ZipOptions = {}): Uint8Array {
  const mtime = options.mtime ?? new Date();
  const level = options.level ?? 6;
  const tree: Zippable = {};
  let total = 0;
  for (const [path, bytes] of files) {
    if (path === '' || path.startsWith('/') || path.split('/').some((p) => p === '' || p === '..' || p === '.')) {
      throw new Error(`zipFiles: "${path}" is not a relative file path`);
    }
    if (bytes.length > ZIP_LIMIT_BYTES) throw new Error(`zipFiles: ${path} is larger than 4 GiB, more than a zip without ZIP64 holds; save the files one by one`);
    total += bytes.length;
    tree[path] = [bytes, { level: STORED.test(path) ? 0 : level, mtime }];
  }
  if (total > ZIP_LIMIT_BYTES) throw new Error('zipFiles: the files add up to more than 4 GiB, more than a zip without ZIP64 holds; save them one by one');
  return zipSync(tree);
}
