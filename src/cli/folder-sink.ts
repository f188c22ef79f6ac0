// Where `graft train` puts a job's metrics and result: its output_dir.
//   metrics.jsonl, eval_metrics.jsonl   one JSON object per step / evaluation; a resumed run rewrites them from
//                                       its checkpoint's history first
//   the result                          the adapter or model folder's files; a reward model's PEFT adapter in
//                                       adapter/; the LLaMA-Factory job (train.yaml, dataset_info.json, data)
// Each result file is written under a temporary name, flushed and renamed, so that a file of the result is
// complete or absent (as checkpoints are: src/train/checkpoint-store-node.ts); weights go before configs.
import { appendFile, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileError } from '../train/file-error';
import type { JobResult, JobSink, RunHistory } from '../job/types';
import type { ResumeChange } from '../train/checkpoint';
import type { EvalRecord, StepRecord } from '../train/metrics';

const lines = (records: readonly object[]) => records.map((r) => `${JSON.stringify(r)}\n`).join('');

/** The temporary name a result file is written under before its rename. */
export const tempName = (name: string): string => `${name}.graft-tmp`;

/** Writes one file atomically: a temporary name, flushed, then renamed over `path`. Errors name the file. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = tempName(path);
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw fileError(e, path);
  }
}

async function writeFiles(dir: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw fileError(e, dir);
  }
  // Weights first, the small files that describe them (configs) after.
  const order = [...files.keys()].sort((a, b) => Number(!a.endsWith('.safetensors')) - Number(!b.endsWith('.safetensors')));
  for (const name of order) await writeFileAtomic(join(dir, name), files.get(name)!);
}

/** Writes a result's files into `dir`; returns their names (a reward model's adapter as adapter/<name>). */
export async function writeJobResult(dir: string, result: JobResult): Promise<string[]> {
  await writeFiles(dir, result.files);
  const written = [...result.files.keys()];
  if (result.kind === 'reward' && result.adapterFiles) {
    await writeFiles(join(dir, 'adapter'), result.adapterFiles);
    written.push(...[...result.adapterFiles.keys()].map((n) => `adapter/${n}`));
  }
  if (result.llamaFactory) {
    await writeFiles(dir, result.llamaFactory.files);
    written.push(...result.llamaFactory.files.keys());
  }
  if (result.predictions) {
    await writeFiles(dir, result.predictions);
    written.push(...result.predictions.keys());
  }
  return written;
}

/**
 * The result with the differences its run resumed with (resume_allow_changes) as comments at the top of
 * train.yaml: the file's settings are the last ones, and earlier steps ran with others.
 */
function withResumeChanges(result: JobResult, changes: readonly ResumeChange[]): JobResult {
  const yaml = result.llamaFactory?.files.get('train.yaml');
  if (!changes.length || !yaml || !result.llamaFactory) return result;
  const lines = changes.map((c) => `# resumed after step ${c.step} with other settings (resume_allow_changes): ${c.changes.join('; ').replace(/\s+/g, ' ')}\n`);
  const files = new Map(result.llamaFactory.files);
  files.set('train.yaml', new TextEncoder().encode(`${lines.join('')}${new TextDecoder().decode(yaml)}`));
  return { ...result, llamaFactory: { ...result.llamaFactory, files } };
}

export class FolderSink implements JobSink {
  readonly metricsFile: string;
  readonly evalFile: string;
  /** The names save() wrote. */
  written: string[] = [];
  private writes: Promise<void> = Promise.resolve();
  private failure: unknown;
  private resumeChanges: readonly ResumeChange[] = [];

  constructor(readonly dir: string) {
    this.metricsFile = join(dir, 'metrics.jsonl');
    this.evalFile = join(dir, 'eval_metrics.jsonl');
  }

  async begin({ history, resumeChanges }: { history: RunHistory; resumeChanges?: readonly ResumeChange[] }): Promise<void> {
    this.resumeChanges = resumeChanges ?? [];
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (e) {
      throw fileError(e, this.dir);
    }
    for (const [file, records] of [[this.metricsFile, history.metrics], [this.evalFile, history.evalMetrics]] as const) {
      try {
        await writeFile(file, lines(records));
      } catch (e) {
        throw fileError(e, file);
      }
    }
  }

  private append(file: string, record: StepRecord | EvalRecord): void {
    // The first failure is kept for flush(); the chain itself never rejects (no unhandled rejection meanwhile).
    this.writes = this.writes.then(() =>
      this.failure ? undefined : appendFile(file, lines([record])).catch((e: unknown) => void (this.failure = fileError(e, file))),
    );
  }

  step(record: StepRecord): void {
    this.append(this.metricsFile, record);
  }

  evaluation(record: EvalRecord): void {
    this.append(this.evalFile, record);
  }

  async flush(): Promise<void> {
    await this.writes;
    if (this.failure) throw this.failure;
  }

  async save(result: JobResult): Promise<void> {
    this.written = await writeJobResult(this.dir, withResumeChanges(result, this.resumeChanges));
  }
}
