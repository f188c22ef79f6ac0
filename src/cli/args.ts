// Command-line parsing for `graft`: node:util parseArgs in strict mode, with the errors rewritten as one line
// that names the command and the flag, and typed readers for numeric options.
import { parseArgs } from 'node:util';
import { CodedError } from '../engine/errors';

/** A mistake in how the command was called. Exit code 2, the message says what to type instead. */
export class UsageError extends CodedError<'usage'> {
  constructor(message: string) {
    super('UsageError', 'usage', message);
  }
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** A string option that may be given several times (read with stringList). */
  multiple?: boolean;
  /**
   * A string option that may also be given bare: `--flag` alone (last, or followed by another option) means
   * `--flag <bare>` (boolean settings: `--gradient_checkpointing` = `--gradient_checkpointing true`).
   */
  bare?: string;
  /** Shown in --help after the flag, e.g. 'N' in `--max-new-tokens N`. */
  value?: string;
  description: string;
  /** Accepted but not listed in --help (LLaMA-Factory keys that are passed on to be refused with their reason). */
  hidden?: boolean;
}

export interface CommandSpec {
  name: string;
  /** One line for `graft --help`. */
  summary: string;
  /** The usage line after `graft `, e.g. 'download <repo> [options]'. */
  usage: string;
  /** Paragraphs after the usage line. */
  details?: string;
  /** Names of the positionals, in order (`<repo>`); more than these is an error. Default: none. */
  positionals?: string[];
  /** How many positionals are required (default 0). */
  required?: number;
  options: Record<string, OptionSpec>;
  examples?: string[];
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: Values;
  positionals: string[];
}

const HELP: OptionSpec = { type: 'boolean', short: 'h', description: 'Show this help.' };

/** Parses `argv` (the arguments after the command name) against `spec`. Throws UsageError. */
export function parseCommand(spec: CommandSpec, argv: string[]): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = { help: HELP };
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: withBareValues(spec, argv), options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(rewriteParseError(spec, e));
  }
  const values = parsed.values as Values;
  if (values.help) return { values, positionals: parsed.positionals };
  const { positionals } = parsed;
  const names = spec.positionals ?? [];
  if (positionals.length > names.length) {
    const extra = positionals[names.length]!;
    throw new UsageError(`graft ${spec.name}: unexpected argument "${extra}" (usage: graft ${spec.usage}; see graft ${spec.name} --help)`);
  }
  if (positionals.length < (spec.required ?? 0)) {
    throw new UsageError(`graft ${spec.name}: missing ${names[positionals.length]} (usage: graft ${spec.usage})`);
  }
  return { values, positionals };
}

/** argv with the value of each option that has `bare` filled in where the flag stands alone. */
function withBareValues(spec: CommandSpec, argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    out.push(a);
    if (a === '--') {
      out.push(...argv.slice(i + 1));
      break;
    }
    const o = a.startsWith('--') ? spec.options[a.slice(2)] : undefined;
    if (o?.bare === undefined) continue;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('-')) out.push(o.bare);
  }
  return out;
}

/** parseArgs' messages are long and mention positionals; say which flag, in one line. */
function rewriteParseError(spec: CommandSpec, e: unknown): string {
  const code = (e as { code?: string }).code;
  const message = e instanceof Error ? e.message : String(e);
  const flag = /'(-{1,2}[^'\s]+)/.exec(message)?.[1];
  const more = `see graft ${spec.name} --help`;
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `graft ${spec.name}: unknown option ${flag ?? message} (${more})`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const name = flag?.replace(/^-+/, '').split(/[ =]/)[0];
      const o = name ? (spec.options[name] ?? (name === 'help' ? HELP : undefined)) : undefined;
      if (o?.type === 'boolean') return `graft ${spec.name}: ${flag} takes no value (${more})`;
      if (/ambiguous/.test(message)) {
        return `graft ${spec.name}: ${flag} needs a value; to pass one that starts with "-", write ${flag}=VALUE (${more})`;
      }
      return `graft ${spec.name}: ${flag ?? 'an option'} needs a value (${more})`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `graft ${spec.name}: unexpected argument (${more})`;
    default:
      return `graft ${spec.name}: ${message.split('\n')[0]}`;
  }
}

export function stringOption(cmd: string, values: Values, name: string): string | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new UsageError(`graft ${cmd}: --${name} needs a value`);
  return v;
}

/** Every value of an option given several times (multiple: true), in order; [] when not given. */
export function stringList(cmd: string, values: Values, name: string): string[] {
  const v = values[name];
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  if (list.some((x) => typeof x !== 'string' || x === '')) throw new UsageError(`graft ${cmd}: --${name} needs a value`);
  return list as string[];
}

export function requiredString(cmd: string, values: Values, name: string, what: string): string {
  const v = stringOption(cmd, values, name);
  if (v === undefined || v === '') throw new UsageError(`graft ${cmd}: --${name} ${what} is required (see graft ${cmd} --help)`);
  return v;
}

export function numberOption(
  cmd: string,
  values: Values,
  name: string,
  check: { integer?: boolean; min?: number; max?: number; minExclusive?: boolean },
): number | undefined {
  const raw = stringOption(cmd, values, name);
  if (raw === undefined) return undefined;
  const n = raw.trim() === '' ? Number.NaN : Number(raw);
  const kind = check.integer ? 'an integer' : 'a number';
  const range =
    check.min !== undefined && check.max !== undefined
      ? ` between ${check.min} and ${check.max}`
      : check.min !== undefined
        ? check.minExclusive
          ? ` greater than ${check.min}`
          : ` of at least ${check.min}`
        : '';
  const bad =
    !Number.isFinite(n) ||
    (check.integer && !Number.isSafeInteger(n)) ||
    (check.min !== undefined && (check.minExclusive ? n <= check.min : n < check.min)) ||
    (check.max !== undefined && n > check.max);
  if (bad) throw new UsageError(`graft ${cmd}: --${name} must be ${kind}${range}, not "${raw}"`);
  return n;
}

/** `graft <cmd> --help`. */
export function commandHelp(spec: CommandSpec): string {
  const lines = [`Usage: graft ${spec.usage}`, '', spec.summary];
  if (spec.details) lines.push('', spec.details);
  lines.push('', 'Options:');
  const entries = Object.entries({ ...spec.options, help: HELP }).filter(([, o]) => o.hidden !== true);
  const labels = entries.map(([name, o]) => `${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` ${o.value}` : ''}`);
  const width = Math.max(...labels.map((l) => l.length)) + 2;
  entries.forEach(([, o], i) => lines.push(`  ${labels[i]!.padEnd(width)}${o.description}`));
  if (spec.examples?.length) {
    lines.push('', 'Examples:');
    for (const e of spec.examples) lines.push(`  ${e}`);
  }
  return lines.join('\n') + '\n';
}
