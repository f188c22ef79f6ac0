// Checkpoints in a folder, as Hugging Face's Trainer lays them out: output_dir/checkpoint-<step>/ with plain
// files (safetensors + JSON). Written into output_dir/checkpoint-<step>.tmp/ first, each file flushed to disk,
// then renamed to checkpoint-<step>/ in one rename(2): a crash leaves a .tmp folder (ignored by list() and
// cleared by the next write of that step) or the complete checkpoint, never a half-written checkpoint-<step>.
// The only Node file in src/train.
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { checkpointName, CheckpointError, parseCheckpointName, type AfterFileHook, type CheckpointStore } from './checkpoint-store';
import { TRAINER_STATE_FILE } from './checkpoint';
import { describeFileFailure, FileError, fileFailureAdvice, isDiskFull, isSystemError } from './file-error';

export class NodeCheckpointStore implements CheckpointStore {
  readonly location: string;

  constructor(
    readonly dir: string,
    private readonly afterFile?: AfterFileHook,
  ) {
    this.location = dir;
  }

  /** The folder of a step's checkpoint. */
  folder(step: number): string {
    return join(this.dir, checkpointName(step));
  }

  async list(): Promise<number[]> {
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const steps: number[] = [];
    for (const name of entries) {
      const step = parseCheckpointName(name);
      if (step === undefined) continue;
      // A folder someone else made (or an old format) without the state file is not a checkpoint of ours.
      try {
        if ((await stat(join(this.dir, name, TRAINER_STATE_FILE))).isFile()) steps.push(step);
      } catch {
        // not complete
      }
    }
    return steps.sort((a, b) => a - b);
  }

  async write(step: number, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
    const final = this.folder(step);
    const tmp = `${final}.tmp`;
    let current = tmp;
    try {
      await mkdir(this.dir, { recursive: true });
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp);
      // The state file last: with it a folder is a checkpoint (list() checks for it), in case a copy of a
      // folder is ever made by other means.
      const order = [...files.keys()].sort((a, b) => Number(a === TRAINER_STATE_FILE) - Number(b === TRAINER_STATE_FILE));
      for (const name of order) {
        current = join(tmp, name);
        const fh = await open(current, 'w');
        try {
          await fh.writeFile(files.get(name)!);
          await fh.sync();
        } finally {
          await fh.close();
        }
        this.afterFile?.(step, name);
      }
      current = final;
      await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
    } catch (e) {
      if (!isSystemError(e)) throw e;
      // What was written of this checkpoint goes (it frees the space it took); complete ones stay.
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      const kept = (await this.list().catch(() => [])).filter((s) => s !== step);
      const keptText = kept.length ? `${checkpointName(kept[kept.length - 1]!)}, the latest complete checkpoint, is kept` : 'no earlier checkpoint of this run exists';
      const todo = isDiskFull(e) ? 'free some disk space, then resume with --resume_from_checkpoint true' : fileFailureAdvice(e.code);
      throw new FileError(e.code, `Could not save ${checkpointName(step)}: ${describeFileFailure(e, e.path ?? current)}; ${keptText}: ${todo}.`, e.path ?? current, { cause: e });
    }
    // Make the rename durable where the platform allows fsync on a directory.
    try {
      const d = await open(this.dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch {
      // Windows cannot open directories; the rename stands.
    }
  }

  async read(step: number): Promise<Map<string, Uint8Array>> {
    const folder = this.folder(step);
    if (!(await this.list()).includes(step)) {
      throw new CheckpointError(`There is no complete checkpoint at ${folder} (a checkpoint folder holds ${TRAINER_STATE_FILE}).`);
    }
    const out = new Map<string, Uint8Array>();
    for (const name of await readdir(folder)) {
      const buf = await readFile(join(folder, name));
      out.set(name, new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
    }
    return out;
  }

  async delete(step: number): Promise<void> {
    await rm(this.folder(step), { recursive: true, force: true });
  }
}
