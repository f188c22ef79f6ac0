// Where `graft train` puts a job's metrics and result: its output_dir.
//   metrics.jsonl, eval_metrics.jsonl   one JSON object per step / evaluation; a resumed run rewrites them from
//                                       its checkpoint's history first
//   the result                          the adapter or model folder's files; a reward model's PEFT adapter in
//                                       adapter/; the LLaMA-Factory job (train.yaml, dataset_info.json, data)
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobResult, JobSink, RunHistory } from '../job/types';
import type { EvalRecord, StepRecord } from '../train/metrics';

const lines = (records: readonly object[]) => records.map((r) => `${JSON.stringify(r)}\n`).join('');

async function writeFiles(dir: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of files) await writeFile(join(dir, name), bytes);
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
  return written;
}

export class FolderSink implements JobSink {
  readonly metricsFile: string;
  readonly evalFile: string;
  /** The names save() wrote. */
  written: string[] = [];
  private writes: Promise<void> = Promise.resolve();

  constructor(readonly dir: string) {
    this.metricsFile = join(dir, 'metrics.jsonl');
    this.evalFile = join(dir, 'eval_metrics.jsonl');
  }

  async begin({ history }: { history: RunHistory }): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFile(this.metricsFile, lines(history.metrics));
    await writeFile(this.evalFile, lines(history.evalMetrics));
  }

  private append(file: string, record: StepRecord | EvalRecord): void {
    this.writes = this.writes.then(() => appendFile(file, lines([record])));
  }

  step(record: StepRecord): void {
    this.append(this.metricsFile, record);
  }

  evaluation(record: EvalRecord): void {
    this.append(this.evalFile, record);
  }

  flush(): Promise<void> {
    return this.writes;
  }

  async save(result: JobResult): Promise<void> {
    this.written = await writeJobResult(this.dir, result);
  }
}
