// Words for the Data screen, as plain functions.
import type { DatasetSummary, TokenView } from '../worker/api';

export const FORMAT_NAMES: Record<string, string> = {
  alpaca: 'alpaca (instruction, input, output)',
  sharegpt: 'ShareGPT (conversations)',
  openai: 'OpenAI messages',
  mixed: 'mixed',
};

/** "alpaca (instruction, input, output)", "mixed: 2 ShareGPT, 2 OpenAI messages", "none recognised" */
export function formatText(s: Pick<DatasetSummary, 'format' | 'formatCounts'>): string {
  if (s.format === null) return 'none recognised';
  if (s.format !== 'mixed') return FORMAT_NAMES[s.format] ?? s.format;
  const parts = Object.entries(s.formatCounts).map(([f, n]) => `${n} ${(FORMAT_NAMES[f] ?? f).replace(/ \(.*\)$/, '')}`);
  return `mixed: ${parts.join(', ')}`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

export type SegmentKind = 'trained' | 'masked' | 'cut';

export interface Segment {
  kind: SegmentKind;
  tokens: TokenView[];
}

/** Consecutive tokens of one kind, so that a screen reader hears "masked, 12 tokens: …" once per run. */
export function segments(tokens: readonly TokenView[]): Segment[] {
  const out: Segment[] = [];
  for (const t of tokens) {
    const kind: SegmentKind = t.cut ? 'cut' : t.trained ? 'trained' : 'masked';
    const last = out[out.length - 1];
    if (last && last.kind === kind) last.tokens.push(t);
    else out.push({ kind, tokens: [t] });
  }
  return out;
}

export const SEGMENT_WORDS: Record<SegmentKind, string> = {
  trained: 'Trained',
  masked: 'Masked (context only)',
  cut: 'Cut off by cutoff_len',
};

/** A token's text made visible: newlines as ↵, tabs as →, a token that adds no text as ∅. */
export function visibleText(text: string): string {
  if (text === '') return '∅';
  return text.replace(/\t/g, '→');
}
