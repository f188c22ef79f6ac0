// A model (or adapter) folder on disk as a ModelSource: what `--model ./some/folder` and `--adapter` read.
import { open, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { checkFilePath } from '../hub/store';
import type { ModelSource } from '../model/source';
import { CliError } from './report';

export interface FolderSource extends ModelSource {
  /** The folder's absolute path. */
  readonly dir: string;
}

/** Reads files of `dir`; a missing file reads as undefined. Throws CliError when `dir` is not a folder. */
export async function folderSource(dir: string, what = 'model'): Promise<FolderSource> {
  const abs = resolve(dir);
  let isDir = false;
  try {
    isDir = (await stat(abs)).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new CliError('no-folder', `There is no ${what} folder at ${abs}.`);
  }
  if (!isDir) throw new CliError('no-folder', `${abs} is a file; give the ${what} folder that holds it instead.`);
  const missing = (e: unknown, path: string): undefined => {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'EISDIR') throw new CliError('bad-folder', `${join(abs, path)} is a folder, not a file.`);
    throw e;
  };
  const fileOf = (path: string) => {
    checkFilePath(path);
    return join(abs, ...path.split('/'));
  };
  return {
    name: basename(abs),
    dir: abs,
    async readFile(path: string): Promise<Uint8Array | undefined> {
      try {
        const buf = await readFile(fileOf(path));
        return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      } catch (e) {
        return missing(e, path);
      }
    },
    async readHead(path: string, length: number): Promise<{ bytes: Uint8Array; size: number } | undefined> {
      let fh;
      try {
        fh = await open(fileOf(path), 'r');
      } catch (e) {
        return missing(e, path);
      }
      try {
        const st = await fh.stat();
        const size = st.size;
        if (!st.isFile()) throw new CliError('bad-folder', `${join(abs, path)} is not a file.`);
        const bytes = new Uint8Array(Math.max(0, Math.min(length, size)));
        let at = 0;
        while (at < bytes.length) {
          const { bytesRead } = await fh.read(bytes, at, bytes.length - at, at);
          if (bytesRead === 0) break;
          at += bytesRead;
        }
        return { bytes: bytes.subarray(0, at), size };
      } finally {
        await fh.close();
      }
    },
  };
}
