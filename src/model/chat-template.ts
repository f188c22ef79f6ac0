// Chat templates: the Jinja program in a model folder that turns messages into the text the model was trained on,
// rendered with `@huggingface/jinja` inside a guard that bounds its work. Where the template comes from:
// docs/model.md ("Chat templates").
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { CodedError } from '../engine/errors';

export type ChatTemplateErrorCode =
  /** The template cannot be found, chosen or parsed. */
  | 'chat-template'
  /** The template called `raise_exception(...)`, i.e. refused these messages. */
  | 'template-exception'
  /** Rendering went past a {@link RenderLimits} bound (a runaway or hostile template). */
  | 'template-limit';

export class ChatTemplateError extends CodedError<ChatTemplateErrorCode> {
  constructor(code: ChatTemplateErrorCode, message: string, options?: { cause?: unknown }) {
    super('ChatTemplateError', code, message, options);
  }
}

/**
 * The template used for a model whose folder has none (no `chat_template` in tokenizer_config.json and no
 * `chat_template.jinja`): ChatML, the format transformers itself used as its default, and the one Qwen and
 * SmolLM2 models are trained with:
 *
 *     <|im_start|>{role}\n{content}<|im_end|>\n ... [<|im_start|>assistant\n]
 *
 * A base model that was never trained on chat text learns this format during fine-tuning. If its vocabulary has
 * no `<|im_start|>`/`<|im_end|>` tokens these markers are tokenized as ordinary text, which works but costs a
 * few tokens per turn; generation then stops at the tokenizer's eos token or at the length limit.
 */
export const DEFAULT_CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * Bounds on one render. Chat templates are Jinja programs from arbitrary repositories; these keep a hostile or
 * broken one (`{% for i in range(10**9) %}`, nested loops, strings doubled in a loop) from hanging the worker or
 * exhausting memory. Every evaluated template node counts one step; every produced string and list is measured.
 * The checks run inside the interpreter, so they work on the main thread, in a worker and in Node alike.
 *
 * Not covered: a single filter call with a huge argument (`' ' | center(400000000)`) allocates before it can be
 * measured (V8 refuses strings over ~2^29 characters, so it fails rather than hangs). The training worker is the
 * last line of defence: the UI can terminate it, and it never renders on the UI thread.
 */
export interface RenderLimits {
  /** Template nodes evaluated per render. Real templates use a few dozen per message (Qwen2.5's: ~27). */
  maxSteps: number;
  /**
   * Wall-clock milliseconds per render (checked every 256 steps). @huggingface/jinja evaluates roughly 100k-300k
   * steps a second, so on a normal machine this bound is met before `maxSteps`. It can be overshot by the set-up
   * of one loop (see `maxListLength`): measured at about 0.5 s for a loop over 100k items.
   */
  timeoutMs: number;
  /** Length of any string the template produces, the output included. */
  maxOutputChars: number;
  /**
   * Length of any list the template builds or loops over, `range(n)` and `messages` included. This also bounds
   * the work between two step checks: @huggingface/jinja prepares a scope for every item of a loop up front.
   */
  maxListLength: number;
}

export const DEFAULT_RENDER_LIMITS: Readonly<RenderLimits> = {
  maxSteps: 1_000_000,
  timeoutMs: 2_000,
  maxOutputChars: 16 * 1024 * 1024,
  maxListLength: 100_000,
};

/** A chat message as templates see it: `role` and `content`, plus any extra fields (`tool_calls`, ...). */
export interface TemplateMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

export type TemplateOrigin = 'chat_template.jinja' | 'tokenizer_config.json' | 'default';

