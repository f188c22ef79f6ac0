// `graft train`'s progress on stderr: a bar with the ETA on a terminal, plain lines every logging_steps otherwise.
import type { StepRecord, TrainProgress } from '../train/metrics';
import { bar, formatDuration, type ProgressStream } from './progress';

export const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
const fmtLr = (x: number) => x.toExponential(2);

export class TrainReporter {
  private drawn = false;
  private lastLine = 0;

  constructor(
    private readonly out: ProgressStream,
    private readonly loggingSteps: number,
    private readonly tty = Boolean(out.isTTY),
  ) {}

  update(p: TrainProgress): void {
    const r = p.last;
    const eta = p.etaSeconds !== undefined ? `  ETA ${formatDuration(p.etaSeconds)}` : '';
    if (this.tty) {
      const cols = Math.max(40, (this.out.columns || 100) - 1);
      const phase = p.phase === 'train' ? '' : `  (${p.phase === 'eval' ? 'evaluating' : 'saving a checkpoint'})`;
      const stats = r ? `  loss ${fmt(r.loss)}  lr ${fmtLr(r.learning_rate)}  ${Math.round(r.tokens_per_second)} tok/s` : '';
      let line = `train ${bar(p.totalSteps ? p.step / p.totalSteps : 0, 20)} ${p.step}/${p.totalSteps}${stats}${eta}${phase}`;
      if (line.length > cols) line = `${line.slice(0, cols - 1)}…`;
      this.out.write(`\r\x1b[K${line}`);
      this.drawn = true;
      return;
    }
    if (p.phase !== 'train' || !r || r.step !== p.step) return;
    const now = Date.now();
    const due = r.step === 1 || r.step === p.totalSteps || r.step % this.loggingSteps === 0 || r.skipped === true || now - this.lastLine >= 10_000;
    if (!due) return;
    this.lastLine = now;
    this.out.write(
      `step ${r.step}/${p.totalSteps}  epoch ${r.epoch.toFixed(2)}  loss ${fmt(r.loss)}  lr ${fmtLr(r.learning_rate)}  grad_norm ${fmt(r.grad_norm, 3)}  ` +
        `${Math.round(r.tokens_per_second)} tok/s  ${formatDuration(r.elapsed_s)}${eta}${preferenceStats(r)}${r.skipped ? (r.skip_reason === 'no_target' ? '  SKIPPED (no answer token within cutoff_len: nothing to learn)' : '  SKIPPED (loss or gradient not finite)') : ''}\n`,
    );
  }

  /** A line of its own (eval results, checkpoints), keeping the bar below it. */
  line(text: string): void {
    this.clear();
    this.out.write(`${text}\n`);
  }

  clear(): void {
    if (this.tty && this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }
}

/** DPO / RM steps: the reward margin and accuracy, after the SFT fields of a progress line. */
function preferenceStats(r: StepRecord): string {
  const x = r as StepRecord & Partial<Record<'rewards/margins' | 'rewards/accuracies', number>>;
  if (x['rewards/accuracies'] === undefined || x['rewards/margins'] === undefined) return '';
  return `  margin ${fmt(x['rewards/margins'])}  accuracy ${fmt(x['rewards/accuracies'], 2)}`;
}
