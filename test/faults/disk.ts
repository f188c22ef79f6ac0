// Small file systems for the fault suite: a tmpfs of a given size (a disk that fills up) or a read-only one,
// mounted in a fresh folder. Mounting needs root (and a kernel that allows it in this container); where it
// cannot be done, `reason` says why, and the tests that need it put that reason in their names and output
// instead of passing in silence.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk {
  dir: string;
  /** Unmounts and removes the folder. */
  cleanup(): void;
}

function mount(options: string): SmallDisk {
  const dir = mkdtempSync(join(tmpdir(), 'graft-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    cleanup() {
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Why no tmpfs can be mounted here, or undefined when one can (tried once). */
export const reason: string | undefined = (() => {
  if (process.platform !== 'linux') return `tmpfs mounts are Linux-only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root, and the tests run as another user';
  try {
    mount('size=64k').cleanup();
    return undefined;
  } catch (e) {
    return `mount -t tmpfs failed: ${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}`;
  }
})();

/** A tmpfs of `bytes` (rounded up to pages by the kernel). */
export function smallDisk(bytes: number): SmallDisk {
  return mount(`size=${bytes}`);
}

/** A read-only tmpfs. */
export function readOnlyDisk(): SmallDisk {
  return mount('ro,size=64k');
}

/** The name of a test that needs a disk of its own: as given, or saying why it does not run here. */
export function diskTestName(name: string): string {
  return reason === undefined ? name : `${name} — NOT RUN: ${reason}`;
}

/** Prints why a disk test did not run (beside its name). */
export function notRun(name: string): void {
  console.warn(`fault suite: "${name}" did not run: ${reason}`);
}

/** Gives a mounted tmpfs another size (a disk that was freed). */
export function resize(disk: SmallDisk, bytes: number): void {
  execFileSync('mount', ['-o', `remount,size=${bytes}`, disk.dir], { stdio: 'pipe' });
}
