// File-system failures (Node's ENOSPC, EACCES, EROFS, ...) as one sentence that names the file and says what
// to do, for the command's writers (checkpoints, the output folder). No Node imports: it reads the error's
// fields only.
import { CodedError } from '../engine/errors';

/** A failure to read or write a file: `code` is the system's (ENOSPC, EACCES, ...), `file` the path. */
export class FileError extends CodedError {
  constructor(
    code: string,
    message: string,
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super('FileError', code, message, options);
  }
}

/** True for an error from the operating system (it has a syscall or an errno and an E... code). */
export function isSystemError(e: unknown): e is { code: string; path?: string; syscall?: string; message: string } {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as { code?: unknown; errno?: unknown; syscall?: unknown };
  return typeof x.code === 'string' && /^E[A-Z0-9]+$/.test(x.code) && (typeof x.syscall === 'string' || typeof x.errno === 'number');
}

/** True for a full disk or quota (ENOSPC, EDQUOT), wherever in the cause chain. */
export function isDiskFull(e: unknown): boolean {
  for (let cur = e, depth = 0; typeof cur === 'object' && cur !== null && depth < 8; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * What went wrong with `file` in words, without a full stop and without what to do: "there is no space left on
 * the disk for /out/x" (the caller adds what was kept and what to do).
 */
export function describeFileFailure(e: { code: string; syscall?: string; message: string }, file: string): string {
  switch (e.code) {
    case 'ENOSPC':
      return `there is no space left on the disk for ${file}`;
    case 'EDQUOT':
      return `the disk quota is used up, so ${file} cannot be written`;
    case 'EROFS':
      return `${file} is on a read-only file system`;
    case 'EACCES':
    case 'EPERM':
      return `permission to ${e.syscall === 'open' || e.syscall === 'scandir' || e.syscall === 'read' ? 'open' : 'write'} ${file} was denied`;
    case 'ENOENT':
      return `${file} does not exist`;
    case 'ENOTDIR':
      return `a part of ${file} is a file where a folder was expected`;
    case 'EISDIR':
      return `${file} is a folder where a file was expected`;
    case 'EMFILE':
    case 'ENFILE':
      return `too many files are open to open ${file}`;
    case 'EIO':
      return `the disk reported an input/output error on ${file}`;
    default:
      return `${file} could not be ${e.syscall === 'open' || e.syscall === 'read' ? 'read' : 'written'} (${e.code})`;
  }
}

/** What to do about a file failure. */
export function fileFailureAdvice(code: string): string {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return 'free some disk space and run the command again';
    case 'EROFS':
    case 'EACCES':
    case 'EPERM':
      return 'choose a folder you can write to (output_dir), or change its permissions';
    case 'ENOENT':
    case 'ENOTDIR':
    case 'EISDIR':
      return 'check the path';
    default:
      return 'check the disk and the path, then run the command again';
  }
}

/** A system error as a FileError naming `file` (the error's own path when it has one). Other errors pass through. */
export function fileError(e: unknown, file: string): unknown {
  if (!isSystemError(e)) return e;
  const path = e.path ?? file;
  const what = describeFileFailure(e, path);
  return new FileError(e.code, `${what[0]!.toUpperCase()}${what.slice(1)}: ${fileFailureAdvice(e.code)}.`, path, { cause: e });
}