export interface ResolvedTemplate {
  source: string;
  origin: TemplateOrigin;
  /** The entry taken from a named list. */
  name?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

/**
 * Finds the template a model folder specifies. `name` picks an entry of a named list (default: `default`; a list
 * with a single entry gives that entry).
 */
export function resolveChatTemplate(files: { tokenizerConfig?: unknown; chatTemplateJinja?: string | null; name?: string }): ResolvedTemplate {
  if (typeof files.chatTemplateJinja === 'string' && files.chatTemplateJinja.trim() !== '') {
    return { source: files.chatTemplateJinja, origin: 'chat_template.jinja' };
  }
  const raw = isObject(files.tokenizerConfig) ? files.tokenizerConfig.chat_template : undefined;
  if (raw === undefined || raw === null || raw === '') return { source: DEFAULT_CHAT_TEMPLATE, origin: 'default' };
  if (typeof raw === 'string') return { source: raw, origin: 'tokenizer_config.json' };

  let named: [string, string][];
  if (Array.isArray(raw)) {
    named = raw.map((entry, i) => {
      if (!isObject(entry) || typeof entry.name !== 'string' || typeof entry.template !== 'string') {
        throw new ChatTemplateError('chat-template', `tokenizer_config.json: chat_template entry ${i} is not {"name": ..., "template": ...}.`);
      }
      return [entry.name, entry.template];
    });
  } else if (isObject(raw)) {
    named = Object.entries(raw).map(([name, t]) => {
      if (typeof t !== 'string') throw new ChatTemplateError('chat-template', `tokenizer_config.json: chat_template "${name}" is not a string.`);
      return [name, t];
    });
  } else {
    throw new ChatTemplateError('chat-template', `tokenizer_config.json: chat_template must be a string or a list of {name, template}, not ${typeof raw}.`);
  }
  const wanted = files.name ?? 'default';
  const hit = named.find(([n]) => n === wanted) ?? (files.name === undefined && named.length === 1 ? named[0] : undefined);
  if (!hit) {
    throw new ChatTemplateError(
      'chat-template',
      `tokenizer_config.json has no chat template named "${wanted}"; it has ${named.map(([n]) => `"${n}"`).join(', ') || 'none'}.`,
    );
  }
  return { source: hit[1], origin: 'tokenizer_config.json', name: hit[0] };
}

// ---- the guarded interpreter ----------------------------------------------------------------------------------

type EvalArgs = Parameters<Interpreter['evaluate']>;
type EvalResult = ReturnType<Interpreter['evaluate']>;

class GuardedInterpreter extends Interpreter {
  private steps = 0;
  private readonly started = performance.now();

  constructor(
    env: Environment,
    private readonly limits: RenderLimits,
  ) {
    super(env);
  }

  override evaluate(statement: EvalArgs[0], environment: EvalArgs[1]): EvalResult {
    const lim = this.limits;
    if (++this.steps > lim.maxSteps) {
      throw new ChatTemplateError('template-limit', `The chat template ran more than ${lim.maxSteps.toLocaleString('en')} steps and was stopped; it loops too much to be a usable chat template.`);
    }
    if ((this.steps & 255) === 0 && performance.now() - this.started > lim.timeoutMs) {
      throw new ChatTemplateError('template-limit', `The chat template ran longer than ${lim.timeoutMs} ms and was stopped; it loops too much to be a usable chat template.`);
    }
    const result = super.evaluate(statement, environment);
    const v: unknown = result.value;
    if (typeof v === 'string' && v.length > lim.maxOutputChars) {
      throw new ChatTemplateError('template-limit', `The chat template produced more than ${lim.maxOutputChars.toLocaleString('en')} characters and was stopped.`);
    }
    if (Array.isArray(v) && v.length > lim.maxListLength) {
      throw new ChatTemplateError('template-limit', `The chat template built a list of more than ${lim.maxListLength.toLocaleString('en')} items and was stopped.`);
    }
    return result;
  }
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Python's `strftime` in the C locale, for the directives chat templates use (Llama 3's "%d %b %Y"). */
export function strftime(date: Date, format: string): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  return format.replace(/%[YymdbBaAHIMSp%]/g, (d) => {
    switch (d) {
      case '%Y': return String(date.getFullYear());
      case '%y': return p2(date.getFullYear() % 100);
      case '%m': return p2(date.getMonth() + 1);
      case '%d': return p2(date.getDate());
      case '%b': return MONTHS[date.getMonth()]!.slice(0, 3);
      case '%B': return MONTHS[date.getMonth()]!;
      case '%a': return DAYS[date.getDay()]!.slice(0, 3);
      case '%A': return DAYS[date.getDay()]!;
      case '%H': return p2(date.getHours());
      case '%I': return p2(((date.getHours() + 11) % 12) + 1);
      case '%M': return p2(date.getMinutes());
      case '%S': return p2(date.getSeconds());
      case '%p': return date.getHours() < 12 ? 'AM' : 'PM';
      default: return '%';
    }
  });
}

export interface RenderOptions {
  /** Append the header of an assistant turn (`<|im_start|>assistant\n`), for generation and SFT prompts. */
  addGenerationPrompt?: boolean;
  /** More template variables (`tools`, `date_string`, `enable_thinking`, ...). */
  variables?: Record<string, unknown>;
}

export interface ChatTemplateOptions {
  /** Special tokens the template may use; usually from tokenizer_config.json. */
  bosToken?: string | null;
  eosToken?: string | null;
  padToken?: string | null;
  unkToken?: string | null;
  limits?: Partial<RenderLimits>;
  origin?: TemplateOrigin;
  name?: string;
  /** The clock for `strftime_now` (tests fix it). */
  now?: () => Date;
}

