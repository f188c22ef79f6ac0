// A training report: every step's metrics and the evaluations as JSON (metrics.json), the job as LLaMA-Factory
// YAML (train.yaml), and the loss chart the page drew (loss.png).
import { settingsToYaml, type TrainSettings } from '../train/settings';
import type { EvalRecord, StepRecord } from '../train/metrics';

export interface ReportInput {
  label: string;
  model: string;
  revision: string;
  dataset: string;
  finetuningType: string;
  status: string;
  step: number;
  totalSteps: number;
  createdAt: number;
  /** The job's settings as given. */
  input: Record<string, unknown>;
  metrics: readonly StepRecord[];
  evalMetrics: readonly EvalRecord[];
  /** The parsed settings, for train.yaml; undefined when they no longer parse (metrics.json keeps the input). */
  settings?: TrainSettings;
  chartPng?: Uint8Array;
}

const encoder = new TextEncoder();

/** The report's files by name. */
export function reportFiles(r: ReportInput): Map<string, Uint8Array> {
  const last = r.metrics[r.metrics.length - 1];
  const report = {
    run: r.label,
    model: r.model,
    revision: r.revision,
    dataset: r.dataset,
    finetuning_type: r.finetuningType,
    status: r.status,
    steps: r.step,
    total_steps: r.totalSteps,
    final_loss: last?.loss ?? null,
    elapsed_s: last?.elapsed_s ?? null,
    started: new Date(r.createdAt).toISOString(),
    settings: r.input,
    log_history: r.metrics,
    eval_history: r.evalMetrics,
  };
  const files = new Map<string, Uint8Array>([['metrics.json', encoder.encode(`${JSON.stringify(report, null, 2)}\n`)]]);
  if (r.settings) files.set('train.yaml', encoder.encode(settingsToYaml(r.settings, { header: [`Written by Graft for the run "${r.label}".`] })));
  if (r.chartPng && r.chartPng.length > 0) files.set('loss.png', r.chartPng);
  return files;
}
