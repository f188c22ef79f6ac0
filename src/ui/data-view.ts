// Words for the Data screen, as plain functions.
import type { ColumnMapping, DatasetSummary, MappingColumn, RecordKind, TokenView } from '../worker/api';

export const FORMAT_NAMES: Record<string, string> = {
  alpaca: 'alpaca (instruction, input, output)',
  sharegpt: 'ShareGPT (conversations)',
  openai: 'OpenAI messages',
  mixed: 'mixed',
};

export const KIND_NAMES: Record<RecordKind, string> = {
  sft: 'supervised fine-tuning (SFT)',
  preference: 'preference pairs (prompt, chosen, rejected) for DPO and reward models',
  kto: 'KTO records (not trained in Graft)',
  text: 'pre-training text (not trained in Graft)',
};

/** "supervised fine-tuning (SFT)", "mixed: 2 SFT, 1 preference", "none recognised" */
export function kindText(s: Pick<DatasetSummary, 'kind' | 'kindCounts'>): string {
  if (s.kind === null) return 'none recognised';
  if (s.kind !== 'mixed') return KIND_NAMES[s.kind];
  return `mixed: ${Object.entries(s.kindCounts).map(([k, n]) => `${n} ${k === 'sft' ? 'SFT' : k}`).join(', ')}`;
}

/** "alpaca (instruction, input, output)", "mixed: 2 ShareGPT, 2 OpenAI messages", "none recognised" */
export function formatText(s: Pick<DatasetSummary, 'format' | 'formatCounts'> & Partial<Pick<DatasetSummary, 'kind'>>): string {
  if (s.format === null && s.kind === 'preference') return 'preference pairs';
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

// ---- column mapping ---------------------------------------------------------------------------------------

/** What a field can be mapped to: LLaMA-Factory's dataset_info `columns` (text ones), with what each becomes. */
export const MAPPING_TARGETS: { column: MappingColumn; label: string }[] = [
  { column: 'prompt', label: 'prompt → instruction' },
  { column: 'query', label: 'query → input' },
  { column: 'response', label: 'response → output' },
  { column: 'system', label: 'system prompt' },
  { column: 'history', label: 'history (earlier turns)' },
  { column: 'messages', label: 'messages → conversations (ShareGPT)' },
  { column: 'chosen', label: 'chosen answer' },
  { column: 'rejected', label: 'rejected answer' },
];

const GUESSES: [RegExp, MappingColumn][] = [
  [/^(question|prompt|instruction|query_text|ask|q)$/i, 'prompt'],
  [/^(input|context|query)$/i, 'query'],
  [/^(answer|response|output|completion|reply|a|target)$/i, 'response'],
  [/^(system|system_prompt)$/i, 'system'],
  [/^history$/i, 'history'],
  [/^(conversation|dialog|dialogue|turns|chat)$/i, 'messages'],
  [/^(chosen|preferred|good|accepted)$/i, 'chosen'],
  [/^(rejected|dispreferred|bad)$/i, 'rejected'],
];

/** A first guess for each field: question → prompt, answer → response, ...; '' for none. Each target once. */
export function guessMapping(fields: readonly string[]): Record<string, MappingColumn | ''> {
  const used = new Set<MappingColumn>();
  const out: Record<string, MappingColumn | ''> = {};
  for (const f of fields) {
    const hit = GUESSES.find(([re, col]) => re.test(f) && !used.has(col))?.[1];
    out[f] = hit ?? '';
    if (hit) used.add(hit);
  }
  return out;
}

/** The chosen field → target pairs as a dataset_info mapping (ShareGPT when messages is mapped; ranking with answers). */
export function mappingOf(choice: Record<string, MappingColumn | ''>): ColumnMapping {
  const columns: Partial<Record<MappingColumn, string>> = {};
  for (const [field, column] of Object.entries(choice)) if (column !== '' && columns[column] === undefined) columns[column] = field;
  const m: ColumnMapping = { formatting: columns.messages !== undefined ? 'sharegpt' : 'alpaca', columns };
  if (columns.chosen !== undefined || columns.rejected !== undefined) m.ranking = true;
  return m;
}

/** "question → prompt, answer → response" */
export function mappingText(m: ColumnMapping): string {
  return Object.entries(m.columns)
    .map(([column, field]) => `${field} → ${column}`)
    .join(', ');
}