export class ChatTemplate {
  readonly source: string;
  readonly origin: TemplateOrigin;
  readonly name: string | undefined;
  readonly limits: RenderLimits;
  private readonly template: Template;
  private readonly specials: Record<string, string>;
  private readonly now: () => Date;

  constructor(source: string, options: ChatTemplateOptions = {}) {
    this.source = source;
    this.origin = options.origin ?? 'tokenizer_config.json';
    this.name = options.name;
    this.limits = { ...DEFAULT_RENDER_LIMITS, ...options.limits };
    this.now = options.now ?? (() => new Date());
    try {
      this.template = new Template(source);
    } catch (cause) {
      const detail = cause instanceof Error ? cause.message : String(cause);
      throw new ChatTemplateError('chat-template', `The chat template (${this.origin}) could not be parsed: ${detail}`, { cause });
    }
    this.specials = {};
    const put = (key: string, v: string | null | undefined) => {
      if (typeof v === 'string') this.specials[key] = v;
    };
    put('bos_token', options.bosToken);
    put('eos_token', options.eosToken);
    put('pad_token', options.padToken);
    put('unk_token', options.unkToken);
  }

  /**
   * The template a model folder specifies ({@link resolveChatTemplate}), with the special tokens of its
   * tokenizer_config.json.
   */
  static fromModelFiles(files: {
    tokenizerConfig?: unknown;
    chatTemplateJinja?: string | null;
    name?: string;
    limits?: Partial<RenderLimits>;
  }): ChatTemplate {
    const resolved = resolveChatTemplate(files);
    const cfg = isObject(files.tokenizerConfig) ? files.tokenizerConfig : {};
    return new ChatTemplate(resolved.source, {
      origin: resolved.origin,
      ...(resolved.name !== undefined ? { name: resolved.name } : {}),
      bosToken: tokenContent(cfg.bos_token) ?? null,
      eosToken: tokenContent(cfg.eos_token) ?? null,
      padToken: tokenContent(cfg.pad_token) ?? null,
      unkToken: tokenContent(cfg.unk_token) ?? null,
      ...(files.limits ? { limits: files.limits } : {}),
    });
  }

  /** The text of `messages` as the model expects it. Throws {@link ChatTemplateError}. */
  render(messages: readonly TemplateMessage[], options: RenderOptions = {}): string {
    const limits = this.limits;
    const env = new Environment();
    // What @huggingface/jinja's own Template.render sets up (its setupGlobals is not exported), with a bounded
    // range() and a raise_exception() whose error says where it came from.
    env.set('false', false);
    env.set('true', true);
    env.set('none', null);
    env.set('False', false);
    env.set('True', true);
    env.set('None', null);
    env.set('raise_exception', (message: unknown) => {
      throw new ChatTemplateError('template-exception', `The chat template refused these messages: ${String(message)}`);
    });
    env.set('range', (start: number, stop?: number, step = 1) => boundedRange(limits.maxListLength, start, stop, step));
    env.set('strftime_now', (format: string) => strftime(this.now(), String(format)));
    for (const [k, v] of Object.entries(this.specials)) env.set(k, v);
    for (const [k, v] of Object.entries(options.variables ?? {})) env.set(k, v);
    env.set('messages', messages.map((m) => ({ ...m })));
    env.set('add_generation_prompt', options.addGenerationPrompt ?? false);

    try {
      const out = new GuardedInterpreter(env, limits).run(this.template.parsed).value;
      if (typeof out !== 'string') throw new Error('the template did not produce text');
      return out;
    } catch (cause) {
      if (cause instanceof ChatTemplateError) throw cause;
      if (cause instanceof RangeError) {
        // Call-stack overflow (recursive macros) or a string past V8's length limit.
        throw new ChatTemplateError('template-limit', `The chat template ran out of room (${cause.message}) and was stopped.`, { cause });
      }
      const detail = cause instanceof Error ? cause.message : String(cause);
      throw new ChatTemplateError('chat-template', `The chat template (${this.origin}) failed: ${detail}`, { cause });
    }
  }
}

function boundedRange(maxLength: number, start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (![start, stop, step].every(Number.isInteger)) throw new Error('range() takes integers');
  if (step === 0) throw new Error('range() step must not be zero');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if (n > maxLength) {
    throw new ChatTemplateError('template-limit', `The chat template asked for range() of ${n.toLocaleString('en')} items, more than the ${maxLength.toLocaleString('en')} allowed; it was stopped.`);
  }
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = start + i * step;
  return out;
}
